"""Which parts of the ``course`` library are a lesson's answers, and the library a student may import.

``course/<module>.py`` files hold the finished code of the lessons. While assignment A is graded (and in
A's student bundle) the modules holding the answers of A and of every later lesson are replaced by a
one-line stub whose import says so; everything earlier lessons finished stays importable.
"""
import os
import shutil

from autograder import ROOT
COURSE_DIR = os.path.join(ROOT, "course")

# Assignments in teaching order, each with the course modules that hold its answers.
LESSON_MODULES = {
    "01-datasets": ["datasets"],
    "02-tensorboard": ["tensorboard"],
    "03-linear-regression": ["linear_regression"],
    "04-logistic-regression": ["logistic_regression"],
    "05-softmax-regression": ["softmax_regression"],
    "06-mlp-gpu": ["devices", "mlp", "training"],
    "07-mnist-cnn": ["cnn"],
}
ASSIGNMENTS = list(LESSON_MODULES)

# Tools: modules that belong to no lesson and ship in every bundle although some of their names are also
# names that a lesson has students write. course.trainer (accuracy, loss_batch, evaluate, fit, as Python
# floats per batch) is the finished trainer of 02-05; 06 has students write the device-side loop
# (course.training), whose graders fail the trainer's code (tests/distribute/test_bundles.py shows it).
# Modules of no lesson that share no name with one (data, plotting, events, submit: the grading service's client)
# need no entry: every bundle holds the whole library.
TOOLS = {"trainer"}

STUB = ('raise ImportError("course.{module} holds the answers of {owner}, so it is not available while '
        '{assignment} is graded or worked on: write the code in your notebook.")\n')


def hidden_modules(assignment):
    """{module: owning assignment} of the course modules hidden from ``assignment``."""
    if assignment not in LESSON_MODULES:
        raise KeyError(assignment)
    position = ASSIGNMENTS.index(assignment)
    hidden = {}
    for owner in ASSIGNMENTS[position:]:
        for module in LESSON_MODULES[owner]:
            hidden[module] = owner
    return hidden


def stage_library(assignment, dest):
    """Write the ``course`` package that ``assignment`` may import into ``dest/course``; returns its path."""
    target = os.path.join(dest, "course")
    shutil.copytree(COURSE_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for module, owner in hidden_modules(assignment).items():
        with open(os.path.join(target, module + ".py"), "w", encoding="utf-8") as handle:
            handle.write(STUB.format(module=module, owner=owner, assignment=assignment))
    return target
