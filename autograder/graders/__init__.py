"""Hidden graders, one file per lesson: test_<lesson>.py with ASSIGNMENT, TASKS and pytest graders."""
