#!/usr/bin/env bash
# Set up everything the course needs on a fresh Debian machine: data, a virtual environment, packages.
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages: Fashion-MNIST (60,000 + 10,000 images) and Chromium, in which the tests drive JupyterLab.
missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v bwrap >/dev/null || missing+=(bubblewrap)   # the sandbox student code runs in
command -v node >/dev/null || missing+=(nodejs)        # builds the bundles' JupyterLab extension
# PostgreSQL, which the grading service's tests also run against (in a throw-away cluster of their own)
command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
        echo "setup.sh: apt-get could not install ${missing[*]}: Fashion-MNIST is downloaded below instead," \
             "without /usr/bin/chromium the browser tests are skipped, without nodejs the JupyterLab" \
             "extension is not built, without bubblewrap grading falls" \
             "back to an unprivileged user (as root) or refuses, and without postgresql the service's tests" \
             "run on SQLite only." >&2
    fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# (this machine's pip configuration names local package folders that may be absent: drop those warnings)
quiet() { "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2); }
# uv installs the packages in a fifth of pip's time (15 s against 73 s here). It does not read pip's settings, so
# those this machine gives pip (local wheels, extra indexes, constraints) are passed on, and it picks the best
# version across indexes as pip does. Where uv cannot be installed or fails, pip installs them.
# Both compile the packages to bytecode as they install them (uv only when asked): left to the first import, no
# .pyc is ever written where PYTHONDONTWRITEBYTECODE is set, and every process then compiles what it imports
# again (here `import torch` took 2.4 s without .pyc files against 1.2 s with them, `import nbgrader.apps` 1.9 s
# against 0.7 s).
uv_settings() {
    .venv/bin/python -m pip config list 2>/dev/null | .venv/bin/python -c '
import shlex, sys
flags = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
         "constraint": "--constraint"}
given = []
for line in sys.stdin:
    key, _, value = line.strip().partition("=")
    flag = flags.get(key.split(".", 1)[-1])
    for item in (shlex.split(value) or [""])[0].split() if flag else []:
        if (flag, item) not in given:
            given.append((flag, item))
for flag, item in given:
    print(flag)
    print(item)
'
}
mapfile -t uv_args < <(uv_settings)
if ! { quiet .venv/bin/python -m pip install -q uv &&
       .venv/bin/uv pip install -q --python .venv/bin/python --index-strategy unsafe-best-match --compile-bytecode \
           "${uv_args[@]}" -e '.[dev]'; }; then
    echo "setup.sh: installing with uv failed: pip installs the packages instead" >&2
    quiet .venv/bin/python -m pip install -q --upgrade pip
    quiet .venv/bin/python -m pip install -q -e '.[dev]'
fi

# The data every lesson and grader reads, verified with checksums: found in COURSE_DATA_DIR, ../shared/data or
# Debian's folder, else downloaded once into data/ (git-ignored). Fails here, saying what to do, when it cannot.
.venv/bin/python -m autograder fetch-data

# The student bundles' JupyterLab extension (the Submit for feedback button), built into build/labextension/: npm
# packages from the npm registry the first time (yarn's cache after that), compiled against this JupyterLab.
if command -v node >/dev/null; then
    .venv/bin/python -m autograder build-lab --quiet
else
    echo "setup.sh: Node.js is missing, so the student bundles get no Submit for feedback button" >&2
fi

# Grading as root: student code runs as an unprivileged grading uid (outside bubblewrap's namespaces too).
# That uid must be able to read the Python runtime (traverse its parent folders, e.g. /root for pyenv), and
# must not be able to read the course's answers where bubblewrap is unavailable: the folders holding
# solutions, graders, tests and history become private to their owner.
if [ "$(id -u)" -eq 0 ]; then
    for runtime in "$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')" "$PWD/.venv"; do
        dir="$runtime"
        while [ "$dir" != "/" ]; do
            dir="$(dirname "$dir")"
            chmod o+x "$dir"
        done
    done
    for private in .git source autograder course tests benchmarks data dist build; do
        [ -e "$private" ] && chmod go-rwx "$private"
    done
fi
echo "Set-up done: activate with 'source .venv/bin/activate'."
