"""Command line: grade one notebook, grade a folder of submissions, or make the student releases.

    python -m autograder grade NOTEBOOK.ipynb [--assignment ID] [--results PATH]
    python -m autograder batch SUBMISSIONS_DIR --assignment ID [--out DIR] [--jobs N] [--force]
    python -m autograder autograde ASSIGNMENT [--student ID ...] [--jobs N] [--force] [--scheduler URL]
    python -m autograder package gradescope ASSIGNMENT [--out autograder.zip]
    python -m autograder github-classroom SUBMISSION_DIR --assignment ID
    python -m autograder release [ASSIGNMENT ...]
    python -m autograder fetch-data [KIND ...]
    python -m autograder students add [ID ...] [--roster roster.csv] [--gradebook] | students list
    python -m autograder tokens [--student ID ...] [--instructor NAME] [--revoke] [--out tokens.csv]
    python -m autograder report ASSIGNMENT [--html report.html] [--csv DIR] [--db URL]
    python -m autograder serve [--host 127.0.0.1] [--port 8765] [--db URL] [--jobs N] [--scheduler tcp://HOST:PORT]
                               [--prefix /services/grading]

``grade`` exits 0 whenever grading completed, whatever the score; 2 when it could not run (the report
is still written, with the reason).
"""
import argparse
import os
import sys


def _grade(args):
    from autograder.judge.engine import grade_notebook
    from autograder.sandbox.student import Limits

    limits = Limits(memory_bytes=args.memory_mib * 2**20, threads=args.threads, **_isolation(args))
    report = grade_notebook(args.notebook, assignment=args.assignment, limits=limits)
    print(report.table())
    if report.sandbox:
        print("protections in force: " + "; ".join(report.sandbox), file=sys.stderr)
    report.write(args.results)
    print(f"Results written to {args.results}")
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
        return 2
    return 0


def _isolation(args):
    """Limits fields for --unsafe-no-sandbox: grading without any sandbox happens only when asked for."""
    return {"isolation": "none"} if getattr(args, "unsafe_no_sandbox", False) else {}


def _batch(args):
    from autograder.classroom.batch import grade_folder

    return grade_folder(args.folder, args.assignment, args.out, jobs=args.jobs, force=args.force,
                        scheduler=args.scheduler, limits=_isolation(args))


def _autograde(args):
    from autograder.classroom.autograde import autograde

    return autograde(args.assignment, students=args.student, jobs=args.jobs, force=args.force,
                     scheduler=args.scheduler, limits=_isolation(args))


def _package(args):
    from autograder.distribute.package import build_gradescope

    path = build_gradescope(args.assignment, args.out)
    print(f"Gradescope autograder for {args.assignment} written to {path}")
    return 0


def _github_classroom(args):
    from autograder.distribute.package import run_classroom

    return run_classroom(args.folder, args.assignment)


def _class_options(parser):
    """Options shared by the commands that grade many submissions."""
    parser.add_argument("--jobs", type=int, default=None,
                        help="gradings at once (default: one per core); ignored with --scheduler")
    parser.add_argument("--force", action="store_true", help="regrade submissions graded before and unchanged")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="grade on this Dask distributed cluster instead of local processes")
    _unsafe_option(parser)


def _unsafe_option(parser):
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="grade without any sandbox: student code runs with this user's rights (never "
                             "for untrusted submissions)")


def _release(args):
    from autograder.distribute.release import generate_releases

    generate_releases(args.assignments or None)
    return 0


def _fetch_data(args):
    from autograder.distribute.fetch_data import main as fetch

    return fetch(args.kinds)


def _store(args):
    from autograder.service.store import database_url, open_store

    return open_store(database_url(".", args.db))


def _students(args):
    """students add / list: the grading service's students (run in the course folder)."""
    from autograder.service.store import StoreError, add_students, gradebook_ids, roster_ids, students

    engine = _store(args)
    if args.action == "list":
        print("\n".join(students(engine)))
        return 0
    ids = list(args.ids)
    if args.roster:
        ids += roster_ids(args.roster)
    if args.gradebook:
        ids += gradebook_ids(".")
    if not ids:
        print("error: no student ids: give IDs, --roster roster.csv or --gradebook", file=sys.stderr)
        return 2
    try:
        added = add_students(engine, ids)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(added)} students added, {len(set(ids)) - len(added)} already there")
    return 0


def _tokens(args):
    """Issue (or revoke) the grading service's tokens; each is shown once, here."""
    import csv

    from autograder.service.store import StoreError, issue_token, revoke_tokens, students

    engine = _store(args)
    role, names = ("instructor", [args.instructor]) if args.instructor else ("student", args.student or students(engine))
    if not names:
        print("error: no students yet: python -m autograder students add ID ...", file=sys.stderr)
        return 2
    try:
        if args.revoke:
            for name in names:
                print(f"{name}: {revoke_tokens(engine, name, role)} token(s) revoked")
            return 0
        rows = [(name, issue_token(engine, name, role)) for name in names]
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # secrets: owner only
        with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["name", "role", "token"])
            writer.writerows((name, role, token) for name, token in rows)
        print(f"{len(rows)} {role} token(s) written to {args.out} (readable by you only; earlier tokens revoked)")
    else:
        for name, token in rows:
            print(f"{name}\t{token}")
    return 0


def _report(args):
    """The class report of an assignment: an HTML page with plots, and the numbers as CSV files."""
    from autograder.classroom.class_report import render_html, write_csv
    from autograder.judge.tasks import available_assignments
    from autograder.service.report import class_summary
    from autograder.service.settings import SettingsError, load_settings
    from autograder.service.store import DEFAULT_DB_FILE, database_url, open_store

    if args.assignment not in available_assignments():
        print(f"error: unknown assignment {args.assignment!r}: one of {', '.join(available_assignments())}",
              file=sys.stderr)
        return 2
    try:
        settings = load_settings(".")
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engine = open_store(database_url(".", args.db)) if args.db or os.path.exists(DEFAULT_DB_FILE) else None
    data = class_summary(".", args.assignment, engine, settings)
    page = args.html or f"report-{args.assignment}.html"
    with open(page, "w", encoding="utf-8") as handle:
        handle.write(render_html(args.assignment, data))
    print(f"{args.assignment}: {data['source']} {len(data['scores'])} student(s) graded, {len(data['not_submitted'])} not "
          f"submitted, {len(data['stuck'])} stuck.")
    for task, row in data["tasks"].items():
        rate = "-" if row["pass_rate"] is None else f"{100 * row['pass_rate']:.0f}%"
        tries = row["mean_attempts_to_pass"] if row["mean_attempts_to_pass"] is not None else "-"
        print(f"  {task:<28} passing {rate:>5}   mean attempts to pass {tries}")
    print(f"Report: {os.path.abspath(page)}")
    if args.csv:
        print("CSV: " + ", ".join(write_csv(args.csv, data)))
    return 0


def _build_lab(args):
    """Build the JupyterLab extension of the student bundles (the Submit for feedback button)."""
    from autograder.distribute.labextension import BuildError, build

    try:
        build(quiet=args.quiet)
    except BuildError as exc:
        print(f"error: the JupyterLab extension was not built: {exc}", file=sys.stderr)
        return 1
    return 0


def _serve(args):
    """Run the grading service until interrupted (limits and due dates from nbgrader_config.py)."""
    from autograder.service.app import serve
    from autograder.service.settings import SettingsError

    try:
        serve(".", host=args.host, port=args.port, db=args.db, jobs=args.jobs, scheduler=args.scheduler,
              prefix=args.prefix)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade one submitted notebook")
    grade.add_argument("notebook")
    grade.add_argument("--assignment", help="assignment id, e.g. 01-datasets (default: from the notebook)")
    grade.add_argument("--results", default="results.json", help="where to write results.json")
    grade.add_argument("--memory-mib", type=int, default=4096, help="memory for the student's code")
    grade.add_argument("--threads", type=int, default=1, help="torch threads for the student's code")
    _unsafe_option(grade)
    grade.set_defaults(run=_grade)
    batch = commands.add_parser("batch", help="grade every notebook in a folder (one per student)")
    batch.add_argument("folder")
    batch.add_argument("--assignment", required=True)
    batch.add_argument("--out", default="grades", help="folder for results and the grades CSV")
    _class_options(batch)
    batch.set_defaults(run=_batch)
    autograde = commands.add_parser("autograde", help="grade submitted/<student>/ASSIGNMENT/ into nbgrader's "
                                                      "gradebook (run in the course folder)")
    autograde.add_argument("assignment")
    autograde.add_argument("--student", nargs="+", metavar="ID", help="only these students")
    _class_options(autograde)
    autograde.set_defaults(run=_autograde)
    package = commands.add_parser("package", help="build a hosted grader's package")
    package.add_argument("kind", choices=["gradescope"])
    package.add_argument("assignment")
    package.add_argument("--out", default="autograder.zip", help="where to write the zip")
    package.set_defaults(run=_package)
    github = commands.add_parser("github-classroom", help="grade a student repository's notebook and write "
                                                          "GitHub Classroom's result to $GITHUB_OUTPUT")
    github.add_argument("folder", help="the student's repository (the notebook is looked for in it)")
    github.add_argument("--assignment", required=True)
    github.set_defaults(run=_github_classroom)
    release = commands.add_parser(
        "release", help="regenerate release/ from source/ with nbgrader, and the student bundles in dist/student/")
    release.add_argument("assignments", nargs="*")
    release.set_defaults(run=_release)
    lab = commands.add_parser("build-lab", help="build the student bundles' JupyterLab extension (the Submit for "
                                               "feedback button) into build/labextension/; needs Node.js")
    lab.add_argument("--quiet", action="store_true", help="print nothing but errors")
    lab.set_defaults(run=_build_lab)
    data = commands.add_parser("fetch-data", help="find, verify (or download once) the data sets the lessons and "
                                                  "graders read")
    data.add_argument("kinds", nargs="*", metavar="KIND", help="data sets to provide (default: all the course needs)")
    data.set_defaults(run=_fetch_data)
    people = commands.add_parser("students", help="the grading service's students (run in the course folder)")
    people.add_argument("action", choices=["add", "list"])
    people.add_argument("ids", nargs="*", metavar="ID")
    people.add_argument("--roster", help="a CSV of students (column id or student_id, else the first column)")
    people.add_argument("--gradebook", action="store_true", help="every student of nbgrader's gradebook.db")
    people.add_argument("--db", help="database URL (default: grading-service.db, SQLite, in this folder)")
    people.set_defaults(run=_students)
    tokens = commands.add_parser("tokens", help="issue the grading service's tokens (each is shown once)")
    tokens.add_argument("--student", nargs="+", metavar="ID", help="only these students (default: every one)")
    tokens.add_argument("--instructor", metavar="NAME", help="an instructor's token instead")
    tokens.add_argument("--revoke", action="store_true", help="revoke instead of issuing")
    tokens.add_argument("--out", help="write name,role,token as CSV here (mode 600) instead of printing")
    tokens.add_argument("--db", help="database URL (default: grading-service.db, SQLite, in this folder)")
    tokens.set_defaults(run=_tokens)
    report = commands.add_parser("report", help="the class report of an assignment: HTML with plots, and CSV")
    report.add_argument("assignment")
    report.add_argument("--html", metavar="PATH", help="write the page here (default: report-ASSIGNMENT.html)")
    report.add_argument("--csv", metavar="DIR", help="also write students.csv, tasks.csv, failures.csv and days.csv here")
    report.add_argument("--db", help="the grading service's database (default: grading-service.db here, if any)")
    report.set_defaults(run=_report)
    service = commands.add_parser("serve", help="the grading service students submit to (run in the course folder)")
    service.add_argument("--host", default="127.0.0.1", help="loopback by default: put a TLS proxy in front")
    service.add_argument("--port", type=int, default=8765)
    service.add_argument("--db", help="database URL (default: grading-service.db, SQLite, in this folder)")
    service.add_argument("--jobs", type=int, default=1, help="grading processes")
    service.add_argument("--prefix", default=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", ""), metavar="PATH",
                         help="serve under this path, e.g. /services/grading (default: JupyterHub's service prefix "
                              "where JupyterHub starts it, else none)")
    service.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                         help="grade on this Dask cluster's workers instead of local processes")
    service.set_defaults(run=_serve)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
