"""A lesson's graders as the calibration and flakiness scripts use them: the grader package as one namespace
(its data, replays and thresholds), and the graders' data seed."""
import importlib
import os
import pkgutil
from types import SimpleNamespace


def lesson(name):
    """Every name of ``autograder/graders/<name>/`` (``__init__``, probes, reference, the checks) in one namespace."""
    package = importlib.import_module(f"autograder.graders.{name}")
    merged = dict(vars(package))
    for module in ("probes", "reference"):
        merged.update(vars(importlib.import_module(f"{package.__name__}.{module}")))
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("test_"):
            merged.update(vars(importlib.import_module(f"{package.__name__}.{info.name}")))
    return SimpleNamespace(**merged)


def under_seeds(seeds):
    """Yield each seed with the graders' data seed (COURSE_GRADING_SEED) set to it; afterwards it is as it was."""
    saved = os.environ.get("COURSE_GRADING_SEED")
    try:
        for seed in seeds:
            os.environ["COURSE_GRADING_SEED"] = str(seed)
            yield seed
    finally:
        if saved is None:
            os.environ.pop("COURSE_GRADING_SEED", None)
        else:
            os.environ["COURSE_GRADING_SEED"] = saved
