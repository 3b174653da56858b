"""course.data's message when a data set is neither on disk nor downloadable names the reason the download
failed (what each mirror answered), not only torchvision's first line "Error downloading <file>:"."""
from urllib.error import URLError

import pytest

from course import data


def test_offline_error_names_why_the_download_failed(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as mnist

    if data.has_split("mnist", train=True, root=str(tmp_path)):
        pytest.skip("MNIST's training split is on disk here: no download is tried")

    def offline(url, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(mnist, "download_and_extract_archive", offline)
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(data.DataNotFoundError) as raised:
        data.load_mnist(root=str(tmp_path), train=True)
    message = str(raised.value)
    assert "Error downloading train-images-idx3-ubyte.gz:" in message
    assert "Temporary failure in name resolution" in message, message
    line = next(line for line in message.splitlines() if "Error downloading" in line)
    assert not line.rstrip(" )").endswith(":"), line
