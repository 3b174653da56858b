"""Grading reports: per-task results, a printed table, and Gradescope's results.json format."""
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field


def write_json_atomic(path, data):
    """Write ``data`` as JSON to ``path`` through a temporary file and os.replace (creating the folder).

    A path that is not a regular file (``/dev/null``, a pipe, ``/dev/stdout``) is written to as it is:
    replacing it would put a file where a device or pipe was."""
    try:
        special = not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        special = False
    if special:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


@dataclass
class TaskResult:
    """The outcome of one task: all-or-nothing points, and feedback lines."""

    id: str
    title: str
    max_score: float
    score: float = 0.0
    feedback: list = field(default_factory=list)

    @property
    def passed(self):
        return self.score >= self.max_score

    @property
    def output(self):
        if self.passed:
            return "All checks passed."
        return "\n".join(self.feedback) or "This task was not graded."


@dataclass
class Report:
    """A graded submission."""

    assignment: str = None
    tasks: list = field(default_factory=list)
    messages: list = field(default_factory=list)   # notes about the whole submission
    error: str = None                              # set when grading could not run at all
    execution_time: float = 0.0
    sandbox: list = field(default_factory=list)    # protections in force (for staff, not in results.json)

    @property
    def score(self):
        return sum(t.score for t in self.tasks)

    @property
    def max_score(self):
        return sum(t.max_score for t in self.tasks)

    @property
    def by_task(self):
        return {t.id: t for t in self.tasks}

    def scores(self):
        return {t.id: t.score for t in self.tasks}

    def failed_tasks(self):
        return {t.id for t in self.tasks if not t.passed}

    def to_gradescope(self):
        """The results.json structure Gradescope's autograder expects."""
        output = list(self.messages)
        if self.error:
            output.insert(0, self.error)
        return {
            "score": self.score,
            "execution_time": round(self.execution_time, 3),
            "output": "\n".join(output),
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": [
                {"name": f"{t.id}: {t.title}", "number": t.id, "score": t.score, "max_score": t.max_score,
                 "status": "passed" if t.passed else "failed", "output": t.output, "visibility": "visible"}
                for t in self.tasks
            ],
        }

    def to_dict(self):
        """Everything in the report as plain JSON data (the inverse of ``Report.from_dict``)."""
        return {"assignment": self.assignment, "error": self.error, "execution_time": self.execution_time,
                "messages": list(self.messages), "sandbox": list(self.sandbox),
                "tasks": [{"id": t.id, "title": t.title, "max_score": t.max_score, "score": t.score,
                           "feedback": list(t.feedback)} for t in self.tasks]}

    @classmethod
    def from_dict(cls, data):
        """A Report from ``to_dict()``'s data; ValueError when the data is not such a dict."""
        try:
            tasks = [TaskResult(str(t["id"]), str(t["title"]), float(t["max_score"]), float(t["score"]),
                                [str(line) for line in t["feedback"]]) for t in data["tasks"]]
            error = data.get("error")
            return cls(assignment=data.get("assignment"), tasks=tasks,
                       messages=[str(m) for m in data.get("messages", [])],
                       error=None if error is None else str(error),
                       execution_time=float(data.get("execution_time", 0.0)),
                       sandbox=[str(n) for n in data.get("sandbox", [])])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a grading report: {exc!r}") from None

    def write(self, path):
        """Write results.json (creating its folder) atomically: a reader sees the old file or the new one."""
        write_json_atomic(path, self.to_gradescope())

    def table(self):
        """A plain-text table: task, points, max, one-line feedback."""
        lines = []
        if self.assignment:
            lines.append(f"Assignment {self.assignment}")
        if self.error:
            lines.append(f"ERROR: {self.error}")
        width = max([len(t.id) for t in self.tasks] + [4])
        if self.tasks:
            lines.append(f"{'task':<{width}}  {'points':>6}  {'max':>4}  feedback")
            for t in self.tasks:
                first = t.output.splitlines()[0] if t.output else ""
                if len(first) > 100:
                    first = first[:97] + "..."
                lines.append(f"{t.id:<{width}}  {t.score:>6g}  {t.max_score:>4g}  {first}")
            lines.append(f"{'total':<{width}}  {self.score:>6g}  {self.max_score:>4g}")
        lines.extend(self.messages)
        return "\n".join(lines)
