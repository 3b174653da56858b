"""01-datasets: reference full marks, release zero, a mistake bank and correct-but-different variants.

Mistakes are graded in groups (one notebook per group, at most one mistake per task): each group must
lose exactly the tasks it mutates, so a mistake that also cost another task would show."""
import pytest

from tests.banks import expect_full_marks, expect_groups_cover, with_solutions
from tests.notebooks import edit_solution, grade, replace_solution

A = "01-datasets"


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
    "random_shuffle_on_tensor": ("minibatches",
                                 "order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)",
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
def minibatches(X, y, batch_size, shuffle=True, generator=None):
    idx = torch.randperm(len(X), generator=generator) if shuffle else torch.arange(len(X))
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


def test_correct_variants_get_full_marks(reference):
    """One variant per task in one notebook: every grader calls only its own task's function (split_loaders
    gets a stand-in split_indices), so a variant that failed would show as its own task failing."""
    nb = reference
    for task, source in VARIANTS.items():
        nb = replace_solution(nb, task, source)
    report = grade(nb)
    assert report.failed_tasks() == set(), {t.id: t.output for t in report.tasks if not t.passed}


# ------------------------------------------------------------------ more mistakes, graded in groups
SEEDED_GEN = """gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)"""
SEED_ZERO_IS_NO_SEED = """gen = torch.Generator()
    if seed:
        gen.manual_seed(seed)
    else:
        gen.seed()"""

NUMPY_NOISE = """
import numpy as np
def make_regression(w, b, n, noise=0.01, seed=None, power=1):
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed)
    X = torch.randn(n, len(w))
    y = (X ** power) @ w + b
    y = y.numpy() + np.random.normal(0, noise, size=n)
    return X, torch.from_numpy(y).reshape(-1, 1)
"""

BLOBS_UNSEEDED = """
def make_blobs(n_per_class, centers, spread=1.0, seed=None):
    X = torch.cat([c + spread * torch.randn(n_per_class, len(c)) for c in centers])
    y = torch.arange(len(centers)).repeat_interleave(n_per_class)
    return X, y
"""

D2L_SHUFFLE_IGNORES_GENERATOR = """
import random
def minibatches(X, y, batch_size, shuffle=True, generator=None):
    indices = list(range(len(X)))
    if shuffle:
        random.shuffle(indices)
    for i in range(0, len(indices), batch_size):
        batch_indices = torch.tensor(indices[i: i + batch_size])
        yield X[batch_indices], y[batch_indices]
"""

SPLIT_AS_LISTS = """
import random
def split_indices(n, val_frac, seed=None):
    indices = list(range(n))
    random.Random(seed).shuffle(indices)
    n_val = int(n * val_frac)
    return indices[n_val:], indices[:n_val]
"""

VAL_SIZE_FROM_TRAIN_FRACTION = """
def split_indices(n, val_frac, seed=None):
    gen = torch.Generator()
    if seed is not None:
        gen.manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    n_train = int(n * (1 - val_frac))
    return perm[:n_train], perm[n_train:]
"""

COPIES_INTO_TENSOR_DATASETS = """
def split_loaders(dataset, batch_size, val_frac, seed=None):
    train_idx, val_idx = split_indices(len(dataset), val_frac, seed)
    train_set = TensorDataset(*dataset[train_idx])
    valid_set = TensorDataset(*dataset[val_idx])
    return (DataLoader(train_set, batch_size=batch_size, shuffle=True),
            DataLoader(valid_set, batch_size=batch_size, shuffle=True))
"""

SUBSET_AND_SUBSET_SAMPLER = """
from torch.utils.data import Subset
def split_loaders(dataset, batch_size, val_frac, seed=None):
    train_idx, val_idx = split_indices(len(dataset), val_frac, seed)
    train_loader = DataLoader(Subset(dataset, train_idx), batch_size=batch_size,
                              sampler=SubsetRandomSampler(train_idx.tolist()))
    valid_loader = DataLoader(Subset(dataset, val_idx), batch_size=batch_size,
                              sampler=SubsetRandomSampler(val_idx.tolist()))
    return train_loader, valid_loader
"""

# No %%writefile: an import hook serves `my_datasets` from the notebook's own functions, no file is written.
MODULE_SERVED_BY_AN_IMPORT_HOOK = """
import importlib.abc
import importlib.util
import sys


class NotebookModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name == "my_datasets" else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.make_regression = make_regression
        module.minibatches = minibatches
        module.torch = torch


sys.meta_path.insert(0, NotebookModule())
"""

# name: (task it must cost, [edits (old, new)] or a replacement source)
GROUPED_MISTAKES = {
    "seed_zero_is_no_seed_regression": ("regression_data", [(SEEDED_GEN, SEED_ZERO_IS_NO_SEED)]),
    "numpy_noise_float64": ("regression_data", NUMPY_NOISE),
    "power_after_the_product": ("nonlinear_data", [("y = (X ** power) @ w + b + noise *",
                                                    "y = (X @ w) ** power + b + noise *")]),
    "blobs_seed_ignored": ("blobs_data", BLOBS_UNSEEDED),
    "d2l_shuffle_ignores_generator": ("minibatches", D2L_SHUFFLE_IGNORES_GENERATOR),
    "generator_not_passed_to_randperm": ("minibatches", [("torch.randperm(n, generator=generator)",
                                                          "torch.randperm(n)")]),
    "indices_as_python_lists": ("split_indices", SPLIT_AS_LISTS),
    "seed_zero_is_no_seed_split": ("split_indices", [(SEEDED_GEN, SEED_ZERO_IS_NO_SEED)]),
    "val_size_from_train_fraction": ("split_indices", VAL_SIZE_FROM_TRAIN_FRACTION),
    "seed_not_passed_to_split_indices": ("split_loaders", [("split_indices(len(dataset), val_frac, seed)",
                                                            "split_indices(len(dataset), val_frac)")]),
    "batch_size_not_given_to_loader": ("split_loaders", [
        ("DataLoader(dataset, batch_size=batch_size, sampler=SubsetRandomSampler(train_idx.tolist()))",
         "DataLoader(dataset, sampler=SubsetRandomSampler(train_idx.tolist()))")]),
    "labels_made_float": ("pair_dataset", [("self.X, self.y = X, y", "self.X, self.y = X, y.float()")]),
    "features_flattened": ("pair_dataset", [("self.X, self.y = X, y", "self.X, self.y = X.reshape(len(X), -1), y")]),
    "getitem_misspelled": ("pair_dataset", [("def __getitem__(self, i):", "def __get_item__(self, i):")]),
    "sampler_is_the_index_list": ("split_loaders", [("sampler=SubsetRandomSampler(train_idx.tolist())",
                                                     "sampler=train_idx.tolist()")]),
    "copies_into_tensor_datasets": ("split_loaders", COPIES_INTO_TENSOR_DATASETS),
    "subset_and_subset_sampler": ("split_loaders", SUBSET_AND_SUBSET_SAMPLER),
    "getitem_off_by_one": ("pair_dataset", [("return self.X[i], self.y[i]", "return self.X[i], self.y[i - 1]")]),
    "not_a_dataset": ("pair_dataset", [("class PairDataset(Dataset):", "class PairDataset:")]),
    "module_served_by_an_import_hook": ("reusable_module", MODULE_SERVED_BY_AN_IMPORT_HOOK),
    "module_minibatches_without_generator": ("reusable_module", [
        ("def minibatches(X, y, batch_size, shuffle=True, generator=None):",
         "def minibatches(X, y, batch_size, shuffle=True):"),
        ("torch.randperm(n, generator=generator)", "torch.randperm(n)")]),
}
# The first bank, written as edits of the reference: same format.
for _name, (_cell, _old, _new) in MISTAKES.items():
    GROUPED_MISTAKES[_name] = (EXPECTED_LOSS[_name], [(_old, _new)])
# The code cell each mistake is written in (nonlinear_data's code lives in make_regression's cell).
CELL_OF = {"nonlinear_data": "regression_data"}
# One grading per group; a group holds at most one mistake per task and leaves some tasks untouched, so
# that a mistake leaking into another task shows (e.g. a split_indices mistake with split_loaders intact).
MISTAKE_GROUPS = [
    ["seed_zero_is_no_seed_regression", "blobs_seed_ignored", "d2l_shuffle_ignores_generator",
     "indices_as_python_lists", "labels_made_float", "sampler_is_the_index_list", "module_served_by_an_import_hook"],
    ["power_after_the_product", "seed_ignored", "val_size_from_train_fraction", "seed_not_passed_to_split_indices",
     "features_flattened", "module_minibatches_without_generator"],
    ["numpy_noise_float64", "generator_not_passed_to_randperm", "seed_zero_is_no_seed_split",
     "batch_size_not_given_to_loader", "getitem_misspelled"],
    ["y_of_shape_n", "float_labels", "random_shuffle_on_tensor", "overlapping_indices", "len_counts_features",
     "copies_into_tensor_datasets"],
    ["missing_bias", "spread_ignored", "last_partial_batch_dropped", "validation_is_first_block",
     "both_loaders_on_all_data", "getitem_returns_only_x"],
    ["power_ignored", "noise_level_ignored", "x_and_y_shuffled_separately", "module_without_import",
     "getitem_off_by_one", "subset_and_subset_sampler"],
    ["not_a_dataset"],
]


def _with_mistakes(nb, names):
    for name in names:
        task, how = GROUPED_MISTAKES[name]
        cell = CELL_OF.get(task, task)
        if isinstance(how, str):
            nb = replace_solution(nb, cell, how)
        else:
            for old, new in how:
                nb = edit_solution(nb, cell, old, new)
    return nb


def test_mistake_groups_cover_the_bank():
    expect_groups_cover(MISTAKE_GROUPS, GROUPED_MISTAKES)


@pytest.mark.parametrize("group", MISTAKE_GROUPS, ids=lambda group: "+".join(group))
def test_grouped_mistakes_lose_exactly_their_tasks(reference, group):
    report = grade(_with_mistakes(reference, group))
    expected = {GROUPED_MISTAKES[name][0] for name in group}
    assert report.failed_tasks() == expected, {t.id: t.output for t in report.tasks}
    for task in expected:
        output = report.by_task[task].output
        assert output.strip() and "not implemented" not in output, output
        assert "/tmp" not in output, output
    if "getitem_misspelled" in group:
        assert "__getitem__" in report.by_task["pair_dataset"].output
    for name, phrase in MISTAKE_MESSAGES.items():
        if name in group:
            output = report.by_task[GROUPED_MISTAKES[name][0]].output
            assert phrase in output, (name, output)


# What the new consequence checks say (the mistakes they exist for).
MISTAKE_MESSAGES = {
    "sampler_is_the_index_list": "new random order each epoch",
    "copies_into_tensor_datasets": "copy of the data",
    "getitem_off_by_one": "should be y[",
    "not_a_dataset": "subclass torch.utils.data.Dataset",
    "module_served_by_an_import_hook": "no file my_datasets.py",
}


GROUPED_VARIANTS = {
    "regression_data": """
import numpy as np
def make_regression(w, b, n, noise=0.01, seed=None, power=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, len(w))).astype(np.float32)
    eps = rng.normal(0.0, noise, size=(n, 1)).astype(np.float32)
    y = (X ** power) @ w.numpy().reshape(-1, 1) + b + eps
    return torch.from_numpy(X), torch.from_numpy(y.astype(np.float32))
""",
    "blobs_data": """
def make_blobs(n_per_class, centers, spread=1.0, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    X = torch.cat([torch.normal(c.repeat(n_per_class, 1), spread) for c in centers])
    y = torch.cat([torch.full((n_per_class,), k, dtype=torch.long) for k in range(len(centers))])
    return X, y
""",
    "minibatches": """
import random
def minibatches(X, y, batch_size, shuffle=True, generator=None):
    num_examples = len(X)
    indices = list(range(num_examples))
    if shuffle and generator is not None:
        indices = torch.randperm(num_examples, generator=generator).tolist()
    elif shuffle:
        random.shuffle(indices)
    for i in range(0, num_examples, batch_size):
        batch_indices = torch.tensor(indices[i: min(i + batch_size, num_examples)])
        yield X[batch_indices], y[batch_indices]
""",
    "split_indices": """
import numpy as np
def split_indices(n, val_frac, seed=None):
    rng = np.random.default_rng(seed)
    perm = torch.from_numpy(rng.permutation(n))
    n_val = int(n * val_frac)
    return perm[n_val:], perm[:n_val]
""",
    "split_loaders": """
def split_loaders(dataset, batch_size, val_frac, seed=None):
    train_idx, val_idx = split_indices(n=len(dataset), val_frac=val_frac, seed=seed)
    print(f"{len(train_idx)} training and {len(val_idx)} validation samples")
    train_loader = DataLoader(dataset, batch_size=batch_size, sampler=SubsetRandomSampler(train_idx))
    valid_loader = DataLoader(dataset, batch_size=batch_size, sampler=SubsetRandomSampler(val_idx))
    return train_loader, valid_loader
""",
    "pair_dataset": """
class PairDataset(TensorDataset):
    def __init__(self, X, y):
        super().__init__(X, y)
""",
}


def test_grouped_variants_get_full_marks(reference):
    """Correct variants of six tasks in one notebook (numpy generators, d2l's index list, torch.normal,
    keyword calls with a print, a TensorDataset subclass): every task keeps full marks."""
    nb = reference
    for task, source in GROUPED_VARIANTS.items():
        nb = replace_solution(nb, task, source)
    report = grade(nb)
    assert report.failed_tasks() == set(), {t.id: t.output for t in report.tasks if not t.passed}


# ------------------------------------------------------------------ round 3: the edges the instructions state
# Each loses exactly its task only through the check named (see the graders' CONTRACT tables).
ROUND3_MISTAKES = {
    # int(n * val_frac) is 0 for n=4, val_frac=0.2: perm[-0:] is the whole permutation, perm[:-0] empty.
    "split_negative_slices_with_no_validation": ("split_indices", [("return perm[n_val:], perm[:n_val]",
                                                                    "return perm[:-n_val], perm[-n_val:]")]),
    # Seed 0 leaves the global state as it is: two forks from the same state looked seeded.
    "split_seeds_global_rng_only_if_seed": ("split_indices", [(
        SEEDED_GEN + "\n    perm = torch.randperm(n, generator=gen)",
        "if seed:\n        torch.manual_seed(seed)\n    perm = torch.randperm(n)")]),
    # The batches must keep the dtypes given: float64 features came back float32.
    "minibatches_features_cast_to_float32": ("minibatches", [("yield X[idx], y[idx]", "yield X[idx].float(), y[idx]")]),
    # Items unchanged, dtype included: raw uint8 images came back float32.
    "pair_dataset_features_made_float": ("pair_dataset", [("self.X, self.y = X, y",
                                                           "self.X, self.y = torch.as_tensor(X, dtype=torch.float32), y")]),
    # The module's make_regression is the one written before the power task.
    "module_make_regression_without_power": ("reusable_module", [
        ("def make_regression(w, b, n, noise=0.01, seed=None, power=1):\n    \"\"\"y = (X ** power)",
         "def make_regression(w, b, n, noise=0.01, seed=None):\n    \"\"\"y = (X ** power)"),
        ("    y = (X ** power) @ w + b + noise * torch.randn(n, generator=gen)\n    return X, y.reshape(-1, 1)\n\n\ndef minibatches",
         "    y = X @ w + b + noise * torch.randn(n, generator=gen)\n    return X, y.reshape(-1, 1)\n\n\ndef minibatches")]),
}
GROUPED_MISTAKES.update(ROUND3_MISTAKES)
MISTAKE_GROUPS += [
    ["split_negative_slices_with_no_validation", "minibatches_features_cast_to_float32",
     "pair_dataset_features_made_float", "module_make_regression_without_power"],
    ["split_seeds_global_rng_only_if_seed"],
]
MISTAKE_MESSAGES.update({
    "split_negative_slices_with_no_validation": "int(n * val_frac) = int(0.8) = 0",
    "split_seeds_global_rng_only_if_seed": "seed=0",
    "minibatches_features_cast_to_float32": "float64",
    "pair_dataset_features_made_float": "torch.uint8",
    "module_make_regression_without_power": "power",
})

# Correct solutions the round-3 checks must keep accepting: the global RNG seeded with manual_seed (even 0),
# a Dataset that keeps tensors through torch.as_tensor, and minibatches through index_select on any dtype.
ROUND3_VARIANTS = {
    "split_indices": """
def split_indices(n, val_frac, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    shuffled = torch.randperm(n)
    n_val = int(n * val_frac)
    return shuffled[n_val:], shuffled[:n_val]
""",
    "pair_dataset": """
class PairDataset(Dataset):
    def __init__(self, X, y):
        self.X = torch.as_tensor(X)
        self.y = torch.as_tensor(y)

    def __len__(self):
        return self.X.shape[0]

    def __getitem__(self, idx):
        return (self.X[idx], self.y[idx])
""",
    "minibatches": """
def minibatches(X, y, batch_size, shuffle=True, generator=None):
    n = X.shape[0]
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for batch in order.split(batch_size):
        yield torch.index_select(X, 0, batch), torch.index_select(y, 0, batch)
""",
}


def test_round3_variants_get_full_marks(reference):
    expect_full_marks(grade(with_solutions(reference, ROUND3_VARIANTS)))
