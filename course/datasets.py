"""Synthetic data and batching: regression data, Gaussian blobs, mini-batches, train/validation splits.

The finished versions of what lesson 01-datasets builds; later lessons import them from here.
"""
import torch
from torch.utils.data import DataLoader, Dataset, SubsetRandomSampler


def _generator(seed):
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen


def make_regression(w, b, n, noise=0.01, seed=None, power=1):
    """Regression data y = (X ** power) @ w + b + noise, with X ~ N(0, 1) and noise ~ N(0, noise**2).

    w: (d,) float tensor of coefficients; b: float bias; n: number of samples.
    Returns X: (n, d) float32, y: (n, 1) float32.
    """
    gen = _generator(seed)
    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1)
    X = torch.randn(n, len(w), generator=gen)
    y = (X ** power) @ w + b
    y = y + noise * torch.randn(n, generator=gen)
    return X, y.reshape(-1, 1)


def make_blobs(n_per_class, centers, spread=1.0, seed=None):
    """Gaussian blobs: ``n_per_class`` points around each centre with standard deviation ``spread``.

    centers: (C, d) float tensor. Returns X: (C * n_per_class, d) float32 and y: (C * n_per_class,) int64
    class indices, class by class.
    """
    gen = _generator(seed)
    centers = torch.as_tensor(centers, dtype=torch.float32)
    num_classes, d = centers.shape
    X = centers.repeat_interleave(n_per_class, dim=0) + spread * torch.randn(num_classes * n_per_class, d,
                                                                              generator=gen)
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    return X, y


def minibatches(X, y, batch_size, shuffle=True, generator=None):
    """Yield (X_batch, y_batch) pairs covering every sample exactly once; the last batch may be smaller.

    X: (n, ...) tensor; y: (n, ...) tensor; batch_size: int >= 1.
    """
    n = len(X)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]


def split_indices(n, val_frac, seed=None):
    """Shuffle range(n) and split it: returns (train_idx, val_idx), int64 tensors, val of size int(n * val_frac)."""
    perm = torch.randperm(n, generator=_generator(seed))
    n_val = int(n * val_frac)
    return perm[n_val:], perm[:n_val]


def split_loaders(dataset, batch_size, val_frac, seed=None):
    """(train_loader, valid_loader) over disjoint parts of ``dataset`` via SubsetRandomSampler."""
    train_idx, val_idx = split_indices(len(dataset), val_frac, seed)
    train_loader = DataLoader(dataset, batch_size=batch_size, sampler=SubsetRandomSampler(train_idx.tolist()))
    valid_loader = DataLoader(dataset, batch_size=batch_size, sampler=SubsetRandomSampler(val_idx.tolist()))
    return train_loader, valid_loader


class PairDataset(Dataset):
    """A map-style dataset of (X[i], y[i]) pairs: X (n, ...) and y (n, ...) tensors of equal length."""

    def __init__(self, X, y):
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]
