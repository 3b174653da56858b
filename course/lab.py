"""The Submit for feedback button's server side: the Jupyter server extension ``course.lab``.

The button (the JupyterLab extension in ``course/labextension/``) asks these handlers, under the server's
``<base url>/course-feedback/``; the bundle's ``jupyter-config`` turns them on:

    GET  config?path=NOTEBOOK           is a grading service set up for this notebook? (never the token)
    POST submissions  {"path": NOTEBOOK}  send the saved notebook: its submission id, status, queue position
    GET  submissions/ID?path=NOTEBOOK   its status; once graded, each task's points and feedback

The service's address and the student's token are read here, on the student's own Jupyter server, from where
``python -m course.submit`` reads them (``course.submit.settings``): the token never reaches the browser, and
the browser talks to its own server only. Every failure answers ``{"error": one sentence for the student}``.
"""
import asyncio
import json
import os
import re

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from course import submit

ROUTE = "course-feedback"


def _jupyter_server_extension_points():
    """Where Jupyter finds this server extension."""
    return [{"module": "course.lab"}]


def _load_jupyter_server_extension(server_app):
    """Serve the handlers under the server's base URL."""
    base = url_path_join(server_app.web_app.settings["base_url"], ROUTE)
    server_app.web_app.add_handlers(".*$", [
        (url_path_join(base, "config"), ConfigHandler),
        (url_path_join(base, "submissions"), SubmitHandler),
        (url_path_join(base, "submissions", "([^/]+)"), SubmissionHandler),
    ])


def sentence(text):
    """``text`` as a sentence: a capital first (unless it begins with a name, such as a file's), a full stop last."""
    text = text.strip()
    if re.match(r"[a-z]+(\s|:|$)", text):
        text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!", ")")) else text + "."


def how_to(found):
    """The lines that say where the service's address and token go."""
    return [f"Put a file {submit.CONFIG_NAME} in the notebook's folder ({os.path.dirname(found.searched[0])}) "
            "holding these two lines, which your instructor gives you:",
            'url = "https://grading.example.org"\ntoken = "your token"',
            f"(or {found.searched[-1]} for every notebook, or set the environment variables {submit.URL_VARIABLE} "
            f"and {submit.TOKEN_VARIABLE} before starting JupyterLab), then press Submit for feedback again.",
            "Without a grading service, the Validate button runs each task's quick checks."]


def results_view(view):
    """The panel's view of a graded submission: each task's points and feedback, the total, the notes."""
    error, tasks, notes = submit.task_rows(view.get("results") or {})
    return {"status": "done", "assignment": view.get("assignment"), "late": bool(view.get("late")),
            "error": sentence(error) if error else None,
            "tasks": [{"task": task, "score": score, "max": most, "feedback": feedback}
                      for task, score, most, feedback in tasks],
            "total": sum(t[1] for t in tasks), "max": sum(t[2] for t in tasks),
            "notes": [note for note in notes if note.strip()]}


class Handler(APIHandler):
    """What the three handlers share: the notebook's file, the service's settings, a sentence on failure."""

    def refuse(self, status, text):
        """Answer ``{"error": text}`` with ``status``."""
        self.set_status(status)
        self.finish(json.dumps({"error": sentence(text)}))

    def notebook_file(self, path):
        """The notebook's path on disk, inside the server's folder; Failure otherwise."""
        if not isinstance(path, str) or not path.endswith(".ipynb"):
            raise submit.Failure("Submit for feedback sends notebooks (.ipynb): open one and press it there")
        root = os.path.realpath(self.contents_manager.root_dir)
        file = os.path.realpath(os.path.join(root, path.lstrip("/")))
        if os.path.commonpath([root, file]) != root:
            raise submit.Failure(f"{path} is not in the folder JupyterLab serves")
        return file

    def service(self, path, name="the notebook"):
        """The notebook's file and its grading service's client; Failure when none is set up."""
        file = self.notebook_file(path)
        return file, submit.Service(submit.checked(submit.settings(file)), name)


class ConfigHandler(Handler):
    """Is a grading service set up for this notebook? Where the address came from; never the token."""

    @web.authenticated
    def get(self):
        try:
            file = self.notebook_file(self.get_query_argument("path", ""))
        except submit.Failure as exc:
            return self.refuse(400, str(exc))
        found = submit.settings(file)
        try:
            submit.checked(found)
        except submit.Failure as exc:
            problem = ("No grading service is set up for this notebook yet." if not (found.url or found.token)
                       else sentence(str(exc)))
            return self.finish(json.dumps({"configured": False, "problem": problem, "help": how_to(found)}))
        self.finish(json.dumps({"configured": True, "url": found.url, "url_from": found.url_from}))


class SubmitHandler(Handler):
    """Send the saved notebook to the service."""

    @web.authenticated
    async def post(self):
        try:
            path = (self.get_json_body() or {}).get("path")
        except (web.HTTPError, AttributeError):
            path = None
        try:
            file, service = self.service(path, os.path.basename(str(path)))
            data = submit.read_submission(file)
            assignment = submit.notebook_assignment(data, file)
            if not assignment:
                raise submit.Failure(f"cannot tell which assignment {service.name} is: its metadata names none and "
                                     "its folder is not named for one (e.g. 01-datasets)")
            accepted = await asyncio.to_thread(service.submit, data, assignment)
        except submit.Unreachable as exc:
            return self.refuse(502, str(exc))
        except submit.Failure as exc:
            return self.refuse(400, str(exc))
        self.finish(json.dumps({"id": str(accepted.get("id") or ""), "status": accepted.get("status", "queued"),
                                "position": accepted.get("position"), "late": bool(accepted.get("late")),
                                "assignment": assignment, "text": submit.status_text(accepted)}))


class SubmissionHandler(Handler):
    """A submission's status; once graded, its results and what is left this hour."""

    @web.authenticated
    async def get(self, submission_id):
        try:
            _, service = self.service(self.get_query_argument("path", ""))
            view = await asyncio.to_thread(service.view, submission_id)
        except submit.Unreachable:                       # a service restarting: asked again at the next poll
            return self.finish(json.dumps({"status": "waiting", "text": "waiting for the service to answer"}))
        except submit.Failure as exc:
            return self.refuse(400, str(exc))
        if view.get("status") == "failed":
            return self.finish(json.dumps({"status": "failed", "error": sentence(submit.failed_text(view))}))
        if view.get("status") != "done":
            return self.finish(json.dumps({"status": view.get("status", "queued"), "text": submit.status_text(view)}))
        shown = results_view(view)
        left = await asyncio.to_thread(service.left_this_hour, view.get("assignment"))
        if left is not None:
            shown["left"] = submit.left_text(view.get("assignment"), left)
        self.finish(json.dumps(shown))
