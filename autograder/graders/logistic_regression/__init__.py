"""Graders for 04-logistic-regression: stable sigmoid, stable binary cross-entropy, accuracy, training.

The tasks and their contract table are in ``tasks.toml``."""
from autograder.judge.tasks import read_tasks

ASSIGNMENT, TASKS, CONTRACT, CODE_WRITTEN_IN = read_tasks(__file__)
