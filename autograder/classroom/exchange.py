"""nbgrader's exchange with the course library carried by each assignment.

``nbgrader release_assignment`` copies ``release/<assignment>/`` (the notebook alone) to the exchange. With
``ReleaseWithLibrary`` (nbgrader_config.py sets it) the released folder also holds the ``course`` package the
assignment may import: earlier lessons' finished code, and a one-line stub for the modules holding the answers
of this and every later lesson (``autograder.sandbox.library.stage_library``, as in the student bundle). So a
student who fetches the assignment on the course's JupyterHub gets a folder whose notebook imports ``course``
from beside it, with nothing to install but the course's Python packages.
"""
from nbgrader.exchange.default.release_assignment import ExchangeReleaseAssignment

from autograder.sandbox.library import LESSON_MODULES, stage_library


class ReleaseWithLibrary(ExchangeReleaseAssignment):
    """release_assignment that adds ``course/`` to a course lesson's released folder (others are copied as they are)."""

    def do_copy(self, src, dest, log=None):
        super().do_copy(src, dest, log=log)
        if self.coursedir.assignment_id in LESSON_MODULES:
            stage_library(self.coursedir.assignment_id, dest)
