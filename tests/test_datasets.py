"""01-datasets: reference full marks, release zero, a mistake bank and correct-but-different variants."""
import pytest

from tests.notebooks import edit_solution, grade, release_notebook, replace_solution, source_notebook

A = "01-datasets"


@pytest.fixture(scope="module")
def reference():
    return source_notebook(A)


def test_reference_gets_full_marks(reference):
    report = grade(reference)
    assert report.error is None
    assert report.failed_tasks() == set(), {t.id: t.output for t in report.tasks}
    assert report.score == report.max_score == 13


def test_untouched_release_gets_zero_on_every_task():
    report = grade(release_notebook(A))
    assert report.error is None
    assert report.score == 0
    assert report.failed_tasks() == {t.id for t in report.tasks}
    assert "not implemented yet" in report.by_task["minibatches"].output


# (task, old text in the reference solution, wrong text): each loses exactly its task.
MISTAKES = {
    "y_of_shape_n": ("regression_data", "return X, y.reshape(-1, 1)", "return X, y"),
    "missing_bias": ("regression_data", "y = (X ** power) @ w + b + noise *", "y = (X ** power) @ w + noise *"),
    "noise_level_ignored": ("regression_data", "+ noise * torch.randn(n, generator=gen)",
                            "+ 0.01 * torch.randn(n, generator=gen)"),
    "seed_ignored": ("regression_data", "gen.manual_seed(seed)", "gen.seed()"),
    "power_ignored": ("regression_data", "y = (X ** power) @ w + b + noise *", "y = X @ w + b + noise *"),
    "float_labels": ("blobs_data", "y = torch.arange(C).repeat_interleave(n_per_class)",
                     "y = torch.arange(C).repeat_interleave(n_per_class).float()"),
    "spread_ignored": ("blobs_data", "+ spread * torch.randn", "+ torch.randn"),
    "random_shuffle_on_tensor": ("minibatches", "order = torch.randperm(n) if shuffle else torch.arange(n)",
                                 "order = torch.arange(n)\n    if shuffle:\n        import random\n"
                                 "        X, y = X.clone(), y.clone()\n        random.shuffle(X)\n        random.shuffle(y)"),
    "last_partial_batch_dropped": ("minibatches", "for start in range(0, n, batch_size):",
                                   "for start in range(0, n - batch_size + 1, batch_size):"),
    "x_and_y_shuffled_separately": ("minibatches", "yield X[idx], y[idx]",
                                    "yield X[idx], y[order[torch.randperm(n)][:len(idx)]]"),
    "overlapping_indices": ("split_indices", "return perm[n_val:], perm[:n_val]",
                            "return perm[n_val // 2:], perm[:n_val]"),
    "validation_is_first_block": ("split_indices", "perm = torch.randperm(n, generator=gen)", "perm = torch.arange(n)"),
    "both_loaders_on_all_data": ("split_loaders", "sampler=SubsetRandomSampler(train_idx.tolist())",
                                 "sampler=SubsetRandomSampler(list(range(len(dataset))))"),
    "len_counts_features": ("pair_dataset", "return len(self.X)", "return self.X.shape[1]"),
    "getitem_returns_only_x": ("pair_dataset", "return self.X[i], self.y[i]", "return self.X[i]"),
    "module_without_import": ("reusable_module", "import torch\n### BEGIN SOLUTION", "### BEGIN SOLUTION"),
}
# The task each mistake is expected to cost (power_ignored is edited in make_regression but is
# the nonlinear task's mistake).
EXPECTED_LOSS = {name: task for name, (task, _, _) in MISTAKES.items()}
EXPECTED_LOSS["power_ignored"] = "nonlinear_data"


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_mistake_loses_exactly_its_task(reference, name):
    task, old, new = MISTAKES[name]
    report = grade(edit_solution(reference, task, old, new))
    assert report.failed_tasks() == {EXPECTED_LOSS[name]}, {t.id: t.output for t in report.tasks}
    assert report.by_task[EXPECTED_LOSS[name]].output.strip()


VARIANTS = {
    "regression_data": '''
def make_regression(w, b, n, noise=0.01, seed=None, power=1):
    if seed is not None:
        torch.manual_seed(seed)
    features = torch.normal(0.0, 1.0, size=(n, w.shape[0]))
    targets = torch.matmul(features.pow(power), w.float()) + b
    targets += torch.normal(0.0, noise, size=targets.shape) if noise > 0 else 0.0
    return features, targets.unsqueeze(1)
''',
    "blobs_data": '''
def make_blobs(n_per_class, centers, spread=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    xs, ys = [], []
    for label, centre in enumerate(centers):
        xs.append(centre + spread * torch.randn(n_per_class, len(centre), generator=g))
        ys.append(torch.full((n_per_class,), label, dtype=torch.long))
    X, y = torch.cat(xs).float(), torch.cat(ys)
    perm = torch.randperm(len(y), generator=g)
    return X[perm], y[perm]
''',
    "minibatches": '''
def minibatches(X, y, batch_size, shuffle=True):
    idx = torch.randperm(len(X)) if shuffle else torch.arange(len(X))
    for chunk in torch.split(idx, batch_size):
        yield X.index_select(0, chunk), y.index_select(0, chunk)
''',
    "split_indices": '''
import random
def split_indices(n, val_frac, seed=None):
    rng = random.Random(seed)
    indices = list(range(n))
    rng.shuffle(indices)
    cut = int(val_frac * n)
    return torch.tensor(indices[cut:]), torch.tensor(indices[:cut])
''',
    "split_loaders": '''
def split_loaders(dataset, batch_size, val_frac, seed=None):
    tr, va = split_indices(len(dataset), val_frac, seed)
    make = lambda idx: DataLoader(dataset, batch_size, sampler=SubsetRandomSampler(idx))
    return make(tr), make(va)
''',
    "pair_dataset": '''
class PairDataset(Dataset):
    def __init__(self, features, targets):
        super().__init__()
        self.pairs = (features, targets)
    def __len__(self):
        return self.pairs[0].shape[0]
    def __getitem__(self, index):
        features, targets = self.pairs
        return features[index], targets[index]
''',
}


@pytest.mark.parametrize("task", sorted(VARIANTS))
def test_correct_variant_gets_full_marks(reference, task):
    report = grade(replace_solution(reference, task, VARIANTS[task]))
    assert report.failed_tasks() == set(), {t.id: t.output for t in report.tasks if not t.passed}
