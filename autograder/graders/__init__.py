"""Hidden graders, one package per lesson: ``<lesson>/`` with the task list and contract table
(``__init__.py``), the probes that run in the student's process (``probes.py``), the judge's data and replays
(``reference.py``), the checks of each task (``test_<task>.py``) and how thresholds were measured
(``CALIBRATION.md``)."""
