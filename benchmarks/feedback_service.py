"""The grading service under load: its latency on an idle service, and a class submitting at once.

    .venv/bin/python benchmarks/feedback_service.py                          # 40 students, 3 runs (about 15 min)
    .venv/bin/python benchmarks/feedback_service.py --quick                  # 6 students, 1 run, 2 lessons
    .venv/bin/python benchmarks/feedback_service.py --students 80 --runs 1 --time-limit 1200
    .venv/bin/python benchmarks/feedback_service.py --skip-class             # the idle latency only

Starts ``python -m autograder serve`` on 127.0.0.1 in a throw-away course folder (``c.GradingService`` limits
set high enough for the benchmark in its nbgrader_config.py), talks to it over HTTP as students do, and stops
it at the end (also on Ctrl-C). Every submitted notebook is new (a cell with its own id is added), so the
result cache never answers: every submission is really graded.

1. Idle service (``--jobs 1``): one student submits a small mix (01 correct, 01 wrong, 04 correct, 01 hostile)
   one notebook at a time and polls every ``--poll`` s until the result is there. The baseline is a warm
   grading of the same notebook in this process (``grade_submission``, the function the service's grading
   processes call, with this process's warm sandboxes started by a first, untimed round). Both alternate, so
   they share the machine's load. Prints the medians per notebook and their difference, the service's
   overhead (target: p50 within 1 s of the warm grading).
2. A class at once (``--jobs 2``): ``--students`` students, each with one notebook of a mix of correct, wrong,
   empty and hostile submissions of several lessons, submit at the same moment and poll every second as
   ``python -m course.submit`` does. The service has graded one notebook per lesson and grading process
   before (as a service that is running during a class has); the baseline, ``python -m autograder batch
   FOLDER --assignment A --jobs 2`` for each lesson on the same notebooks, starts cold as it does when an
   instructor runs it. Prints throughput, p50/p95 from submit to result, both wall times and their ratio
   (target: the service within 2x of batch), and whether both gave each student the same points.

Medians of ``--runs`` runs; a class run stops after ``--time-limit`` s and reports what finished by then.
"""
import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import httpx  # noqa: E402

from tests.hostile import ATTACKS  # noqa: E402
from tests.lessons.test_datasets import MISTAKES as DATASETS_MISTAKES  # noqa: E402
from tests.lessons.test_linear_regression import MISTAKES as LINEAR_MISTAKES  # noqa: E402
from tests.lessons.test_logistic_regression import MISTAKES as LOGISTIC_MISTAKES  # noqa: E402
from tests.notebooks import append_cell, edit_solution, release_notebook, source_notebook  # noqa: E402
from tests.service import server  # noqa: E402

LESSONS = ["01-datasets", "03-linear-regression", "04-logistic-regression"]
QUICK_LESSONS = ["01-datasets", "04-logistic-regression"]
MISTAKE = {"01-datasets": DATASETS_MISTAKES["missing_bias"],
           "03-linear-regression": LINEAR_MISTAKES["init_not_a_leaf"],
           "04-logistic-regression": LOGISTIC_MISTAKES["sigmoid_naive_overflow"]}
IDLE_MIX = [("01-datasets", "correct"), ("01-datasets", "wrong"), ("04-logistic-regression", "correct"),
            ("01-datasets", "hostile")]
KINDS = ["correct", "wrong", "hostile", "correct", "empty"]          # cycled over the class, per lesson
HOSTILE = ["patched_torch", "profile_hook_forges_results", "kill_parent_and_init",
           "steal_the_answers_from_anywhere"]                        # cycled over the hostile submissions
MAX_STUDENTS = 200
CLIENT_POLL = 1.0                # seconds between polls of python -m course.submit
SETTINGS = ("c.GradingService.per_hour = 100000\n"
            "c.GradingService.in_flight = 64\n"
            "c.GradingService.max_queue = 1000\n")
OVERHEAD_TARGET = 1.0            # s over a warm grading, p50, idle service
RATIO_TARGET = 2.0               # class wall time over batch --jobs 2


# ------------------------------------------------------------------------------------------- notebooks
def notebook(assignment, kind, index=0):
    """A submission of ``assignment``: the reference, a known mistake, the empty release, or an attack."""
    if kind == "correct":
        return source_notebook(assignment)
    if kind == "wrong":
        return edit_solution(source_notebook(assignment), *MISTAKE[assignment])
    if kind == "empty":
        return release_notebook(assignment)
    name = HOSTILE[index % len(HOSTILE)]
    where = None if name == "steal_the_answers_from_anywhere" else 3     # the thief works from the end
    return append_cell(release_notebook(assignment), ATTACKS[name], index=where)


def label(assignment, kind, index=0):
    """A short name such as ``01 wrong`` or ``04 hostile:patched_torch``."""
    return f"{assignment[:2]} {kind}" + (f":{HOSTILE[index % len(HOSTILE)]}" if kind == "hostile" else "")


def fresh(nb):
    """The bytes of ``nb`` with one more harmless cell of its own id: a notebook no cache has seen."""
    cell = f"_copy = {uuid.uuid4().hex!r}   # this copy's own id"
    return json.dumps(append_cell(nb, cell)).encode()


def class_mix(n, lessons):
    """[(student, assignment, label, notebook)] of ``n`` students: lessons and kinds cycled."""
    found, hostile = [], 0
    for i in range(n):
        assignment, kind = lessons[i % len(lessons)], KINDS[(i // len(lessons)) % len(KINDS)]
        found.append((f"s{i:03d}", assignment, label(assignment, kind, hostile),
                      notebook(assignment, kind, hostile)))
        hostile += kind == "hostile"
    return found


# ------------------------------------------------------------------------------------------- service
@contextlib.contextmanager
def service(folder, students, jobs):
    """``serve --jobs JOBS`` on a free loopback port in a new course folder; yields (url, {student: token})."""
    os.makedirs(folder)
    server.configure(folder, SETTINGS)
    tokens = server.enrol(folder, students)
    port = server.free_port()
    with open(os.path.join(folder, "service.log"), "w") as log:
        proc = server.start(folder, port, "--host", "127.0.0.1", "--jobs", str(jobs), log=log)
        try:
            yield f"http://127.0.0.1:{port}", tokens
        finally:
            server.stop(proc)


def client(url, token):
    """An HTTP client of one student."""
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def submit(student, assignment, data):
    """POST the notebook's bytes; the submission id, or raise with the refusal."""
    answer = student.post("/api/v1/submissions", params={"assignment": assignment}, content=data)
    if answer.status_code != 202:
        raise RuntimeError(f"refused {answer.status_code}: {answer.text[:200]}")
    return answer.json()["id"]


def wait_for(student, submission_id, poll, deadline, stop=None):
    """The submission's view once done or failed, polling every ``poll`` s; None past ``deadline``."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            view = student.get(f"/api/v1/submissions/{submission_id}").json()
            if view.get("status") in ("done", "failed"):
                return view
        except (httpx.TransportError, ValueError):
            pass                                       # a busy service: ask again
        if time.monotonic() + poll > deadline:
            return None
        stop.wait(poll)
    return None


def submit_and_wait(student, assignment, data, poll, patience):
    """(seconds from submit to result, view) of one submission."""
    started = time.monotonic()
    view = wait_for(student, submit(student, assignment, data), poll, started + patience)
    if view is None:
        raise RuntimeError(f"no result within {patience} s")
    return time.monotonic() - started, view


def points(view):
    """The score of a submission's view, or its status when it has none."""
    results = view.get("results") or {}
    return results.get("score", view.get("status"))


# ------------------------------------------------------------------------------------------ statistics
def percentile(values, q):
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated."""
    values = sorted(values)
    if not values:
        return float("nan")
    at = (len(values) - 1) * q / 100
    low = int(at)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (at - low)


def verdict(ok):
    """PASS or MISS."""
    return "PASS" if ok else "MISS"


# ------------------------------------------------------------------------------------- 1. idle service
def warm_grading(assignment, data):
    """(seconds, score) of a grading of ``data`` in this process, as the service's grading processes do it."""
    from autograder.classroom.gradings import grade_submission
    from autograder.judge.report import Report

    started = time.monotonic()
    report = Report.from_dict(grade_submission(data, assignment))
    return time.monotonic() - started, ("error" if report.error else report.score)


def measure_idle(folder, runs, poll):
    """Submit→result on an idle service against a warm grading, per notebook of IDLE_MIX."""
    from autograder.sandbox import warm

    mix = [(label(a, kind), a, notebook(a, kind)) for a, kind in IDLE_MIX]
    served, graded, differences, scores = {}, {}, [], {}
    print(f"\n1. Idle service (--jobs 1): one student, one notebook at a time, polling every {poll:g} s; "
          f"medians of {runs} run(s)", flush=True)
    try:
        with service(folder, ["ann"], jobs=1) as (url, tokens), client(url, tokens["ann"]) as ann:
            for run in range(runs + 1):                  # run 0 starts the warm sandboxes (not timed)
                for name, assignment, nb in mix:
                    here, score = warm_grading(assignment, fresh(nb))
                    there, view = submit_and_wait(ann, assignment, fresh(nb), poll, patience=600)
                    scores[name] = (score, points(view))
                    if run:
                        graded.setdefault(name, []).append(here)
                        served.setdefault(name, []).append(there)
                        differences.append(there - here)
                print(f"   {'warm-up' if not run else f'run {run}'} done", flush=True)
    finally:
        warm.close_all()                                  # this process's warm sandboxes
    width = max(len(name) for name, _, _ in mix)
    print(f"   {'notebook':<{width}} {'points here/served':>18} {'submit→result':>14} {'warm grading':>13} "
          f"{'overhead':>9}")
    for name, _, _ in mix:
        here, there = statistics.median(graded[name]), statistics.median(served[name])
        print(f"   {name:<{width}} {'%s / %s' % scores[name]:>18} {there:12.2f} s {here:11.2f} s {there - here:+7.2f} s")
    overhead = statistics.median(differences)
    everything = [t for times in served.values() for t in times]
    print(f"   submit→result over all: p50 {percentile(everything, 50):.2f} s, p95 {percentile(everything, 95):.2f} s")
    print(f"   service overhead over a warm grading: p50 {overhead:+.2f} s, p95 {percentile(differences, 95):+.2f} s "
          f"(target: p50 <= {OVERHEAD_TARGET:g} s): {verdict(overhead <= OVERHEAD_TARGET)}", flush=True)
    return overhead


# --------------------------------------------------------------------------------------- 2. a class
def student_run(url, token, assignment, data, start, stop, limit, out):
    """One student of the class: submit when everyone does, then poll as the student's client does."""
    with client(url, token) as me:
        try:
            start.wait(timeout=120)
        except threading.BrokenBarrierError:
            out["status"] = "never started"
            return
        out["submitted"] = time.monotonic()
        try:
            submission_id = submit(me, assignment, data)
        except (RuntimeError, httpx.TransportError) as exc:
            out["status"] = str(exc)
            return
        view = wait_for(me, submission_id, CLIENT_POLL, out["submitted"] + limit, stop)
        out["finished"] = time.monotonic()
        out["status"] = view["status"] if view else "unfinished"
        out["score"] = points(view) if view else None


def service_class(url, tokens, submissions, limit):
    """{student: what happened} when every student submits at the same moment."""
    outcomes = {name: {} for name, _, _, _ in submissions}
    start, stop = threading.Barrier(len(submissions)), threading.Event()
    threads = [threading.Thread(target=student_run, daemon=True,
                                args=(url, tokens[name], assignment, data, start, stop, limit, outcomes[name]))
               for name, assignment, _, data in submissions]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        stop.set()
    return outcomes


def batch_class(folder, submissions, jobs, limit):
    """(wall seconds, {student: score}) of ``autograder batch --jobs JOBS``, lesson after lesson."""
    env = dict(os.environ, PYTHONPATH=ROOT, TQDM_DISABLE="1")
    total, scores = 0.0, {}
    for assignment in sorted({a for _, a, _, _ in submissions}):
        subs, out = os.path.join(folder, assignment, "submitted"), os.path.join(folder, assignment, "grades")
        os.makedirs(subs)
        for name, lesson, _, data in submissions:
            if lesson == assignment:
                with open(os.path.join(subs, f"{name}.ipynb"), "wb") as handle:
                    handle.write(data)
        started = time.monotonic()
        try:
            subprocess.run([sys.executable, "-m", "autograder", "batch", subs, "--assignment", assignment,
                            "--out", out, "--jobs", str(jobs)], cwd=folder, env=env, capture_output=True,
                           check=True, timeout=max(1.0, limit - total))
        except subprocess.TimeoutExpired:
            return float("inf"), scores
        except subprocess.CalledProcessError as exc:
            raise SystemExit(f"batch {assignment} failed:\n{exc.stdout[-2000:]}{exc.stderr[-2000:]}") from None
        total += time.monotonic() - started
        for name in os.listdir(os.path.join(out, "results")):
            with open(os.path.join(out, "results", name, "results.json")) as handle:
                scores[name] = json.load(handle).get("score")
    return total, scores


def warm_service(url, token, lessons, jobs):
    """One grading per lesson and grading process before the class (a service running during a class)."""
    with client(url, token) as me:
        ids = [(assignment, submit(me, assignment, fresh(notebook(assignment, "correct"))))
               for assignment in lessons for _ in range(jobs)]
        for _, submission_id in ids:
            if wait_for(me, submission_id, 0.2, time.monotonic() + 600) is None:
                raise RuntimeError("the warm-up gradings took more than 600 s")


def summarize_run(outcomes, batch_scores):
    """(service wall, graded, seconds from submit to result, same points as batch) of one class run."""
    done = {n: o for n, o in outcomes.items() if o.get("status") == "done"}
    seconds = [o["finished"] - o["submitted"] for o in done.values()]
    begun = [o["submitted"] for o in outcomes.values() if "submitted" in o]
    wall = max((o["finished"] for o in done.values()), default=float("nan")) - min(begun, default=float("nan"))
    same = sum(batch_scores.get(n) == o.get("score") for n, o in done.items())
    return wall, len(done), seconds, same


def measure_class(folder, n, lessons, runs, jobs, limit):
    """A class submitting at once to ``serve --jobs JOBS``, against ``batch --jobs JOBS`` on the same notebooks."""
    submissions = class_mix(n, lessons)
    print(f"\n2. A class at once: {n} students, lessons {', '.join(a[:2] for a in lessons)}, "
          f"{describe_mix(submissions)}; service --jobs {jobs}, batch --jobs {jobs}; {runs} run(s), "
          f"at most {limit:g} s each", flush=True)
    names = [name for name, _, _, _ in submissions]
    walls, batches, seconds = [], [], []
    with service(os.path.join(folder, "service"), names + ["warmup"], jobs) as (url, tokens):
        warm_service(url, tokens["warmup"], lessons, jobs)
        for run in range(1, runs + 1):
            today = [(name, a, kind, fresh(nb)) for name, a, kind, nb in submissions]
            order = ("batch", "service") if run % 2 else ("service", "batch")
            for which in order:
                if which == "batch":
                    wall_batch, batch_scores = batch_class(os.path.join(folder, f"batch-{run}"), today, jobs, limit)
                else:
                    outcomes = service_class(url, tokens, today, limit)
            wall, graded, times, same = summarize_run(outcomes, batch_scores)
            walls.append(wall if graded == n else float("inf"))
            batches.append(wall_batch)
            seconds += times
            print(f"   run {run}: service {wall:6.1f} s ({graded}/{n} graded, {60 * graded / wall:5.1f} per min, "
                  f"p50 {percentile(times, 50):5.1f} s, p95 {percentile(times, 95):5.1f} s), batch {wall_batch:6.1f} s, "
                  f"ratio {wall / wall_batch:.2f}x, same points as batch {same}/{graded}", flush=True)
            unfinished = [name for name, o in outcomes.items() if o.get("status") != "done"]
            if unfinished:
                print(f"   not graded within {limit:g} s: " + ", ".join(
                    f"{name} ({outcomes[name].get('status')})" for name in unfinished[:10]))
                break
    wall, wall_batch = statistics.median(walls), statistics.median(batches)
    ratio = wall / wall_batch
    print(f"   throughput {60 * n / wall:.1f} gradings per minute; submit→result p50 {percentile(seconds, 50):.1f} s, "
          f"p95 {percentile(seconds, 95):.1f} s (polling every {CLIENT_POLL:g} s as python -m course.submit does)")
    print(f"   class wall time: service {wall:.1f} s, batch --jobs {jobs} {wall_batch:.1f} s: {ratio:.2f}x "
          f"(target <= {RATIO_TARGET:g}x): {verdict(ratio <= RATIO_TARGET)}", flush=True)
    return ratio


def describe_mix(submissions):
    """``16 correct, 8 wrong, ...``: what the class submits."""
    counts = {}
    for _, _, name, _ in submissions:
        kind = name.split()[1].split(":")[0]
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{count} {kind}" for kind, count in counts.items())


# ------------------------------------------------------------------------------------------------ main
def arguments():
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=40, help=f"the class's size (at most {MAX_STUDENTS})")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="grading processes of the service and of batch")
    parser.add_argument("--lessons", nargs="+", default=LESSONS, choices=LESSONS, metavar="ASSIGNMENT",
                        help=f"the class's lessons (of {', '.join(LESSONS)})")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds a class run may take")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between polls on the idle service")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-class", action="store_true")
    parser.add_argument("--quick", action="store_true", help="6 students, 1 run, 2 lessons: checks the script")
    args = parser.parse_args()
    if args.quick:
        args.students, args.runs, args.lessons = 6, 1, QUICK_LESSONS
    if not 1 <= args.students <= MAX_STUDENTS:
        parser.error(f"--students must be between 1 and {MAX_STUDENTS}")
    if not 1 <= args.runs <= 20 or not 1 <= args.jobs <= 16 or not 0 < args.time_limit <= 3600:
        parser.error("--runs 1-20, --jobs 1-16, --time-limit up to 3600 s")
    return args


def main():
    args = arguments()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))        # stop the services on a kill, too
    began, load = time.monotonic(), ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"grading service benchmark: {os.cpu_count()} CPU cores, load average {load}", flush=True)
    with tempfile.TemporaryDirectory(prefix="feedback-service-", ignore_cleanup_errors=True) as tmp:
        try:
            if not args.skip_idle:
                measure_idle(os.path.join(tmp, "idle"), args.runs, args.poll)
            if not args.skip_class:
                measure_class(os.path.join(tmp, "class"), args.students, args.lessons, args.runs, args.jobs,
                              args.time_limit)
        except KeyboardInterrupt:
            print("\ninterrupted: the services are stopped and the temporary folders removed")
            return 130
    print(f"\ntotal {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
