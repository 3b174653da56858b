"""Set-up's data step (autograder.distribute.fetch_data) on a simulated fresh clone: no sibling shared/ folder, no network.

"Downloads" come from a local HTTP mirror serving the published files (``COURSE_DATA_MIRROR``); an
unreachable mirror stands for a machine without network.
"""
import functools
import gzip
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autograder.distribute import fetch_data
from course import data

SHARED_MNIST = Path(data.REPO_ROOT).parent / "shared" / "data" / "mnist"
DEBIAN_FASHION = data.DEBIAN_DATASETS / "fashion-mnist"
MNIST_FILES = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
needs_mnist = pytest.mark.skipif(not (SHARED_MNIST / MNIST_FILES[0]).exists(),
                                 reason="the shared MNIST test split is not on this machine")
needs_fashion = pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists(),
                                   reason="Debian's dataset-fashion-mnist is not installed")


def closed_port_url():
    """An http:// URL on which nothing listens: downloads from it fail at once, as offline."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def clone(tmp_path, monkeypatch):
    """A fresh clone at tmp/course: no ../shared, no configured folders, no Debian data, offline."""
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(data.SHARED_DATA_ENV, raising=False)
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(fetch_data.MIRROR_ENV, closed_port_url())
    monkeypatch.setattr(data, "REPO_ROOT", tmp_path / "course")
    monkeypatch.setattr(data, "DEBIAN_DATASETS", tmp_path / "no-debian")
    (tmp_path / "course").mkdir()
    return tmp_path / "course"


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP mirror (tmp/mirror/<name>/<file>) used as the download source; yields (folder, requests)."""
    root = tmp_path / "mirror"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(fetch_data.MIRROR_ENV, f"http://127.0.0.1:{server.server_address[1]}/")
    yield root, requests
    server.shutdown()
    server.server_close()


def serve_mnist(mirror_root):
    """Put the published MNIST test files on the mirror."""
    (mirror_root / "mnist").mkdir()
    for name in MNIST_FILES:
        shutil.copy(SHARED_MNIST / name, mirror_root / "mnist" / name)


def test_offline_clone_fails_at_set_up_naming_what_to_do(clone, capsys):
    assert fetch_data.main([]) == 1
    err = capsys.readouterr().err
    for expected in MNIST_FILES + ["train-images-idx3-ubyte.gz", "could not be downloaded", "COURSE_DATA_DIR",
                                   "./setup.sh", "shared/data/mnist", "apt-get install dataset-fashion-mnist",
                                   str(clone / "data" / "mnist")]:
        assert expected in err, f"{expected!r} missing from the failure message:\n{err}"
    assert not any(p.is_file() for p in (clone / "data").rglob("*")), "a failed download left files behind"


@needs_mnist
def test_download_places_verifies_and_course_data_finds_it(clone, mirror, capsys):
    root, requests = mirror
    serve_mnist(root)
    assert fetch_data.main(["mnist"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"downloaded into {clone / 'data' / 'mnist'} (verified: published MD5)" in out, out
    for name in MNIST_FILES:
        placed = clone / "data" / "mnist" / name
        assert fetch_data.md5sum(placed) == fetch_data.published_md5("mnist")[name]
    dataset = data.load_mnist(train=False, download=False)   # the loaders find the project's data/ folder
    assert len(dataset) == 10_000
    served = len(requests)
    assert served >= 2
    assert fetch_data.main(["mnist"]) == 0                      # once: a second set-up downloads nothing
    assert len(requests) == served
    assert f"found in {clone / 'data' / 'mnist'}" in capsys.readouterr().out


@needs_mnist
def test_a_corrupt_download_is_rejected_and_removed(clone, mirror, capsys):
    root, _ = mirror
    serve_mnist(root)
    images = root / "mnist" / MNIST_FILES[0]
    images.write_bytes(images.read_bytes()[:-1000])            # truncated in transit
    assert fetch_data.main(["mnist"]) == 1
    err = capsys.readouterr().err
    assert MNIST_FILES[0] in err and "COURSE_DATA_DIR" in err, err
    assert not (clone / "data" / "mnist" / MNIST_FILES[0]).exists()


@needs_mnist
def test_data_in_the_shared_folder_needs_no_download(clone, monkeypatch, capsys):
    monkeypatch.setenv(data.SHARED_DATA_ENV, str(SHARED_MNIST.parent))
    assert fetch_data.main(["mnist"]) == 0, capsys.readouterr().err
    assert f"found in {SHARED_MNIST} (verified: published MD5)" in capsys.readouterr().out
    assert not (clone / "data").exists()


@needs_mnist
def test_a_corrupt_file_in_the_data_folder_fails_set_up(clone, tmp_path, monkeypatch, capsys):
    given = tmp_path / "given"
    given.mkdir()
    shutil.copy(SHARED_MNIST / MNIST_FILES[1], given / MNIST_FILES[1])
    with gzip.open(SHARED_MNIST / MNIST_FILES[0]) as source:
        header = source.read(16)
    with gzip.open(given / MNIST_FILES[0], "wb") as handle:     # right header, wrong pixels
        handle.write(header + bytes(10_000 * 784))
    monkeypatch.setenv(data.DATA_DIR_ENV, str(given))
    assert fetch_data.main(["mnist"]) == 1
    err = capsys.readouterr().err
    assert f"{given / MNIST_FILES[0]} has MD5" in err and "delete or replace it" in err, err


@needs_mnist
def test_uncompressed_files_are_checked_by_header_and_size(clone, tmp_path, monkeypatch, capsys):
    given = tmp_path / "given" / "mnist"
    given.mkdir(parents=True)
    for name in MNIST_FILES:
        with gzip.open(SHARED_MNIST / name) as source:
            (given / name.removesuffix(".gz")).write_bytes(source.read())
    monkeypatch.setenv(data.DATA_DIR_ENV, str(given.parent))
    assert fetch_data.main(["mnist"]) == 0, capsys.readouterr().err
    labels = given / MNIST_FILES[1].removesuffix(".gz")
    labels.write_bytes(labels.read_bytes()[:-1])                # one label short
    assert fetch_data.main(["mnist"]) == 1
    assert "is 10,007 bytes instead of 10,008" in capsys.readouterr().err


@needs_mnist
def test_published_checksums_are_those_of_the_shared_folder():
    listed = dict(line.split()[::-1] for line in (SHARED_MNIST / "MD5SUMS").read_text().splitlines() if line.strip())
    published = fetch_data.published_md5("mnist")
    assert listed == {name: published[name] for name in MNIST_FILES}


@needs_fashion
def test_debian_fashion_mnist_is_verified_with_the_package_checksums(clone, monkeypatch, capsys):
    monkeypatch.setattr(data, "DEBIAN_DATASETS", DEBIAN_FASHION.parent)
    assert fetch_data.main(["fashion-mnist"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.count("(verified: Debian package MD5)") == 2, out


def test_set_up_command_on_a_copy_without_sibling_shared_folder_fails_with_what_to_do(tmp_path):
    clone = tmp_path / "clone"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("course", "autograder"):
        shutil.copytree(Path(data.REPO_ROOT) / package, clone / package, ignore=ignore)
    env = {name: value for name, value in os.environ.items()
           if name not in (data.DATA_DIR_ENV, data.SHARED_DATA_ENV, "PYTHONPATH")}
    env.update({fetch_data.MIRROR_ENV: closed_port_url(), data.CACHE_DIR_ENV: str(tmp_path / "cache")})
    result = subprocess.run([sys.executable, "-m", "autograder", "fetch-data", "mnist"], cwd=clone, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"downloading into {clone / 'data' / 'mnist'}" in result.stdout, result.stdout
    for expected in ["Set-up cannot provide the MNIST test split", str(tmp_path / "shared" / "data" / "mnist"),
                     "COURSE_DATA_DIR", "./setup.sh", "shared/data/mnist"]:
        assert expected in result.stderr, f"{expected!r} missing from:\n{result.stderr}"
