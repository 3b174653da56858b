"""Tasks (gradable units) and the registry of assignments and their grader packages."""
import importlib
import os
import pkgutil
import tomllib
from dataclasses import dataclass

# assignment id -> grader package (autograder/graders/<lesson>/)
GRADER_MODULES = {
    "01-datasets": "autograder.graders.datasets",
    "02-tensorboard": "autograder.graders.tensorboard",
    "03-linear-regression": "autograder.graders.linear_regression",
    "04-logistic-regression": "autograder.graders.logistic_regression",
    "05-softmax-regression": "autograder.graders.softmax_regression",
    "06-mlp-gpu": "autograder.graders.mlp_gpu",
    "07-mnist-cnn": "autograder.graders.mnist_cnn",
}


@dataclass(frozen=True)
class Task:
    """One gradable unit: its id threads through notebook, grade cell, pytest marker and report."""

    id: str
    points: float
    title: str


@dataclass(frozen=True)
class Assignment:
    """An assignment with its ordered tasks and its grader package."""

    id: str
    tasks: tuple
    module: object

    @property
    def path(self):
        """The grader package's folder, which pytest collects."""
        return os.path.dirname(self.module.__file__)

    def grader_modules(self):
        """The package's check modules (``test_<task>.py``), imported."""
        return [importlib.import_module(f"{self.module.__name__}.{info.name}")
                for info in pkgutil.iter_modules([self.path]) if info.name.startswith("test_")]

    def task(self, task_id):
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)


def read_tasks(package_file):
    """(assignment id, [Task], contract, written_in) from the ``tasks.toml`` beside a grader package's
    ``__init__.py``: contract is {task id: {requirement: check name(s) or "not enforced: why"}}, written_in
    {task id: the task whose solution cell holds its code}."""
    with open(os.path.join(os.path.dirname(package_file), "tasks.toml"), "rb") as handle:
        table = tomllib.load(handle)
    tasks = [Task(entry["id"], entry["points"], entry["title"]) for entry in table["task"]]
    contract = {entry["id"]: dict(entry.get("contract", {})) for entry in table["task"]}
    written_in = {entry["id"]: entry["written_in"] for entry in table["task"] if "written_in" in entry}
    return table["assignment"], tasks, contract, written_in


def lesson_name(assignment_id):
    """'03-linear-regression' -> 'linear_regression'."""
    return assignment_id.split("-", 1)[1].replace("-", "_")


def available_assignments():
    """Ids of assignments whose grader package exists."""
    found = []
    for assignment_id, module_name in GRADER_MODULES.items():
        if importlib.util.find_spec(module_name) is not None:
            found.append(assignment_id)
    return found


def load_assignment(assignment_id):
    """Import the grader package of ``assignment_id``; KeyError if unknown."""
    import warnings

    if assignment_id not in GRADER_MODULES:
        raise KeyError(assignment_id)
    with warnings.catch_warnings():  # task markers are registered by the graders' conftest, later
        warnings.filterwarnings("ignore", message="Unknown pytest.mark")
        module = importlib.import_module(GRADER_MODULES[assignment_id])
    tasks = tuple(module.TASKS)
    if getattr(module, "ASSIGNMENT", assignment_id) != assignment_id:
        raise RuntimeError(f"{module.__name__} declares ASSIGNMENT={module.ASSIGNMENT!r}")
    return Assignment(assignment_id, tasks, module)


def all_task_ids():
    """Every task id of every available assignment (used to register pytest markers)."""
    ids = {}
    for assignment_id in available_assignments():
        try:
            assignment = load_assignment(assignment_id)
        except Exception:  # a broken grader package must not stop the others from registering
            continue
        for task in assignment.tasks:
            ids[task.id] = f"{assignment_id}: {task.title}"
    return ids


def assignment_of_task(task_id):
    """The Assignment that owns ``task_id``."""
    for assignment_id in available_assignments():
        assignment = load_assignment(assignment_id)
        if any(task.id == task_id for task in assignment.tasks):
            return assignment
    raise KeyError(task_id)
