"""Set-up step: make the data sets every lesson and grader reads available on this machine, verified.

    python -m autograder.distribute.fetch_data          # ./setup.sh runs it; exit 1 with what to do when data is missing

Needed: MNIST's test split (graders and lessons 06-07 split its 10,000 images) and Fashion-MNIST's two
splits (lesson 05). For each split it asks ``course.data`` where the loaders will read it (the argument-free
search: ``COURSE_DATA_DIR``, ``$COURSE_SHARED_DATA``, ``../shared/data``, the project's ``data/``, Debian's
``/usr/share/datasets``). What is found there is verified; what is found nowhere is downloaded once,
through torchvision, into the project's git-ignored ``data/<name>/``, and verified. Graders never
download: when the data is neither on disk nor downloadable, set-up fails here, naming what to do.

Verification: the MD5 of each ``.gz`` file against the published checksums that torchvision records
(``MNIST.resources``, ``FashionMNIST.resources``); Debian's re-compressed Fashion-MNIST files against
the package's own ``md5sums``. Uncompressed files (accepted by ``course.data``) are checked for their
IDX header and size. Every file's IDX header must give the expected number of items.
"""
import argparse
import gzip
import hashlib
import os
import socket
import struct
import sys
from pathlib import Path

from course import data

MIRROR_ENV = "COURSE_DATA_MIRROR"
DOWNLOAD_TIMEOUT_S = 60
DPKG_MD5SUMS = Path("/var/lib/dpkg/info/dataset-fashion-mnist.md5sums")

# kind: (title, [(train split?, number of items)]) of what the course needs.
NEEDED = {
    "mnist": ("the MNIST test split", [(False, 10_000)]),
    "fashion-mnist": ("Fashion-MNIST", [(True, 60_000), (False, 10_000)]),
}
IDX_MAGIC = {"images": (0x00000803, 28 * 28), "labels": (0x00000801, 1)}  # magic number, bytes per item


class DataSetupError(RuntimeError):
    """Raised when a needed data set is missing or corrupt and cannot be downloaded."""


def project_data_dir():
    """The project's git-ignored data folder (``course.data`` searches ``<it>/<name>``)."""
    return Path(data.REPO_ROOT) / "data"


def torchvision_class(kind):
    """torchvision's dataset class of ``kind`` (it records the mirrors and the published MD5s)."""
    from torchvision import datasets

    return getattr(datasets, data._KINDS[kind][0])


def published_md5(kind):
    """{file name (.gz): published MD5} of ``kind``, as torchvision records them."""
    return dict(torchvision_class(kind).resources)


def debian_md5(path):
    """The MD5 that Debian's package lists for ``path``, or None when it is not a packaged file."""
    if not DPKG_MD5SUMS.is_file():
        return None
    for line in DPKG_MD5SUMS.read_text().splitlines():
        md5, _, name = line.partition("  ")
        if Path("/") / name == path:
            return md5
    return None


def md5sum(path):
    """Hex MD5 of a file's bytes."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def idx_problem(path, n_items):
    """Why ``path`` is not an IDX file of ``n_items`` items (header and, uncompressed, size), or None."""
    kind = "images" if "images" in path.name else "labels"
    magic, item_bytes = IDX_MAGIC[kind]
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            header = handle.read(8)
    except (OSError, EOFError) as error:
        return f"cannot be read ({error})"
    if len(header) < 8:
        return "is too short to be an IDX file"
    found_magic, found_items = struct.unpack(">II", header)
    if found_magic != magic:
        return f"is not an IDX {kind} file (magic number {found_magic:#010x})"
    if found_items != n_items:
        return f"holds {found_items:,} items instead of {n_items:,}"
    if path.suffix != ".gz":
        expected = 8 + (8 if kind == "images" else 0) + n_items * item_bytes
        if path.stat().st_size != expected:
            return f"is {path.stat().st_size:,} bytes instead of {expected:,}"
    return None


def verify(kind, path, n_items):
    """How ``path`` was verified (a phrase), or raise DataSetupError saying what is wrong with it."""
    problem = idx_problem(path, n_items)
    if problem is None and path.suffix == ".gz":
        md5 = md5sum(path)
        if md5 == published_md5(kind).get(path.name):
            return "published MD5"
        if md5 == debian_md5(path.resolve()):
            return "Debian package MD5"
        problem = f"has MD5 {md5}, which is neither the published checksum nor the Debian package's"
    if problem is not None:
        raise DataSetupError(f"{path} {problem}: delete or replace it, then run ./setup.sh again.")
    return "IDX header and size (uncompressed)"


def mirrors(kind):
    """Base URLs to download ``kind``'s files from: ``$COURSE_DATA_MIRROR/<name>/`` or torchvision's."""
    base = os.environ.get(MIRROR_ENV)
    if base:
        return [base.rstrip("/") + f"/{data._KINDS[kind][1]}/"]
    return list(torchvision_class(kind).mirrors)


def download(kind, names, target):
    """Download ``names`` of ``kind`` into ``target`` through torchvision, checking published MD5s.

    Returns the list of errors ([] when every file arrived); a file that fails is removed.
    """
    from torchvision.datasets.utils import download_url

    md5s = published_md5(kind)
    errors = []
    target.mkdir(parents=True, exist_ok=True)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        for name in names:
            for base in mirrors(kind):
                try:
                    download_url(base + name, str(target), filename=name, md5=md5s[name])
                    break
                except Exception as error:  # offline: URLError; corrupt: RuntimeError; server: HTTPError
                    (target / name).unlink(missing_ok=True)
                    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                    errors.append(f"{base}{name}: {reason}")
            else:
                return errors
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return []


def what_to_do(kind):
    """The ways to provide ``kind``, as lines for the failure message."""
    folder = data._KINDS[kind][1]
    lines = [f"  - connect to the internet and run ./setup.sh again: the files are downloaded once into "
             f"{project_data_dir() / folder}/;",
             f"  - or set {data.DATA_DIR_ENV}=/a/folder holding the files (in it or in its {folder}/ "
             f"subfolder) and run ./setup.sh again;"]
    if kind == "mnist":
        lines.append("  - or clone the course next to its shared/ folder, which holds them in shared/data/mnist/.")
    else:
        lines.append("  - or install Debian's package: sudo apt-get install dataset-fashion-mnist.")
    return lines


def ensure(kind, log=print):
    """Make every split of ``kind`` the course needs findable by ``course.data``, verified; raise if impossible."""
    title, splits = NEEDED[kind]
    missing = []
    for train, n_items in splits:
        folder, found = data._find_split(kind, None, train)
        if folder is None:
            missing.append((train, n_items))
            continue
        ways = {verify(kind, path, n_items) for path in found}
        split = f" ({'training' if train else 'test'} split)" if len(splits) > 1 else ""
        log(f"data: {title}{split} found in {folder} (verified: {', '.join(sorted(ways))})")
    if not missing:
        return
    target = project_data_dir() / data._KINDS[kind][1]
    names = [f"{name}.gz" for train, _ in missing for name in data._split_files(train)]
    log(f"data: {title}: {', '.join(names)} found nowhere; downloading into {target}")
    errors = download(kind, names, target)
    if errors:
        tried = data._find_split(kind, None, missing[0][0])[1]
        raise DataSetupError("\n".join(
            [f"Set-up cannot provide {title}: {', '.join(names)} are not on this machine and could not "
             f"be downloaded.", "Looked in:"] + [f"  - {d}" for d in tried] +
            ["Download errors:"] + [f"  - {e}" for e in errors] + ["Do one of:"] + what_to_do(kind)))
    for train, n_items in missing:
        folder, found = data._find_split(kind, None, train)
        if folder is None:
            raise DataSetupError(f"{title} was downloaded into {target} but course.data does not find it there.")
        ways = {verify(kind, path, n_items) for path in found}
        log(f"data: {title} downloaded into {folder} (verified: {', '.join(sorted(ways))})")


def main(argv=None):
    """Provide every data set; returns the exit status (0: all there and verified, 1: set-up must stop)."""
    parser = argparse.ArgumentParser(prog="python -m autograder fetch-data", description=__doc__.split("\n\n")[0])
    parser.add_argument("kinds", nargs="*", metavar="KIND",
                        help=f"data sets to provide, among {', '.join(NEEDED)} (default: all the course needs)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.kinds) - set(NEEDED))
    if unknown:
        parser.error(f"unknown data set {', '.join(unknown)}: choose among {', '.join(NEEDED)}")
    failures = []
    for kind in args.kinds or list(NEEDED):
        try:
            ensure(kind)
        except DataSetupError as error:
            failures.append(str(error))
    for failure in failures:
        print(f"\n{failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
