"""MNIST and Fashion-MNIST through ``torchvision.datasets``, online or offline.

Online, torchvision downloads the files as usual. Offline, the IDX files (``.gz`` or uncompressed) are
looked for, in this order, in:

1. the ``root`` argument (the folder itself, ``<root>/<ClassName>/raw`` or ``<root>/<name>``);
2. the folder in the environment variable ``COURSE_DATA_DIR`` (same three places);
3. the course's shared data folder ``../shared/data/<name>`` next to the repository (MNIST: the
   10,000-image test split only) and ``$COURSE_SHARED_DATA/<name>``;
4. the project's git-ignored ``data/<name>``, where set-up downloads what no other place holds
   (``python -m autograder fetch-data``);
5. Debian's ``/usr/share/datasets/<name>`` (package ``dataset-fashion-mnist``).

torchvision expects ``<root>/<ClassName>/raw/<uncompressed files>``; that layout is made in a cache
folder (``COURSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/course-data`` or ``~/.cache/course-data``):
the compressed files are linked there and decompressed by torchvision's own ``extract_archive``,
never copied into the repository. torchvision reads the files; nothing here parses IDX.

When only the MNIST test split exists (the offline case), :func:`train_valid_split` splits it with a
fixed seed into 8,000 training and 2,000 validation images.
"""
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch.utils.data import Subset

__all__ = [
    "DataNotFoundError", "MNIST_MEAN", "MNIST_STD", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD",
    "FASHION_MNIST_CLASSES", "normalize_transform", "load_mnist", "load_fashion_mnist",
    "has_split", "seeded_split", "train_valid_split", "mnist_train_valid", "to_tensors",
]

DATA_DIR_ENV = "COURSE_DATA_DIR"
SHARED_DATA_ENV = "COURSE_SHARED_DATA"
CACHE_DIR_ENV = "COURSE_CACHE_DIR"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEBIAN_DATASETS = Path("/usr/share/datasets")

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

_SPLIT_PREFIX = {True: "train", False: "t10k"}
_KINDS = {
    # kind: (torchvision class name, folder name, mean, std)
    "mnist": ("MNIST", "mnist", MNIST_MEAN, MNIST_STD),
    "fashion-mnist": ("FashionMNIST", "fashion-mnist", FASHION_MNIST_MEAN, FASHION_MNIST_STD),
}


class DataNotFoundError(FileNotFoundError):
    """Raised when a data set is neither on disk nor downloadable; the message lists every place tried."""


def normalize_transform(mean=MNIST_MEAN, std=MNIST_STD):
    """ToTensor (uint8 28x28 -> float (1, 28, 28) in [0, 1]) followed by Normalize(mean, std)."""
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])


def _split_files(train):
    """The two IDX file names (without .gz) of one split."""
    prefix = _SPLIT_PREFIX[bool(train)]
    return [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]


def _candidate_dirs(kind, root):
    """Folders to search, in order, for the IDX files of ``kind``."""
    class_name, folder, _, _ = _KINDS[kind]
    dirs = []
    for base in (root, os.environ.get(DATA_DIR_ENV)):
        if base:
            base = Path(base).expanduser()
            dirs += [base, base / class_name / "raw", base / folder]
    shared = os.environ.get(SHARED_DATA_ENV)
    if shared:
        dirs.append(Path(shared).expanduser() / folder)
    dirs.append(REPO_ROOT.parent / "shared" / "data" / folder)
    dirs.append(REPO_ROOT / "data" / folder)
    dirs.append(DEBIAN_DATASETS / folder)
    seen, unique = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            unique.append(d)
    return unique


def _find_file(folder, name):
    """Path of ``name`` or ``name.gz`` in ``folder``, or None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _find_split(kind, root, train):
    """(folder, [paths]) of the first folder holding both files of the split, or (None, tried folders)."""
    tried = _candidate_dirs(kind, root)
    for folder in tried:
        paths = [_find_file(folder, name) for name in _split_files(train)]
        if all(paths):
            return folder, paths
    return None, tried


def has_split(kind="mnist", train=True, root=None):
    """Whether the files of one split of ``kind`` ("mnist" or "fashion-mnist") are on disk."""
    return _find_split(kind, root, train)[0] is not None


def _cache_root():
    """A writable cache folder for the torchvision layout (created on demand)."""
    choices = []
    if os.environ.get(CACHE_DIR_ENV):
        choices.append(Path(os.environ[CACHE_DIR_ENV]).expanduser())
    xdg = os.environ.get("XDG_CACHE_HOME")
    choices.append((Path(xdg) if xdg else Path.home() / ".cache") / "course-data")
    choices.append(Path(tempfile.gettempdir()) / f"course-data-{os.getuid() if hasattr(os, 'getuid') else 0}")
    for choice in choices:
        try:
            choice.mkdir(parents=True, exist_ok=True)
            if os.access(choice, os.W_OK):
                return choice
        except OSError:
            continue
    raise DataNotFoundError("no writable cache folder: tried " + ", ".join(map(str, choices)))


def _stage(kind, paths):
    """Make ``<cache>/<ClassName>/raw/`` hold the uncompressed files; returns the torchvision root."""
    from torchvision.datasets.utils import extract_archive

    class_name = _KINDS[kind][0]
    cache = _cache_root()
    raw = cache / class_name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for path in paths:
        target = raw / path.name.removesuffix(".gz")
        if target.is_file() and target.stat().st_mtime >= path.stat().st_mtime:
            continue
        work = Path(tempfile.mkdtemp(dir=raw, prefix=".staging-"))
        try:
            if path.suffix == ".gz":
                link = work / path.name
                os.symlink(path.resolve(), link)
                extract_archive(str(link), str(work))
                os.replace(work / target.name, target)  # atomic: parallel loaders never see half a file
            else:
                os.symlink(path.resolve(), work / target.name)
                os.replace(work / target.name, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return cache


def _dataset_class(kind):
    """torchvision's class for ``kind``, accepting a folder that holds only the requested split."""
    from torchvision import datasets
    from torchvision.datasets.utils import check_integrity

    base = getattr(datasets, _KINDS[kind][0])

    class OneSplit(base):
        """torchvision's dataset, but only the requested split's files need to exist."""

        @property
        def raw_folder(self):
            return os.path.join(self.root, base.__name__, "raw")

        def _check_exists(self):
            return all(check_integrity(os.path.join(self.raw_folder, name)) for name in _split_files(self.train))

    OneSplit.__name__ = OneSplit.__qualname__ = base.__name__
    return OneSplit


def _reason(error):
    """One line saying why ``error`` happened: torchvision's "Error downloading <file>:" is followed on the next
    lines by each mirror tried and what it answered, which are the reason."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    text = lines[0]
    for line in lines[1:]:
        text += (" " if text.endswith(":") else "; ") + line
    return text


def _load(kind, root, train, transform, download):
    """Shared body of load_mnist / load_fashion_mnist."""
    class_name, _, mean, std = _KINDS[kind]
    if transform is None:
        transform = normalize_transform(mean, std)
    folder, found = _find_split(kind, root, train)
    cls = _dataset_class(kind)
    if folder is not None:
        return cls(str(_stage(kind, found)), train=train, transform=transform)
    tried = found
    errors = []
    if download is None or download:
        target = Path(root or os.environ.get(DATA_DIR_ENV) or _cache_root()).expanduser()
        try:
            return getattr(__import__("torchvision.datasets", fromlist=[class_name]), class_name)(
                str(target), train=train, transform=transform, download=True)
        except Exception as error:  # offline: URLError, RuntimeError from every mirror
            errors.append(f"download into {target} failed: {_reason(error)}")
    else:
        errors.append("download=False, so no download was tried")
    names = " and ".join(f"{n}[.gz]" for n in _split_files(train))
    split = "training" if train else "test"
    lines = [f"{class_name} {split} split not found: looked for {names} in"]
    lines += [f"  - {d}" for d in tried]
    lines += [f"  ({e})" for e in errors]
    lines.append(f"Set {DATA_DIR_ENV}=/folder/with/the/files or pass root=..., or go online.")
    if kind == "mnist" and train and has_split(kind, train=False, root=root):
        lines.append("Only the MNIST test split is available offline: use course.data.mnist_train_valid(), "
                     "which splits it into 8,000 training and 2,000 validation images.")
    raise DataNotFoundError("\n".join(lines))


def load_mnist(root=None, train=True, transform=None, download=None):
    """MNIST as a torchvision dataset of (image (1, 28, 28) float32, label int) pairs.

    ``transform=None`` means ToTensor + Normalize(MNIST_MEAN, MNIST_STD). ``download=None`` downloads
    only when no files are found on disk; ``False`` never downloads. Raises DataNotFoundError listing
    every place it looked.
    """
    return _load("mnist", root, train, transform, download)


def load_fashion_mnist(root=None, train=True, transform=None, download=None):
    """Fashion-MNIST as a torchvision dataset of (image (1, 28, 28) float32, label int) pairs.

    ``transform=None`` means ToTensor + Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD); see load_mnist.
    """
    return _load("fashion-mnist", root, train, transform, download)


def seeded_split(n, n_valid, seed=0):
    """Shuffle range(n) with ``seed``; returns (train_indices, valid_indices) as lists, valid of length n_valid."""
    if not 0 < n_valid < n:
        raise ValueError(f"n_valid must be between 1 and n - 1 = {n - 1}, got {n_valid}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return perm[n_valid:], perm[:n_valid]


def train_valid_split(dataset, n_valid=2000, seed=0, n_train=None):
    """Seeded (train, valid) Subsets of ``dataset``; ``n_train`` caps the training part."""
    train_idx, valid_idx = seeded_split(len(dataset), n_valid, seed)
    if n_train is not None:
        train_idx = train_idx[:n_train]
    return Subset(dataset, train_idx), Subset(dataset, valid_idx)


def mnist_train_valid(root=None, transform=None, n_valid=2000, seed=0, use_test_split=None):
    """The MNIST (train, valid) pair this course trains on, and a sentence saying where it came from.

    With ``use_test_split=None``: the 60,000-image training split minus ``n_valid`` validation images
    when it is available, else the 10,000-image test split divided 8,000 / 2,000 with ``seed``.
    ``use_test_split=True`` always uses the test split (graders do, so that every machine agrees).
    Returns (train_set, valid_set, description).
    """
    if use_test_split is None:
        use_test_split = not has_split("mnist", train=True, root=root)
    dataset = load_mnist(root, train=not use_test_split, transform=transform,
                         download=False if use_test_split else None)
    train_set, valid_set = train_valid_split(dataset, n_valid=n_valid, seed=seed)
    source = ("the MNIST test split (10,000 images; the training split is not available here)"
              if use_test_split else "the MNIST training split (60,000 images)")
    description = (f"{len(train_set):,} training and {len(valid_set):,} validation images, "
                   f"a seeded split (seed {seed}) of {source}")
    return train_set, valid_set, description


def mnist_test_split_tensors(n_valid=2000, seed=0, root=None):
    """The seeded split of MNIST's test split as raw tensors, as the graders use it.

    Returns (X_train uint8 (10000 - n_valid, 28, 28), y_train int64, X_valid uint8 (n_valid, 28, 28),
    y_valid int64); the split is ``seeded_split(10000, n_valid, seed)``, as in ``mnist_train_valid``.
    """
    dataset = load_mnist(root, train=False, download=False)
    train_idx, valid_idx = seeded_split(len(dataset), n_valid, seed=seed)
    images, labels = dataset.data, dataset.targets
    return images[train_idx], labels[train_idx], images[valid_idx], labels[valid_idx]


def to_tensors(dataset, batch_size=2000):
    """Stack a dataset of (image, label) pairs into (X: (N, 1, 28, 28) float32, y: (N,) int64)."""
    from torch.utils.data import DataLoader

    Xs, ys = [], []
    for X, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        Xs.append(X)
        ys.append(torch.as_tensor(y, dtype=torch.int64))
    return torch.cat(Xs), torch.cat(ys)
