#!/usr/bin/env bash
# Set up everything the course needs on a fresh Debian machine: data, a virtual environment, packages.
set -euo pipefail
cd "$(dirname "$0")"

# Fashion-MNIST (60,000 + 10,000 images) comes from Debian; MNIST's test split is read from ../shared/data/mnist.
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# (this machine's pip configuration names local package folders that may be absent: drop those warnings)
quiet() { "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2); }
quiet .venv/bin/python -m pip install -q --upgrade pip
quiet .venv/bin/python -m pip install -q -e '.[dev]'
echo "Set-up done: activate with 'source .venv/bin/activate'."
