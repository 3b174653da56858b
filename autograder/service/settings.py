"""What the grading service allows: its limits and due dates, set in the course's ``nbgrader_config.py``.

    c.GradingService.per_hour = 10             # submissions per student and assignment in any hour
    c.GradingService.in_flight = 1             # submissions queued or grading per student
    c.GradingService.max_notebook_mib = 5      # a larger notebook is refused (413) before it is read whole
    c.GradingService.max_queue = 200           # more waiting submissions: 503 with Retry-After
    c.GradingService.due_dates = {"01-datasets": "2027-01-15 23:59"}   # naive times are in `timezone`
    c.GradingService.timezone = "Europe/Berlin"
    c.GradingService.after_due_date = "accept"  # accept and mark late, or "refuse"

A due date not set here is nbgrader's own (``nbgrader db assignment add A --duedate ...``, in the gradebook)
where there is one. A bad value stops the service at start with a message naming the setting.
"""
import os
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from traitlets import Dict, Enum, Float, Int, Unicode
from traitlets.config import Configurable, PyFileConfigLoader
from traitlets.config.loader import ConfigFileNotFound

from autograder.classroom.analytics import aware

CONFIG_FILE = "nbgrader_config.py"


class SettingsError(ValueError):
    """A setting the service cannot use: the message names it and says what is expected."""


class GradingService(Configurable):
    """The grading service's settings (``c.GradingService.*`` in nbgrader_config.py)."""

    per_hour = Int(10, help="submissions per student and assignment in any hour (hidden tests are not an oracle "
                            "to query at will)").tag(config=True)
    in_flight = Int(1, help="submissions queued or grading per student").tag(config=True)
    max_notebook_mib = Float(5.0, help="the largest notebook accepted, in MiB (a course notebook is < 1 MiB)"
                             ).tag(config=True)
    max_queue = Int(200, help="submissions waiting at most; more are refused with 503").tag(config=True)
    due_dates = Dict(help="{assignment: due date}, ISO 8601 ('2027-01-15 23:59' or with an offset)"
                     ).tag(config=True)
    timezone = Unicode("UTC", help="the time zone of due dates written without an offset").tag(config=True)
    after_due_date = Enum(["accept", "refuse"], "accept",
                          help="accept a submission after the due date and mark it late, or refuse it"
                          ).tag(config=True)


@dataclass
class Settings:
    """What the service allows (the defaults a course of hundreds would start with)."""

    course_dir: str = "."
    jobs: int = 1
    max_bytes: int = 5 * 2**20
    max_queue: int = 200
    in_flight_per_student: int = 1
    per_hour: int = 10
    due: dict = field(default_factory=dict)       # {assignment: aware datetime}
    refuse_late: bool = False

    def due_date(self, assignment):
        """The aware due date of ``assignment``, or None."""
        return self.due.get(assignment)

    def due_iso(self, assignment):
        """The due date of ``assignment`` in ISO 8601, or None (as the API and the report give it)."""
        due = self.due_date(assignment)
        return due.isoformat() if due else None

    def is_late(self, assignment, moment):
        """Whether ``moment`` (aware) is after the due date of ``assignment``."""
        due = self.due_date(assignment)
        return due is not None and aware(moment) > due


def parse_due(text, zone, assignment):
    """The aware datetime of the due date ``text`` (naive times are in ``zone``); SettingsError if unreadable."""
    try:
        moment = text if isinstance(text, datetime) else datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise SettingsError(f"c.GradingService.due_dates[{assignment!r}] = {text!r} is not a date: write it as "
                            "'2027-01-15 23:59' (in c.GradingService.timezone) or with an offset, "
                            "'2027-01-15T23:59+01:00'") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def gradebook_due_dates(course_dir):
    """{assignment: aware due date} of nbgrader's gradebook in ``course_dir`` (none without a gradebook)."""
    path = os.path.join(course_dir, "gradebook.db")
    if not os.path.exists(path):
        return {}
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + os.path.abspath(path)) as gradebook:
        return {a.name: aware(a.duedate) for a in gradebook.assignments if a.duedate is not None}


def load_settings(course_dir=".", jobs=1):
    """Settings from ``course_dir``'s nbgrader_config.py (defaults where it sets nothing, or is absent)."""
    from autograder.judge.tasks import available_assignments

    try:
        config = PyFileConfigLoader(CONFIG_FILE, path=os.path.abspath(course_dir)).load_config()
    except ConfigFileNotFound:
        config = None
    try:
        chosen = GradingService(config=config)
    except Exception as exc:  # traitlets' TraitError: a value of the wrong type
        raise SettingsError(f"{CONFIG_FILE}: c.GradingService: {exc}") from None
    for name in ("per_hour", "in_flight", "max_queue"):
        if getattr(chosen, name) < 1:
            raise SettingsError(f"c.GradingService.{name} must be at least 1, not {getattr(chosen, name)}")
    if not 0 < chosen.max_notebook_mib <= 64:
        raise SettingsError(f"c.GradingService.max_notebook_mib must be above 0 and at most 64, not "
                            f"{chosen.max_notebook_mib}")
    try:
        zone = ZoneInfo(chosen.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"c.GradingService.timezone = {chosen.timezone!r} is not a time zone: for example "
                            "'UTC' or 'Europe/Berlin'") from None
    unknown = sorted(set(chosen.due_dates) - set(available_assignments()))
    if unknown:
        raise SettingsError(f"c.GradingService.due_dates names no assignment of this course: {', '.join(unknown)} "
                            f"(the course's: {', '.join(available_assignments())})")
    due = gradebook_due_dates(course_dir)
    due.update({a: parse_due(text, zone, a) for a, text in chosen.due_dates.items()})
    return Settings(course_dir=os.path.abspath(course_dir), jobs=max(1, jobs),
                    max_bytes=int(chosen.max_notebook_mib * 2**20), max_queue=chosen.max_queue,
                    in_flight_per_student=chosen.in_flight, per_hour=chosen.per_hour, due=due,
                    refuse_late=chosen.after_due_date == "refuse")
