"""course.data (MNIST / Fashion-MNIST offline and online), course.devices, course.mlp and course.cnn."""
import contextlib
import io
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from course import data
from course import cnn
from course.cnn import Net, make_optimizer, predict_image
from course.devices import DeviceDataLoader, get_default_device, to_device
from course.mlp import MnistModel, loss_fn
from course.training import accuracy, evaluate, fit

SHARED_MNIST = Path(data.REPO_ROOT).parent / "shared" / "data" / "mnist"
DEBIAN_FASHION = data.DEBIAN_DATASETS / "fashion-mnist"
needs_mnist = pytest.mark.skipif(not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists(),
                                 reason="the shared MNIST test split is not on this machine")
needs_fashion = pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists(),
                                   reason="Debian's dataset-fashion-mnist is not installed")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No configured folders, a private cache, and no shared or Debian folders to fall back on."""
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(data.SHARED_DATA_ENV, raising=False)
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(data, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setattr(data, "DEBIAN_DATASETS", tmp_path / "no-debian")
    return tmp_path


def link_mnist_test_split(folder):
    """A folder holding (links to) the two shared MNIST test files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        os.symlink(SHARED_MNIST / name, folder / name)
    return folder


# ------------------------------------------------------------------------------------------- data
@needs_mnist
def test_mnist_test_split_from_the_shared_folder():
    dataset = data.load_mnist(train=False, download=False)
    assert len(dataset) == 10_000
    X, y = dataset[0]
    assert X.shape == (1, 28, 28) and X.dtype == torch.float32 and isinstance(y, int)
    X, y = data.to_tensors(torch.utils.data.Subset(dataset, range(2000)))
    assert X.shape == (2000, 1, 28, 28) and y.dtype == torch.int64
    assert abs(X.mean().item()) < 0.1 and abs(X.std().item() - 1) < 0.1      # ToTensor + Normalize
    assert set(y.tolist()) == set(range(10))


@needs_mnist
def test_mnist_from_the_environment_variable(isolated, monkeypatch):
    folder = link_mnist_test_split(isolated / "mine")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(folder))
    dataset = data.load_mnist(train=False, download=False)
    assert len(dataset) == 10_000
    raw = isolated / "cache" / "MNIST" / "raw"
    assert (raw / "t10k-images-idx3-ubyte").is_file()                          # staged in the cache only
    assert not any(p.name.endswith("-ubyte") for p in folder.iterdir())


@needs_mnist
def test_mnist_from_a_root_argument_in_torchvision_layout(isolated):
    root = isolated / "root"
    link_mnist_test_split(root / "MNIST" / "raw")
    dataset = data.load_mnist(root=root, train=False, download=False, transform=None)
    assert len(dataset) == 10_000
    assert data.has_split("mnist", train=False, root=root)
    assert not data.has_split("mnist", train=True, root=root)


@needs_mnist
def test_raw_transform_is_respected(isolated, monkeypatch):
    from torchvision import transforms
    monkeypatch.setenv(data.DATA_DIR_ENV, str(link_mnist_test_split(isolated / "mine")))
    X, _ = data.load_mnist(train=False, transform=transforms.ToTensor(), download=False)[0]
    assert X.min() >= 0 and X.max() <= 1


def test_nothing_found_says_where_it_looked(isolated, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(isolated / "configured"))
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_mnist(root=isolated / "given", train=False, download=False)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte[.gz]" in message and "t10k-labels-idx1-ubyte[.gz]" in message
    for folder in (isolated / "given", isolated / "configured", isolated / "shared" / "data" / "mnist",
                   isolated / "no-debian" / "mnist"):
        assert str(folder) in message
    assert "download=False" in message and data.DATA_DIR_ENV in message


@needs_mnist
def test_missing_training_split_points_to_the_seeded_split():
    if data.has_split("mnist", train=True):
        pytest.skip("the MNIST training split is available here")
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_mnist(train=True, download=False)
    assert "mnist_train_valid" in str(info.value) and "8,000" in str(info.value)


@needs_mnist
def test_seeded_train_valid_split_of_the_test_split():
    train_set, valid_set, description = data.mnist_train_valid(use_test_split=True)
    assert (len(train_set), len(valid_set)) == (8000, 2000)
    assert set(train_set.indices).isdisjoint(valid_set.indices)
    assert "test split" in description and "8,000" in description and "2,000" in description
    again, _, _ = data.mnist_train_valid(use_test_split=True)
    other, _, _ = data.mnist_train_valid(use_test_split=True, seed=1)
    assert again.indices == train_set.indices and other.indices != train_set.indices


def test_raw_tensor_split_is_the_seeded_split():
    X_train, y_train, X_valid, y_valid = data.mnist_test_split_tensors(2000, seed=0)
    assert X_train.shape == (8000, 28, 28) and X_valid.shape == (2000, 28, 28) and X_train.dtype == torch.uint8
    _, valid_set, _ = data.mnist_train_valid(n_valid=2000, seed=0, use_test_split=True)
    assert torch.equal(y_valid, valid_set.dataset.targets[valid_set.indices])
    assert torch.equal(X_valid, valid_set.dataset.data[valid_set.indices])


def test_seeded_split_rejects_bad_sizes():
    with pytest.raises(ValueError):
        data.seeded_split(10, 10)
    train_idx, valid_idx = data.seeded_split(10, 3, seed=4)
    assert sorted(train_idx + valid_idx) == list(range(10)) and len(valid_idx) == 3


@needs_fashion
def test_fashion_mnist_from_debian():
    dataset = data.load_fashion_mnist(train=True, download=False)
    assert len(dataset) == 60_000
    X, y = dataset[0]
    assert X.shape == (1, 28, 28) and 0 <= y < 10
    assert len(data.load_fashion_mnist(train=False, download=False)) == 10_000


# ---------------------------------------------------------------------------------------- devices
def test_default_device_follows_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_default_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_default_device() == torch.device("cpu")


def test_to_device_and_device_data_loader_on_meta():
    meta = torch.device("meta")
    X, y = torch.randn(10, 1, 28, 28), torch.arange(10)
    moved = to_device([X, y], meta)
    assert isinstance(moved, list) and all(t.device == meta for t in moved) and X.device.type == "cpu"
    assert to_device({"X": X}, meta)["X"].device == meta
    loader = DeviceDataLoader(DataLoader(TensorDataset(X, y), batch_size=4), meta)
    assert len(loader) == 3
    for _ in range(2):                                                        # a fresh pass each time
        batches = list(loader)
        assert [len(b[0]) for b in batches] == [4, 4, 2] and all(t.device == meta for b in batches for t in b)
    for model, loss in ((MnistModel(), loss_fn), (Net(), F.nll_loss)):        # forward and backward on meta
        model.to(meta)
        for Xb, yb in loader:
            out = model(Xb)
            assert out.device == meta and out.shape == (len(Xb), 10)
            loss(out, yb).backward()
        assert all(p.grad is not None and p.grad.device == meta for p in model.parameters())


# ------------------------------------------------------------------------------------------ models
def test_models_shapes_and_parameters():
    assert sum(p.numel() for p in MnistModel(784, 32, 10).parameters()) == 25_450
    assert sum(p.numel() for p in Net().parameters()) == 300_426
    X = torch.randn(3, 1, 28, 28)
    assert MnistModel()(X).shape == (3, 10) and MnistModel()(X.reshape(3, 784)).shape == (3, 10)
    net = Net().eval()
    out = net(X)
    assert out.shape == (3, 10) and torch.allclose(out.exp().sum(1), torch.ones(3), atol=1e-5)
    assert torch.equal(out, net(X))
    net.train()
    torch.manual_seed(0)
    assert not torch.equal(net(X), net(X))                                    # dropout on in train mode


def test_cnn_train_test_predict_on_tiny_data():
    torch.manual_seed(0)
    X, y = torch.randn(40, 1, 28, 28), torch.randint(0, 10, (40,))
    loader = DataLoader(TensorDataset(X, y), batch_size=16)
    net = Net()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        loss = cnn.train(net, torch.device("cpu"), loader, make_optimizer(net), 1, log_interval=2)
        test_loss, acc = cnn.test(net, torch.device("cpu"), loader)
    assert isinstance(loss, float) and isinstance(test_loss, float) and 0 <= acc <= 1
    assert len(printed.getvalue().splitlines()) == 3                          # batches 0 and 2, then test
    assert not net.training
    assert predict_image(net, X[0]) in range(10)


def test_mlp_with_course_training_helpers():
    torch.manual_seed(0)
    X, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    loader = DeviceDataLoader(DataLoader(TensorDataset(X, y), batch_size=16), get_default_device())
    net = MnistModel().to(get_default_device())
    history = fit(net, loss_fn, torch.optim.SGD(net.parameters(), lr=0.1), loader, 3, loader, accuracy,
                  progress=False)
    assert len(history["valid_metric"]) == 3 and history["train_loss"][-1] < history["train_loss"][0]
    assert evaluate(net, loss_fn, loader, accuracy)["n"] == 64


def test_device_side_loop_trains_like_the_trainer():
    """course.training (06's loop: sums on the device, read once per pass) and course.trainer (02-05's: a float
    per batch) give the same history to 1e-5 from the same start; only what a batch returns differs."""
    from course import trainer, training

    X, y = torch.randn(70, 1, 28, 28), torch.randint(0, 10, (70,))
    loader = DataLoader(TensorDataset(X, y), batch_size=16)
    histories = []
    for module in (trainer, training):
        torch.manual_seed(0)
        net = MnistModel()
        histories.append(module.fit(net, loss_fn, torch.optim.SGD(net.parameters(), lr=0.1), loader, 3, loader,
                                    module.accuracy, progress=False))
    assert histories[0].keys() == histories[1].keys()
    for key in histories[0]:
        assert all(isinstance(v, (int, float)) for v in histories[1][key]), key
        assert torch.allclose(torch.tensor(histories[0][key], dtype=torch.float64),
                              torch.tensor(histories[1][key], dtype=torch.float64), rtol=1e-5, atol=1e-6), key
    loss, n, value = training.loss_batch(net, loss_fn, X[:5], y[:5], metric=training.accuracy)
    assert loss.ndim == 0 and not loss.requires_grad and n == 5 and value.ndim == 0
    assert isinstance(trainer.loss_batch(net, loss_fn, X[:5], y[:5])[0], float)


# ------------------------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@needs_cuda
def test_on_cuda():
    device = get_default_device()
    assert device.type == "cuda"
    X, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    loader = DeviceDataLoader(DataLoader(TensorDataset(X, y), batch_size=16, pin_memory=True), device)
    assert all(t.is_cuda for batch in loader for t in batch)
    for net, loss in ((MnistModel().to(device), loss_fn), (Net().to(device), F.nll_loss)):
        history = fit(net, loss, torch.optim.SGD(net.parameters(), lr=0.05), loader, 2, loader, accuracy,
                      progress=False)
        assert len(history["valid_loss"]) == 2
    assert predict_image(net, X[0]) in range(10)
