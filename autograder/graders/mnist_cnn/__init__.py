"""Graders for 07-mnist-cnn: the ConvNet, its train() / test() functions, and a single prediction.

The tasks and their contract table are in ``tasks.toml``."""
from autograder.judge.tasks import read_tasks

ASSIGNMENT, TASKS, CONTRACT, CODE_WRITTEN_IN = read_tasks(__file__)
