"""Command line: grade one notebook, grade a folder of submissions, or make the student releases.

    python -m autograder grade NOTEBOOK.ipynb [--assignment ID] [--results PATH]
    python -m autograder batch SUBMISSIONS_DIR --assignment ID [--out DIR]
    python -m autograder release [ASSIGNMENT ...]

``grade`` exits 0 whenever grading completed, whatever the score; 2 when it could not run (the report
is still written, with the reason).
"""
import argparse
import sys


def _grade(args):
    from autograder.engine import grade_notebook
    from autograder.sandbox import Limits

    limits = Limits(memory_bytes=args.memory_mib * 2**20, threads=args.threads)
    report = grade_notebook(args.notebook, assignment=args.assignment, limits=limits)
    print(report.table())
    if report.sandbox:
        print("sandbox: " + "; ".join(report.sandbox), file=sys.stderr)
    report.write(args.results)
    print(f"Results written to {args.results}")
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
        return 2
    return 0


def _batch(args):
    from autograder.batch import grade_folder

    return grade_folder(args.folder, args.assignment, args.out)


def _release(args):
    from autograder.release import generate_releases

    generate_releases(args.assignments or None)
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
    grade.set_defaults(run=_grade)
    batch = commands.add_parser("batch", help="grade every notebook in a folder (one per student)")
    batch.add_argument("folder")
    batch.add_argument("--assignment", required=True)
    batch.add_argument("--out", default="grades", help="folder for results and the grades CSV")
    batch.set_defaults(run=_batch)
    release = commands.add_parser("release", help="regenerate release/ from source/ with nbgrader")
    release.add_argument("assignments", nargs="*")
    release.set_defaults(run=_release)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
