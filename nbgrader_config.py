"""nbgrader configuration used by every nbgrader command of the course (run from this folder)."""
import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

# Kernels started by nbgrader inherit these: demo cells (full-size training) shrink to a quick run,
# and progress bars stay off stderr, where they would zero a grade cell.
os.environ.setdefault("COURSE_QUICK", "1")
os.environ.setdefault("COURSE_GRADING", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

c.CourseDirectory.course_id = "pytorch-course"
c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
# Nothing of the graders, caches or checkpoints may ever be copied into a student release.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "autograder", "graders", "conftest.py",
    "test_*.py", "*_test.py", ".pytest_cache", "runs", "*.egg-info", ".DS_Store",
]

# Execute.* wins over ExecutePreprocessor.* whatever the source, so set the timeout here.
c.Execute.timeout = 300
c.Execute.kernel_name = "python3"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# A deleted grade cell is restored and graded automatically instead of needing manual grading.
c.OverwriteCells.add_missing_cells = True
# Harmless warnings on stderr must not zero a correct answer (pattern alone does nothing: enable it).
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"(Warning|warn\(|UserWarning|DeprecationWarning|FutureWarning|dropout2d)"
# Feedback must not show the hidden tests.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
