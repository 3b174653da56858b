"""Grading one notebook: the engine, the pytest runner of the graders, the checks they use, the report,
the task list and the held-out disguise. Runs in the judge's process only: it never trusts the student's."""
