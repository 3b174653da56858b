"""Graders for 01-datasets: regression data, blobs, mini-batches, splits, a Dataset, a reusable module.

The tasks and their contract table are in ``tasks.toml``."""
from autograder.judge.tasks import read_tasks

ASSIGNMENT, TASKS, CONTRACT, CODE_WRITTEN_IN = read_tasks(__file__)
