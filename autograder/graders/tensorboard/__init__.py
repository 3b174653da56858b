"""Graders of lesson 02-tensorboard: judged from the event files the student's code writes.

The tasks and their contract table are in ``tasks.toml``."""
from autograder.judge.tasks import read_tasks

ASSIGNMENT, TASKS, CONTRACT, CODE_WRITTEN_IN = read_tasks(__file__)
