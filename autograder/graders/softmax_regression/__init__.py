"""Graders for 05-softmax-regression: stable softmax and cross-entropy, the model, manual and fast training.

The tasks and their contract table are in ``tasks.toml``."""
from autograder.judge.tasks import read_tasks

ASSIGNMENT, TASKS, CONTRACT, CODE_WRITTEN_IN = read_tasks(__file__)
