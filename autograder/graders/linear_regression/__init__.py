"""Graders for 03-linear-regression: parameters, model, squared loss, an in-place SGD step, training.

The tasks and their contract table are in ``tasks.toml``."""
from autograder.judge.tasks import read_tasks

ASSIGNMENT, TASKS, CONTRACT, CODE_WRITTEN_IN = read_tasks(__file__)
