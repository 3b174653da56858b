"""Graders for 06-mlp-gpu: device helpers, loss_batch / evaluate / fit, an MNIST MLP, and the inside of
nn.Module (a custom layer, initialisation with apply, a shared layer, saving and loading parameters).

The tasks and their contract table are in ``tasks.toml``."""
from autograder.judge.tasks import read_tasks

ASSIGNMENT, TASKS, CONTRACT, CODE_WRITTEN_IN = read_tasks(__file__)
