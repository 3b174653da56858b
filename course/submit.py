"""Feedback while you work: send a notebook to the course's grading service and print its results.

    python -m course.submit NOTEBOOK [--assignment ID] [--timeout SECONDS]
    python -m course.submit --status ID

The service's address and your token come from the environment variables ``COURSE_SERVICE_URL`` and
``COURSE_SERVICE_TOKEN``, else from a file ``course-service.toml`` in the notebook's folder or a folder above
it, else from ``~/.config/course/service.toml``::

    url = "https://grading.example.org"
    token = "the token your instructor gave you"

The assignment is the one the notebook names in its metadata, else its folder's name (``01-datasets``).
The results are the table ``python -m autograder grade`` prints. Exit status: 0 graded, 1 something went
wrong (one sentence on stderr says what), 3 still being graded when ``--timeout`` ran out.
Standard library only: it runs wherever the notebook's set-up does.
"""
import argparse
import datetime
import http.client
import json
import os
import re
import socket
import ssl
import sys
import time
import urllib.parse
from dataclasses import dataclass, field

URL_VARIABLE = "COURSE_SERVICE_URL"
TOKEN_VARIABLE = "COURSE_SERVICE_TOKEN"
CONFIG_NAME = "course-service.toml"
STILL_GRADING = 3


class Failure(Exception):
    """What went wrong, in one sentence for the student, and the exit status."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------------------- settings
@dataclass
class Settings:
    """The service's address and the student's token, each with where it was found (None: nowhere)."""

    url: str = None
    token: str = None
    url_from: str = None
    token_from: str = None
    searched: list = field(default_factory=list)     # the config files looked for, nearest first


def user_config(home=None):
    """The student's own config file: ~/.config/course/service.toml."""
    return os.path.join(home or os.path.expanduser("~"), ".config", "course", "service.toml")


def config_files(start, home=None):
    """The config files to read, nearest first: course-service.toml in ``start`` and each folder above it,
    then the student's own."""
    folder, found = os.path.abspath(start), []
    while True:
        found.append(os.path.join(folder, CONFIG_NAME))
        parent = os.path.dirname(folder)
        if parent == folder:
            return found + [user_config(home)]
        folder = parent


def read_config(path):
    """The keys of the TOML file ``path`` ({} when there is none)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return {}
    except OSError as exc:
        raise Failure(f"cannot read {path}: {exc.strerror}") from None
    try:
        import tomllib
    except ImportError:                                  # Python 3.10: the two keys, one per line
        return dict(re.findall(r"""^\s*(\w+)\s*=\s*["']([^"']*)["']\s*(?:#.*)?$""",
                               data.decode("utf-8", "replace"), re.M))
    try:
        return tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError as exc:
        raise Failure(f"{path} is not valid TOML ({exc}): write it as the lines url = \"...\" and "
                      "token = \"...\"") from None


def settings(notebook_path=None, environ=None, home=None):
    """The service's URL and token for a notebook (the environment first, then the nearest config file
    that holds each), and where each came from."""
    environ = os.environ if environ is None else environ
    start = os.path.dirname(os.path.abspath(notebook_path)) if notebook_path else os.getcwd()
    found = Settings(searched=config_files(start, home))
    for key, variable in (("url", URL_VARIABLE), ("token", TOKEN_VARIABLE)):
        if environ.get(variable, "").strip():
            setattr(found, key, environ[variable].strip())
            setattr(found, key + "_from", f"the environment variable {variable}")
    for path in found.searched:
        if found.url and found.token:
            break
        values = read_config(path)
        for key in ("url", "token"):
            if getattr(found, key) is None and isinstance(values.get(key), str) and values[key].strip():
                setattr(found, key, values[key].strip())
                setattr(found, key + "_from", path)
    return found


def _missing(what, found, example):
    """The sentence for a setting found nowhere: every place it can go."""
    return (f"no {what} of the grading service is set: put the line {example} (your instructor gives it) in "
            f"{found.searched[0]} or {found.searched[-1]}, or set the environment variable "
            f"{URL_VARIABLE if what == 'address' else TOKEN_VARIABLE}")


def checked(found):
    """``found`` when it has a usable URL and a token, else Failure saying where to put them."""
    if not found.url:
        raise Failure(_missing("address", found, 'url = "https://..."'))
    if not found.token:
        raise Failure(_missing("token", found, 'token = "..."'))
    parts = urllib.parse.urlsplit(found.url)
    try:
        usable = parts.scheme in ("http", "https") and parts.hostname and (parts.port or True)
    except ValueError:                                   # a port that is not a number
        usable = False
    if not usable:
        raise Failure(f"the service address {found.url!r} (from {found.url_from}) is not a web address such as "
                      "https://grading.example.org")
    if not re.fullmatch(r"[\x21-\x7e]+", found.token):
        raise Failure(f"the token (from {found.token_from}) holds spaces or characters no token has: copy it again "
                      "from what your instructor gave you")
    return found


# ------------------------------------------------------------------------------------------------- notebook
def read_submission(path):
    """The notebook file's bytes; Failure when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise Failure(f"there is no file {path}") from None
    except IsADirectoryError:
        raise Failure(f"{path} is a folder: name the notebook file (.ipynb) in it") from None
    except OSError as exc:
        raise Failure(f"cannot read {path}: {exc.strerror}") from None


def notebook_assignment(data, path):
    """The assignment the notebook names in its metadata, else its folder's name when that is one, else None."""
    try:
        course = json.loads(data.decode("utf-8")).get("metadata", {}).get("course", {})
        declared = course.get("assignment") if isinstance(course, dict) else None
    except (UnicodeDecodeError, ValueError, AttributeError):
        declared = None
    if isinstance(declared, str) and declared:
        return declared
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return folder if re.fullmatch(r"\d\d-[a-z0-9][a-z0-9-]*", folder) else None


# -------------------------------------------------------------------------------------------------- service
class Service:
    """The grading service's API as one student's client sees it."""

    def __init__(self, found, name="the notebook"):
        self.url, self.token, self.found, self.name = found.url.rstrip("/"), found.token, found, name

    def call(self, path, body=None, timeout=30):
        """The JSON answer to GET ``path`` (POST with ``body``); Failure with the student's sentence otherwise."""
        status, headers, answer = self.exchange(path, body, timeout)
        if status >= 300:
            raise Failure(self.refusal(status, headers, answer, path))
        try:
            data = json.loads(answer.decode("utf-8"))
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise Failure(f"{self.url} answered with something other than the grading service's JSON: is it the "
                          f"service's address (from {self.found.url_from})?")
        return data

    def exchange(self, path, body, timeout):
        """(status, headers, body) of one request. A service that refuses a body (too large) may close the
        connection before all of it is sent: its answer is read all the same."""
        parts = urllib.parse.urlsplit(self.url + path)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(parts.hostname, parts.port, timeout=timeout)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                   "User-Agent": "course.submit"}
        if body is not None:
            headers.update({"Content-Type": "application/x-ipynb+json", "Content-Length": str(len(body))})
        cut = None
        try:
            try:
                connection.request("GET" if body is None else "POST", target, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError) as exc:
                cut = exc
            answer = connection.getresponse()
            return answer.status, answer.headers, answer.read()
        except (OSError, http.client.HTTPException) as exc:
            if cut is not None and len(body) > 2**20:
                raise Unreachable(f"the service closed the connection while {self.name} ({len(body) / 2**20:.1f} "
                                  "MiB) was being sent: it is probably too large (clear its outputs and submit "
                                  "again)") from None
            raise Unreachable(self.unreachable(cut or exc, timeout)) from None
        finally:
            connection.close()

    def unreachable(self, reason, timeout):
        """The sentence for a service that did not answer."""
        where = f"the grading service at {self.url} (address from {self.found.url_from})"
        if isinstance(reason, socket.gaierror):
            host = urllib.parse.urlsplit(self.url).hostname
            return f"cannot reach {where}: the name {host} is not known (mistyped, or no internet connection?)"
        if isinstance(reason, ConnectionRefusedError):
            return f"cannot reach {where}: the connection was refused (wrong address, or the service is not running)"
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return f"cannot reach {where}: no answer within {timeout:g} s"
        if isinstance(reason, http.client.HTTPException):
            return f"the grading service at {self.url} broke off its answer (try again, or tell your instructor)"
        if isinstance(reason, ssl.SSLError):
            return f"cannot open a secure connection to {where}: {reason}"
        return f"cannot reach {where}: {getattr(reason, 'strerror', None) or reason}"

    def refusal(self, status, headers, body, path):
        """The sentence for an answer other than success (the service's own message, said for the student)."""
        if 300 <= status < 400 and headers.get("Location"):
            return (f"the service's address has moved to {headers['Location']}: put that address in place of "
                    f"{self.url} (from {self.found.url_from})")
        try:
            message = str(json.loads(body.decode("utf-8"))["error"])
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            if status == 404:
                return (f"nothing at {self.url}{path} is the grading service: check its address (from "
                        f"{self.found.url_from})")
            return f"the grading service at {self.url} answered {status} (try again later, or tell your instructor)"
        if status == 401:
            return f"the service did not accept your token (from {self.found.token_from}): {message}"
        if status == 413:
            return f"{self.name} is too large to submit: {message}"
        if status == 400:
            return f"{self.name} is not a notebook the service can grade: {message}"
        if status == 422:
            return f"the service will not grade {self.name}: {message}"
        if status == 409:
            return message
        if status == 404:
            return f"{message} (check the submission's id)"
        if status == 429:
            return f"limit reached: {message}" + retry_note(headers, message)
        if status == 503:
            return f"the service is busy: {message}" + retry_note(headers, message)
        return f"the service refused: {message}"

    def submit(self, data, assignment):
        """POST the notebook: {"id", "status", "position"}."""
        query = urllib.parse.urlencode({"assignment": assignment})
        return self.call(f"/api/v1/submissions?{query}", body=data, timeout=120)

    def view(self, submission_id):
        """The submission's status, and its results once graded."""
        return self.call(f"/api/v1/submissions/{urllib.parse.quote(submission_id, safe='')}")

    def left_this_hour(self, assignment):
        """(submissions of ``assignment`` left this hour, the hourly limit, its due date or None), or None when the
        service does not say."""
        try:
            listed = self.call("/api/v1/assignments")
            row = next(r for r in listed["assignments"] if r["assignment"] == assignment)
            return int(row["left_this_hour"]), int(listed["per_hour"]), due_date(row)
        except (Failure, StopIteration, KeyError, TypeError, ValueError):
            return None


def due_date(row):
    """' It is due 2027-01-15 23:59 (UTC+01:00).' for an assignment row with a due date ('' without one); after
    it, what happens to a submission."""
    if not row.get("due"):
        return ""
    moment = datetime.datetime.fromisoformat(row["due"])
    said = f" It is due {moment:%Y-%m-%d %H:%M} ({moment.tzname() or 'UTC'})"
    if row.get("past_due"):
        said += f": that has passed, submissions are {row.get('after_due_date') or 'marked late'}"
    return said + "."


class Unreachable(Failure):
    """The service did not answer at all (refused, unknown name, timed out)."""


def retry_note(headers, message):
    """When the service's Retry-After says to try again, on this computer's clock (unless the message says when)."""
    seconds = (headers or {}).get("Retry-After", "")
    if not seconds.isdigit() or "possible at" in message:
        return ""
    moment = datetime.datetime.now() + datetime.timedelta(seconds=int(seconds))
    return f" (try again after {moment:%H:%M})"


# -------------------------------------------------------------------------------------------------- waiting
class Progress:
    """What the submission is doing: a spinner on a terminal, else one line per change (on ``stream``)."""

    FRAMES = "|/-\\"

    def __init__(self, stream):
        self.stream, self.live = stream, stream.isatty()
        self.text, self.turn, self.started = None, 0, time.monotonic()

    def show(self, text):
        """Say ``text`` (again: the spinner turns)."""
        if self.live:
            self.turn += 1
            line = f"\r{self.FRAMES[self.turn % 4]} {text} ({time.monotonic() - self.started:.0f} s)"
            self.stream.write(line.ljust(60))
        elif text != self.text:
            self.stream.write(text + "\n")
        self.text = text
        self.stream.flush()

    def clear(self):
        """Take the spinner's line away."""
        if self.live and self.text is not None:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()


def status_text(view):
    """One line for a submission not yet graded."""
    if view.get("status") == "queued":
        return f"queued (position {view['position']})" if view.get("position") else "queued"
    return str(view.get("status", "waiting"))


def wait_for(service, submission_id, timeout, stream=None, poll=1.0):
    """The submission's view once done or failed; None when ``timeout`` seconds passed first.

    A service that stops answering for a while (restarted) is asked again until the time is up."""
    progress = Progress(stream or sys.stderr)
    deadline = time.monotonic() + timeout
    next_poll, view = 0.0, {"status": "queued"}
    try:
        while True:
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + poll
                try:
                    view = service.view(submission_id)
                except Unreachable:
                    view = dict(view, status="waiting for the service to answer")
                if view.get("status") in ("done", "failed"):
                    return view
            if now >= deadline:
                return None
            progress.show(status_text(view))
            time.sleep(0.1 if progress.live else min(poll, max(0.0, deadline - now)))
    finally:
        progress.clear()


# --------------------------------------------------------------------------------------------------- report
def split_output(output):
    """(error, notes) of a results.json's "output": the grading's error comes first when there is one (it
    begins with "Grading "), then the notes about the notebook ("Note: ...", "WARNING: ...")."""
    lines = output.split("\n") if output else []
    if not lines or not lines[0].startswith("Grading "):
        return None, lines
    end = next((i for i, line in enumerate(lines) if line.startswith(("Note: ", "WARNING: "))), len(lines))
    return "\n".join(lines[:end]), lines[end:]


def task_rows(results):
    """(error, [(task, points, max, feedback)], notes) of a results.json that ``python -m autograder grade``
    wrote."""
    error, notes = split_output(results.get("output", ""))
    tasks = [(str(t.get("number") or t["name"].split(":")[0]), t["score"], t["max_score"], t.get("output", ""))
             for t in results.get("tests", [])]
    return error, tasks, notes


def table(results, assignment=None):
    """The table ``python -m autograder grade`` prints, from the results.json it writes: task, points, max,
    the first line of each task's feedback, the total, then the notes."""
    error, tasks, notes = task_rows(results)
    lines = [f"Assignment {assignment}"] if assignment else []
    if error:
        lines.append(f"ERROR: {error}")
    width = max([len(task) for task, *_ in tasks] + [4])
    if tasks:
        lines.append(f"{'task':<{width}}  {'points':>6}  {'max':>4}  feedback")
        for task, score, most, feedback in tasks:
            first = feedback.splitlines()[0] if feedback else ""
            if len(first) > 100:
                first = first[:97] + "..."
            lines.append(f"{task:<{width}}  {score:>6g}  {most:>4g}  {first}")
        total, most = sum(t[1] for t in tasks), sum(t[2] for t in tasks)
        lines.append(f"{'total':<{width}}  {total:>6g}  {most:>4g}")
    lines.extend(notes)
    return "\n".join(lines)


def left_text(assignment, left):
    """'7 of 10 submissions of A left this hour.' and its due date, from ``Service.left_this_hour``."""
    return f"{left[0]} of {left[1]} submissions of {assignment} left this hour.{left[2]}"


def failed_text(view):
    """The sentence for a submission the service could not grade."""
    return (f"your submission could not be graded, through no fault of your notebook: "
            f"{view.get('reason') or 'the grading machine failed'} (submit it again later)")


def show_result(service, view, out=None):
    """Print a finished submission: its table and what is left this hour; its exit status."""
    out = out or sys.stdout
    if view["status"] == "failed":
        raise Failure(failed_text(view))
    results = view.get("results") or {}
    try:
        print(table(results, view.get("assignment")), file=out)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise Failure("the service's results are not in the form this client reads (tell your instructor)") from None
    left = service.left_this_hour(view.get("assignment"))
    if left is not None:
        print(left_text(view.get("assignment"), left), file=out)
    return 1 if split_output(results.get("output", ""))[0] else 0


# ---------------------------------------------------------------------------------------------- the command
def run(args, out=None, err=None):
    """Submit (or look up) and wait; the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    found = checked(settings(args.notebook))
    if args.status:
        service, submission_id = Service(found), args.status
    else:
        data = read_submission(args.notebook)
        name = os.path.basename(args.notebook)
        assignment = args.assignment or notebook_assignment(data, args.notebook)
        if not assignment:
            raise Failure(f"cannot tell which assignment {name} is: name it with --assignment (e.g. --assignment "
                          "01-datasets)")
        service = Service(found, name)
        accepted = service.submit(data, assignment)
        submission_id = str(accepted.get("id") or "")
        if not submission_id:
            raise Failure("the service took the notebook but gave no submission id (tell your instructor)")
        late = " after the due date: it is marked late" if accepted.get("late") else ""
        print(f"{name} submitted as {assignment} (submission {submission_id}){late}.", file=err)
    later = f"python -m course.submit --status {submission_id}"
    try:
        view = wait_for(service, submission_id, args.timeout, stream=err)
    except KeyboardInterrupt:
        raise Failure(f"stopped waiting; the submission is still graded: see its results with {later}",
                      STILL_GRADING) from None
    if view is None:
        raise Failure(f"no result after {args.timeout:g} s; the submission is still graded: see its results with "
                      f"{later}", STILL_GRADING)
    return show_result(service, view, out)


def main(argv=None):
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m course.submit", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", nargs="?", help="the notebook to submit (.ipynb)")
    parser.add_argument("--assignment", help="e.g. 01-datasets (default: the one the notebook names)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the results (default 600)")
    parser.add_argument("--status", metavar="ID", help="wait for (or show) the results of an earlier submission")
    args = parser.parse_args(argv)
    if bool(args.notebook) == bool(args.status):
        parser.error("name a notebook to submit, or --status ID")
    try:
        return run(args)
    except Failure as exc:
        text = str(exc)
        print(f"error: {text}" + ("" if text.endswith((".", "?", "!")) else "."), file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
