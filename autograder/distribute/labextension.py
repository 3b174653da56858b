"""The JupyterLab extension students get in their bundle (the Submit for feedback button), built here.

Its TypeScript source is ``feedback_button/`` beside this file. ``python -m autograder build-lab`` (run by
``./setup.sh``) copies it to ``build/feedback_button/``, installs its npm packages there with JupyterLab's own
``jlpm`` (pinned by ``yarn.lock``: the npm registry is the only network it needs, once; node_modules never enters
the source tree), compiles it, and builds the prebuilt extension into ``build/labextension/course-feedback/``
against the installed JupyterLab's own package versions. ``write_bundle`` copies that folder into the bundle's
``course`` package; the server side is ``course/lab.py``.
"""
import os
import shutil
import subprocess
import sys

from autograder import ROOT

NAME = "course-feedback"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "feedback_button")
WORK = os.path.join(ROOT, "build", "feedback_button")         # package.json's outputDir is ../labextension/NAME
BUILT = os.path.join(ROOT, "build", "labextension", NAME)
SOURCE_FILES = ["package.json", "yarn.lock", ".yarnrc.yml", "tsconfig.json", "src", "style"]


class BuildError(Exception):
    """The extension could not be built: one sentence saying why and what to do."""


def built():
    """The built extension's folder, or None when it has not been built."""
    return BUILT if os.path.isfile(os.path.join(BUILT, "package.json")) else None


def _tools():
    """(environment, jlpm command, core package file) of the JupyterLab installed beside this Python."""
    try:
        import jupyterlab
    except ImportError:
        raise BuildError("JupyterLab is not installed in this environment: run ./setup.sh") from None
    if shutil.which("node") is None:
        raise BuildError("Node.js is not installed (no `node` on PATH): install it (Debian: apt-get install nodejs) "
                         "and run python -m autograder build-lab again")
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    jlpm = os.path.join(bin_dir, "jlpm")
    command = [jlpm] if os.path.exists(jlpm) else [sys.executable, "-m", "jupyterlab.jlpmapp"]
    core = os.path.join(os.path.dirname(jupyterlab.__file__), "staging", "package.json")
    return env, command, core


def _run(step, command, env, quiet):
    """Run one build step in the build folder; BuildError with its output's end when it fails."""
    done = subprocess.run(command, cwd=WORK, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"{step} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    if not quiet:
        print(f"  {step}: done")


def build(quiet=False):
    """Build the extension into BUILT; returns its path."""
    env, jlpm, core = _tools()
    if not quiet:
        print(f"Building the JupyterLab extension {NAME} (source: {os.path.relpath(SOURCE, ROOT)})")
    os.makedirs(WORK, exist_ok=True)
    for name in SOURCE_FILES:                           # the sources afresh; node_modules is kept between builds
        target = os.path.join(WORK, name)
        shutil.rmtree(target, ignore_errors=True)
        copy = shutil.copytree if os.path.isdir(os.path.join(SOURCE, name)) else shutil.copy
        copy(os.path.join(SOURCE, name), target)
    shutil.rmtree(os.path.join(WORK, "lib"), ignore_errors=True)
    _run("npm packages (jlpm install)", jlpm + ["install", "--immutable"], env, quiet)
    _run("TypeScript (tsc)", [os.path.join(WORK, "node_modules", ".bin", "tsc")], env, quiet)
    shutil.rmtree(BUILT, ignore_errors=True)
    _run("prebuilt extension (jupyter labextension build)",
         [sys.executable, "-m", "jupyter", "labextension", "build", ".", "--core-package-file", core], env, quiet)
    if not built():
        raise BuildError(f"the build finished without writing {BUILT}")
    if not quiet:
        print(f"Built: {os.path.relpath(BUILT, ROOT)}")
    return BUILT
