"""nbgrader configuration used by every nbgrader command of the course (run from this folder)."""
import os

import nbgrader
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearMarkScheme, ClearOutput,
                                    ComputeChecksums, GetGrades, IncludeHeaderFooter, InstantiateTests,
                                    LockCells, SaveCells)

import nbgrader.api
import autograder
from autograder.distribute.release import TaskStubs, alembic_head

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

# nbgrader 0.9.6's gradebook adds submissions in a way SQLAlchemy 2 warns about ("Object of type
# <SubmittedAssignment> not in session, add operation along ... will not proceed"), harmlessly: nbgrader adds
# them itself right after. Keep those warnings of nbgrader's code out of every autograde's output.
import warnings  # noqa: E402

from sqlalchemy.exc import SAWarning  # noqa: E402

warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session, add operation along",
                        category=SAWarning)

HERE = os.path.dirname(os.path.abspath(__file__))

# nbgrader runs the `alembic` program from PATH to create a gradebook, which is only there in an activated
# environment: ask alembic's Python API instead, so `.venv/bin/nbgrader ...` works without activating.
nbgrader.api.get_alembic_version = alembic_head

# Loading this file changes no environment variable: JupyterLab's nbgrader extension loads it too, and
# students' kernels must run the demos in full, with progress bars. Grading runs set their own.

c.CourseDirectory.course_id = "pytorch-course"
# The course folder is where nbgrader runs (its default), given as an absolute path: "." would make nbgrader
# warn "root '.' is not absolute" each time it loads this file.
c.CourseDirectory.root = os.getcwd()
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
# The exchange: release_assignment puts assignments there, students fetch_assignment and submit (also from
# JupyterLab's Assignment List, which lists this course once something is released), collect picks up
# the submissions. On a shared machine or JupyterHub every user must reach the same folder: set
# COURSE_EXCHANGE_DIR (e.g. /srv/nbgrader/exchange, mode 777) where instructors and students run nbgrader.
# Without it the course's own exchange/ folder (git-ignored) serves, for one machine.
c.Exchange.root = os.environ.get("COURSE_EXCHANGE_DIR") or os.path.join(HERE, "exchange")
# release_assignment carries the course library each lesson may import (earlier lessons' finished code, its own
# and later answers stubbed) next to the notebook, so a notebook fetched on a JupyterHub imports `course` as it is.
c.ExchangeFactory.release_assignment = "autograder.classroom.exchange.ReleaseWithLibrary"
# Nothing of the graders, caches or checkpoints may ever be copied into a student release.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "autograder", "graders", "conftest.py",
    "test_*.py", "*_test.py", ".pytest_cache", "runs", "*.egg-info", ".DS_Store",
]

# Execute.* wins over ExecutePreprocessor.* whatever the source, so set the timeout here.
c.Execute.timeout = 300
c.Execute.kernel_name = "python3"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# nbgrader's own steps, with ClearSolutions replaced by TaskStubs: each stub raises NotImplementedError
# naming its task and what to write ("Task `regression_data`: write the body of `make_regression` here.").
c.GenerateAssignment.preprocessors = [
    IncludeHeaderFooter, InstantiateTests, LockCells, TaskStubs, ClearOutput, CheckCellMetadata,
    ComputeChecksums, SaveCells, ClearHiddenTests, ClearMarkScheme, ComputeChecksums, CheckCellMetadata,
]
# A deleted grade cell is restored and graded automatically instead of needing manual grading.
c.OverwriteCells.add_missing_cells = True
# Harmless warnings on stderr must not zero a correct answer (pattern alone does nothing: enable it).
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"(Warning|warn\(|UserWarning|DeprecationWarning|FutureWarning|dropout2d)"
# Feedback must not show the hidden tests.
# Feedback pages draw their math as MathML (no MathJax from a CDN: they read the same offline).
from autograder.classroom.feedback_math import MathAsMathML  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, MathAsMathML, CSSHTMLHeaderPreprocessor]
# Feedback lists each grade cell under its task's name (nbgrader's own page says "Test cell"). Set for the
# exporter of GenerateFeedback only (traitlets' Parent.Child sections): formgrader's HTMLExporter renders
# submissions with its own 'formgrade' template and must not be given this one.
c.GenerateFeedback.HTMLExporter.template_file = "task_names.html.j2"
c.GenerateFeedback.HTMLExporter.extra_template_basedirs = [
    os.path.join(os.path.dirname(autograder.__file__), "templates"),
    os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "templates"),
]
# Autograde grades in the sandbox (autograder.classroom.nbgrader_route.SandboxGrade) instead of executing the
# notebook in a kernel: hidden test cells never run next to the student's code. The other steps are
# nbgrader 0.9.6's own autograde steps, in its order.
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import AssignLatePenalties, IgnorePattern, LimitOutput  # noqa: E402

from autograder.classroom.nbgrader_route import (CheckGradeIds, RestoreCells, SandboxGrade,  # noqa: E402
                                                 SaveGradesAndNotes)
from nbgrader.preprocessors import DeduplicateIds, OverwriteKernelspec  # noqa: E402

# First, a clear message for a notebook whose grade ids are missing or repeated (nbgrader's own steps follow;
# RestoreCells is nbgrader's OverwriteCells, without a warning for each grade cell whose hidden tests it restores).
c.Autograde.sanitize_preprocessors = [
    CheckGradeIds, ClearOutput, DeduplicateIds, OverwriteKernelspec, RestoreCells, CheckCellMetadata,
]

# SaveGradesAndNotes is nbgrader's SaveAutoGrades that also writes the report's start-up notes into the
# gradebook comment of every failed task's solution cell.
c.Autograde.autograde_preprocessors = [
    SandboxGrade, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveGradesAndNotes, AssignLatePenalties,
    CheckCellMetadata,
]

# The grading service (`python -m autograder serve`, in this folder): what it allows (autograder/service/settings.py).
# Due dates not set here are nbgrader's own (`nbgrader db assignment add A --duedate ...`) where the gradebook has one.
c.GradingService.per_hour = 10              # submissions per student and assignment in any hour
c.GradingService.in_flight = 1              # submissions queued or grading per student
c.GradingService.max_notebook_mib = 5       # larger notebooks are refused (413) before they are read whole
c.GradingService.max_queue = 200            # more waiting submissions: 503 with Retry-After
c.GradingService.due_dates = {}             # e.g. {"01-datasets": "2027-01-15 23:59"}
c.GradingService.timezone = "UTC"           # the zone of due dates written without an offset
c.GradingService.after_due_date = "accept"  # "accept" (and mark late) or "refuse"
