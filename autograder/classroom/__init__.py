"""Grading a class: ``batch`` (a folder of submissions), ``autograde`` (a course's nbgrader folders), their
shared ``gradings`` (jobs, the result cache, local or Dask workers) and nbgrader's own route."""
