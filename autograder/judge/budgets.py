"""How long each probe of a lesson may run: a multiple of what it takes on the reference solution.

A grader package may hold ``budgets.toml`` (written by ``benchmarks/probe_budgets.py``): the slowest time of
each probe over several gradings of the reference solution, by probe key (``sandbox.student.probe_key``: a
probe's name; ``call:<function>`` for a plain call). A probe may run ``FACTOR`` times that, at least
``MINIMUM`` seconds and at most the default limit of one request (``Limits.call_timeout``): budgets only
shorten the wait for a function that never returns. A probe missing from the file keeps the default.
"""
import os
import tomllib

FACTOR = 10            # a correct solution may be this many times slower than the reference
MINIMUM = 10.0         # seconds: start-up noise, a loaded machine, a first call that imports or compiles
BUDGETS_FILE = "budgets.toml"


def allowed_seconds(measured, ceiling=60.0):
    """Seconds a probe that took ``measured`` seconds on the reference may run."""
    return min(ceiling, max(MINIMUM, FACTOR * measured))


def probe_budgets(assignment, ceiling):
    """{probe key: seconds allowed} of ``assignment`` (an Assignment); {} without a budgets file."""
    path = os.path.join(assignment.path, BUDGETS_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as handle:
        measured = tomllib.load(handle).get("measured", {})
    return {key: allowed_seconds(float(seconds), ceiling) for key, seconds in measured.items()}


def write_budgets(assignment, measured, runs):
    """Write ``{probe key: slowest seconds}`` as the package's budgets file; returns its path."""
    lines = [f"# {assignment.id}: the slowest seconds of each probe over {runs} gradings of the reference solution",
             "# (benchmarks/probe_budgets.py). A probe may run "
             f"{FACTOR}x that, at least {MINIMUM:g} s (autograder/judge/budgets.py).",
             "[measured]"]
    lines += [f'"{key}" = {seconds:.3f}' for key, seconds in sorted(measured.items())]
    path = os.path.join(assignment.path, BUDGETS_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path
