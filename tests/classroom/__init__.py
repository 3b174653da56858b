"""Grading a class: batch, autograde, nbgrader's own commands and exchange, formgrader, Dask, bad input."""
