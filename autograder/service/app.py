"""The grading service's HTTP API (FastAPI on uvicorn) and its dispatcher.

    POST /api/v1/submissions?assignment=A    the notebook as the body      -> 202 {"id", "status", "position"}
    GET  /api/v1/submissions/{id}                                          -> {"status", "results"?, ...}
    GET  /api/v1/assignments                 what the student may submit, used and left this hour
    GET  /api/v1/assignments/{A}/submissions (instructor) the latest graded submission per student
    GET  /api/v1/assignments/{A}/stats       (instructor) per task: pass rate, attempts to pass, common failures

Every request carries a token (``Authorization: Bearer ...``): a student's, or for the instructor's endpoints
an instructor's; neither opens the other's. A submission is stored (row and
notebook bytes, one transaction) before the 202; the dispatcher thread then grades queued submissions in
arrival order, in a pool of ``jobs`` spawned grading processes (warm sandboxes, the same engine as
``autograde``), through the course's result cache: an unchanged notebook is answered without a grading, and
``autograde`` later regrades nothing the service graded. Every error is JSON ``{"error": message}``.
"""
import concurrent.futures
import json
import multiprocessing
import os
import threading
import time
import urllib.parse
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException

from autograder.classroom import analytics
from autograder.classroom.autograde import STATE
from autograder.classroom.class_report import render_html, when
from autograder.classroom.gradings import ResultsCache, die_with_parent, grade_submission, submission_key, warm_up
from autograder.judge.report import Report
from autograder.service import report, stats, store
from autograder.service.settings import load_settings


# A submission whose grading a stopped service interrupted is graded again after the restart: a stop is the
# machine's doing, so it may happen many times (a deploy, a crash of something else); the bound only keeps a
# notebook that brings the whole service down from doing so forever. One whose grading process died (inside a
# running service) is tried twice.
RESTARTS_PER_SUBMISSION = 20
# At start, each grading process starts warm sandboxes of the assignments submitted last (up to this many), so the
# first student after a start or restart waits for a warm grading (about 2 s for 01, against 9 s cold).
WARM_ASSIGNMENTS = 2


class Refused(Exception):
    """An answer other than success: HTTP status, message, and headers."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _bearer(request):
    """The token of the request's ``Authorization: Bearer ...`` header, or ""."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _caller(engine, request, role="student"):
    """The name whose ``role`` token the request carries; Refused(401) without a valid token, Refused(403) for a
    valid token of the other role."""
    token = _bearer(request)
    if not token:
        raise Refused(401, "no token: send your course token as 'Authorization: Bearer <token>'",
                      {"WWW-Authenticate": "Bearer"})
    name = store.who(engine, token, role=role)
    if name is not None:
        return name
    other = "instructor" if role == "student" else "student"
    if store.who(engine, token, role=other) is not None:
        raise Refused(403, "instructor tokens open the instructor's endpoints only" if role == "student"
                      else "this is an instructor's endpoint")
    raise Refused(401, "this token is not valid (mistyped, revoked or re-issued): ask your instructor for yours",
                  {"WWW-Authenticate": "Bearer"})


def _known(assignment):
    """Refused(422) unless ``assignment`` is one of the course's."""
    from autograder.judge.tasks import available_assignments

    if assignment not in available_assignments():
        raise Refused(422, f"unknown assignment {assignment!r}: one of {', '.join(available_assignments())}")


async def _body(request, limit):
    """The request body, read in pieces and refused (413) as soon as it is larger than ``limit``."""
    too_large = Refused(413, f"the notebook is larger than {limit / 2**20:g} MiB: clear its outputs and submit again")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    pieces, size = [], 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise too_large
        pieces.append(piece)
    return b"".join(pieces)


def _checked(data, assignment):
    """The notebook ``data`` holds, or Refused(400/422) unless it is one of ``assignment`` (the CLI's checks and
    messages)."""
    from autograder.judge.engine import GradingError, identify
    from autograder.judge.notebook import NotebookError, check_notebook
    _known(assignment)
    try:
        nb = check_notebook(json.loads(data.decode("utf-8")))
        identify(nb, assignment)
        return nb
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, NotebookError):
            raise Refused(400, str(exc)) from None
        raise Refused(400, "the body is not a Jupyter notebook (not JSON): send the .ipynb file itself") from None
    except GradingError as exc:
        raise Refused(422, str(exc)) from None


class LocalPool:
    """``jobs`` spawned grading processes that die with the service (a killed service leaves no grading behind)."""

    def __init__(self, jobs):
        self.capacity = jobs
        self.pool = self._new()

    def _new(self):
        return concurrent.futures.ProcessPoolExecutor(self.capacity, mp_context=multiprocessing.get_context("spawn"),
                                                      initializer=die_with_parent, initargs=(os.getpid(),))

    def submit(self, data, assignment):
        """A concurrent.futures.Future of ``grade_submission``'s report dict."""
        return self.pool.submit(grade_submission, data, assignment)

    def warm(self, assignments):
        """Have each grading process start warm sandboxes of ``assignments`` before the first grading comes."""
        for _ in range(self.capacity):
            self.pool.submit(warm_up, assignments)

    def renew(self):
        """A fresh pool after a grading process died (the pool is broken then)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new()

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)


class DaskWorkers:
    """The gradings on a Dask cluster's workers (``--scheduler``); as many at once as the workers have threads."""

    def __init__(self, scheduler):
        from distributed import Client

        try:
            self.client = Client(scheduler, timeout="60s")
        except (OSError, TimeoutError) as exc:
            raise SystemExit(f"error: cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        self.capacity = max(1, sum(self.client.nthreads().values()))

    def submit(self, data, assignment):
        """A concurrent.futures.Future that follows the Dask future of ``grade_submission``."""
        mirror = concurrent.futures.Future()
        remote = self.client.submit(grade_submission, data, assignment, pure=False, retries=1)   # a lost worker:
        mirror.remote = remote                                                                  # graded elsewhere

        def settle(done):
            try:
                mirror.set_result(done.result())
            except Exception as exc:  # noqa: BLE001 - the cluster's failure, reported for this submission
                mirror.set_exception(exc)
            done.release()
        remote.add_done_callback(settle)
        return mirror

    def warm(self, assignments):
        pass                  # each worker warms up on its first grading

    def renew(self):
        pass

    def close(self):
        self.client.close()


class Dispatcher:
    """Grades queued submissions in arrival order on its graders (LocalPool or DaskWorkers); survives a dying
    grading process."""

    def __init__(self, engine, settings, graders=None):
        self.engine, self.settings, self.graders = engine, settings, graders
        self.wake, self.stopping = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self.run, name="dispatcher", daemon=True)

    def cache(self, assignment):
        return ResultsCache(os.path.join(self.settings.course_dir, STATE, assignment, "results"))

    def start(self):
        store.recover(self.engine, max_attempts=RESTARTS_PER_SUBMISSION)
        self.graders = self.graders or LocalPool(self.settings.jobs)
        self.graders.warm(store.recent_assignments(self.engine, WARM_ASSIGNMENTS))
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.wake.set()
        self.thread.join(timeout=30)

    def run(self):
        graders = self.graders
        running = {}
        try:
            while not self.stopping.is_set():
                while len(running) < graders.capacity:
                    claimed = store.claim(self.engine)
                    if claimed is None:
                        break
                    submission_id, assignment, key, data = claimed
                    cached = self.cache(assignment).get(key)
                    if cached is not None:
                        store.finish(self.engine, submission_id, cached.to_gradescope())
                        continue
                    running[graders.submit(data, assignment)] = (submission_id, assignment, key)
                if not running:
                    self.wake.wait(1.0)
                    self.wake.clear()
                    continue
                done, _ = concurrent.futures.wait(running, timeout=1.0,
                                                  return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    submission_id, assignment, key = running.pop(future)
                    try:
                        report = Report.from_dict(future.result())
                    except BrokenProcessPool:
                        graders.renew()
                        running.clear()
                        store.recover(self.engine, max_attempts=2)   # the ones running: queued again, or failed
                        break
                    except Exception as exc:  # noqa: BLE001 - one submission never stops the service
                        store.fail(self.engine, submission_id, f"the grading machine failed: {type(exc).__name__}")
                        continue
                    if not report.error:
                        self.cache(assignment).put(key, report)
                    store.finish(self.engine, submission_id, report.to_gradescope())
        finally:
            graders.close()


def make_app(engine, settings, graders=None, prefix=""):
    """The ASGI app of the service on ``engine`` (store.open_store) with ``settings``, grading on ``graders``
    (default: a LocalPool of ``settings.jobs`` processes), its paths under ``prefix`` (e.g. a JupyterHub service's
    ``/services/grading``)."""
    dispatcher = Dispatcher(engine, settings, graders)

    @asynccontextmanager
    async def lifespan(_):
        dispatcher.start()
        yield
        dispatcher.stop()

    app = FastAPI(title="Course grading service", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    api = APIRouter()

    @app.exception_handler(Refused)
    async def refused(_, exc):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def unrouted(_, exc):           # no such path (404), a method it does not take (405)
        message = (f"no such endpoint: the API is under {prefix.rstrip('/')}/api/v1/" if exc.status_code == 404
                   else str(exc.detail))
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(_, exc):
        return JSONResponse({"error": f"a malformed request: {exc.errors()[0].get('msg', 'not understood')}"},
                            status_code=400)

    @api.post("/api/v1/submissions", status_code=202)
    async def submit(request: Request, assignment: str = ""):
        student = _caller(engine, request)
        data = await _body(request, settings.max_bytes)
        nb = _checked(data, assignment)
        late = settings.is_late(assignment, store.now())
        if late and settings.refuse_late:
            raise Refused(403, f"{assignment} was due {when(settings.due_date(assignment))}: this course takes no "
                               "submissions after the due date")
        recent = store.submitted_since(engine, student, assignment, store.now() - timedelta(hours=1))
        if len(recent) >= settings.per_hour:
            resets = analytics.aware(recent[-settings.per_hour]) + timedelta(hours=1)
            wait = max(1, int((resets - store.now()).total_seconds()) + 1)
            raise Refused(429, f"{settings.per_hour} submissions of {assignment} per hour: the next one is possible at "
                               f"{resets:%H:%M} UTC (in {wait // 60 + 1} min)", {"Retry-After": str(wait)})
        if store.in_flight(engine, student) >= settings.in_flight_per_student:
            raise Refused(409, "your previous submission is still being graded: wait for its result first")
        if store.queued(engine) >= settings.max_queue:
            raise Refused(503, "the grading queue is full: submit again in a minute", {"Retry-After": "60"})
        submission_id, position = store.accept(engine, student, assignment, data, submission_key(nb, assignment))
        dispatcher.wake.set()
        return {"id": submission_id, "status": "queued", "position": position, "late": late}

    @api.get("/api/v1/submissions/{submission_id}")
    async def result(submission_id: str, request: Request):
        student = _caller(engine, request)
        view = store.submission_view(engine, submission_id)
        if view is None:
            raise Refused(404, f"no submission {submission_id!r}")
        if view["student"] != student:
            raise Refused(403, "this submission is another student's")
        return _dated(view, settings)

    @api.get("/api/v1/assignments")
    async def assignments(request: Request):
        from autograder.judge.tasks import available_assignments

        student = _caller(engine, request)
        since = store.now() - timedelta(hours=1)
        rows = []
        for assignment in available_assignments():
            used = len(store.submitted_since(engine, student, assignment, since))
            rows.append({"assignment": assignment, "due": settings.due_iso(assignment),
                         "past_due": settings.is_late(assignment, store.now()),
                         "after_due_date": "refused" if settings.refuse_late else "accepted, marked late",
                         "used_this_hour": used, "left_this_hour": max(0, settings.per_hour - used)})
        return {"student": student, "per_hour": settings.per_hour, "assignments": rows}

    @api.get("/api/v1/assignments/{assignment}/submissions")
    async def class_submissions(assignment: str, request: Request):
        _caller(engine, request, role="instructor")
        _known(assignment)
        latest = stats.latest_per_student(store.class_submissions(engine, assignment))
        for row in latest.values():
            row["late"] = settings.is_late(assignment, analytics.received(row))
        return {"assignment": assignment, "due": settings.due_iso(assignment), "students": latest}

    @api.get("/api/v1/assignments/{assignment}/stats")
    async def class_stats(assignment: str, request: Request):
        _caller(engine, request, role="instructor")
        _known(assignment)
        submissions = store.class_submissions(engine, assignment)
        return {"assignment": assignment, "submissions": len(submissions),
                "students": len({row["student"] for row in submissions}), "tasks": analytics.task_table(submissions)}

    rendering = threading.Lock()                  # matplotlib's pyplot draws one figure at a time

    def instructor(request):
        """The instructor whose token the request carries (header, or the dashboard's cookie), or None."""
        token = _bearer(request) or request.cookies.get(COOKIE, "")
        return store.who(engine, token, role="instructor") if token else None

    @api.get("/dashboard/{assignment}")
    def dashboard(assignment: str, request: Request):
        _known(assignment)
        if instructor(request) is None:
            return HTMLResponse(login_page(prefix, assignment), status_code=401)
        with rendering:
            page = render_html(assignment, report.class_summary(settings.course_dir, assignment, engine, settings))
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @api.post("/dashboard/login")
    async def login(request: Request):
        form = urllib.parse.parse_qs((await _body(request, 4096)).decode("utf-8", "replace"))
        token, assignment = (form.get("token") or [""])[0].strip(), (form.get("assignment") or [""])[0]
        _known(assignment)
        if store.who(engine, token, role="instructor") is None:
            return HTMLResponse(login_page(prefix, assignment, "That is not a valid instructor token."),
                                status_code=401)
        answer = RedirectResponse(f"{prefix.rstrip('/')}/dashboard/{urllib.parse.quote(assignment)}", status_code=303)
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        answer.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure,
                          path=f"{prefix.rstrip('/')}/dashboard")
        return answer

    app.include_router(api, prefix=prefix.rstrip("/"))
    return app


COOKIE = "course_instructor"


def login_page(prefix, assignment, problem=""):
    """The dashboard's sign-in form: an instructor token, kept as an HttpOnly cookie of the dashboard's path."""
    import html

    said = f'<p style="color:#a00">{html.escape(problem)}</p>' if problem else ""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Class report: sign in</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3em auto; max-width: 36em">
<h1>{html.escape(assignment)}: class report</h1>{said}
<p>Paste your instructor token (<code>python -m autograder tokens --instructor NAME</code> gives one).</p>
<form method="post" action="{html.escape(prefix.rstrip('/'))}/dashboard/login">
<input type="hidden" name="assignment" value="{html.escape(assignment)}">
<input type="password" name="token" autocomplete="current-password" size="50" aria-label="instructor token" autofocus>
<button type="submit">Show the report</button></form></body></html>"""


def _due_summary(settings):
    """", due dates: A 2027-01-15 23:59 CET, ..." or nothing."""
    if not settings.due:
        return ""
    return ", due dates: " + ", ".join(f"{a} {when(d)}" for a, d in sorted(settings.due.items())) + (
        " (later submissions refused)" if settings.refuse_late else " (later submissions marked late)")


def _dated(view, settings):
    """A submission's view with its assignment's due date and whether it came after it."""
    view["due"] = settings.due_iso(view["assignment"])
    view["late"] = settings.is_late(view["assignment"], analytics.received(view))
    return view


def serve(course_dir=".", host="127.0.0.1", port=8765, db=None, jobs=1, scheduler=None, prefix=""):
    """Run the service in the foreground until interrupted."""
    import uvicorn

    settings = load_settings(course_dir, jobs=jobs)       # a bad setting stops here, before anything starts
    engine = store.open_store(store.database_url(course_dir, db))
    graders = DaskWorkers(scheduler) if scheduler else None     # connected before the service answers anyone
    where = (f"the {graders.capacity} worker thread(s) of {scheduler}" if graders
             else f"{settings.jobs} grading process(es)")
    print(f"[{time.strftime('%H:%M:%S')}] grading service on http://{host}:{port}{prefix.rstrip('/')} (database "
          f"{engine.url.render_as_string()}, {where}; {settings.per_hour} submissions per student and assignment an "
          f"hour{_due_summary(settings)})", flush=True)
    uvicorn.run(make_app(engine, settings, graders, prefix), host=host, port=port, log_level="warning")
