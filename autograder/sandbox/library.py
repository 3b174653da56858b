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

# Lessons 02-05 run the course's trainer (course.training: fit, evaluate, accuracy) as a finished tool
# before lesson 06 has students write it; it is hidden only from 06 on (and while 06 is graded).
TOOLS_BEFORE_THEIR_LESSON = {"training"}

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
            if owner != assignment and module in TOOLS_BEFORE_THEIR_LESSON:
                continue
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
