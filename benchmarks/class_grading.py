"""Grading a class: `autograder autograde --jobs 2` against stock `nbgrader autograde` (in-kernel execution).

    .venv/bin/python benchmarks/class_grading.py                   # 40 submissions of 01-datasets
    .venv/bin/python benchmarks/class_grading.py --students 12 --dask 6

Builds one course folder (nbgrader generate_assignment) with a class of correct, wrong, broken and
hostile submissions, copies it twice and grades one copy with ours and the other with nbgrader's own
autograde (this course's nbgrader_config.py with nbgrader's default autograde preprocessors restored,
so every notebook runs in a Jupyter kernel with the hidden tests). Prints both wall times and their
ratio (target: ours <= 0.25x), whether the totals agree on the honest submissions, and the Dask
route's overhead per submission (`batch --scheduler` on a LocalCluster of 2 worker processes against
`batch --jobs 2`, same submissions).
"""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from autograder.judge.notebook import read_notebook  # noqa: E402
from tests.classes import PATCH_TORCH, as_submission, wrong  # noqa: E402
from tests.notebooks import append_cell, edit_solution, source_notebook  # noqa: E402

A = "01-datasets"
STOCK_OVERRIDE = """
# Benchmark only: nbgrader's default autograde steps (the notebook runs in a kernel, hidden tests too).
from nbgrader.converters import Autograde as _Autograde
c.Autograde.autograde_preprocessors = list(_Autograde.autograde_preprocessors.default_value)
"""
FAKE_BRIDGE = ("import sys, types\nfake = types.ModuleType('autograder.bridge')\n"
               "fake.check_task = lambda task_id, namespace: print(f'Task {task_id}: all checks passed.')\n"
               "sys.modules['autograder.bridge'] = fake\n")


def env():
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
                COURSE_QUICK="1", COURSE_GRADING="1", TQDM_DISABLE="1", PYTHONPATH=ROOT)


def run(cmd, cwd):
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env())
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return elapsed, proc


def kinds(release):
    """(kind, honest?, notebook) of each kind of submission in the class, cycled over the students."""
    reference = source_notebook(A)
    mistakes = wrong(reference)
    broken = edit_solution(reference, "pair_dataset", "def __len__(self):", "def __len__(self)")
    return [
        ("correct", True, as_submission(reference, release)),
        ("wrong", True, as_submission(mistakes, release)),
        ("empty", True, release),
        ("broken", True, as_submission(broken, release)),
        ("correct", True, as_submission(reference, release)),
        ("hostile-torch", False, append_cell(as_submission(mistakes, release), PATCH_TORCH, index=3)),
        ("hostile-bridge", False, append_cell(release, FAKE_BRIDGE, index=3)),
        ("exit", True, append_cell(as_submission(reference, release), "import sys\nsys.exit()", index=3)),
    ]


def build_course(folder, n_students):
    shutil.copy(os.path.join(ROOT, "nbgrader_config.py"), folder)
    shutil.copytree(os.path.join(ROOT, "source", A), os.path.join(folder, "source", A))
    run([sys.executable, "-m", "nbgrader", "generate_assignment", A, "--force"], folder)
    release = read_notebook(os.path.join(folder, "release", A, "datasets.ipynb"))
    pool = kinds(release)
    students = {}
    for i in range(n_students):
        kind, honest, nb = pool[i % len(pool)]
        name = f"s{i:03d}-{kind}"
        target = os.path.join(folder, "submitted", name, A)
        os.makedirs(target)
        with open(os.path.join(target, "datasets.ipynb"), "w") as handle:
            json.dump(nb, handle)
        students[name] = honest
    return students


def points(course):
    """{student: {grade cell: auto score}} from the gradebook."""
    with sqlite3.connect(os.path.join(course, "gradebook.db")) as db:
        rows = db.execute(
            "SELECT student.id, base_cell.name, grade.auto_score FROM grade JOIN submitted_notebook ON "
            "grade.notebook_id = submitted_notebook.id JOIN submitted_assignment ON "
            "submitted_notebook.assignment_id = submitted_assignment.id JOIN student ON "
            "submitted_assignment.student_id = student.id JOIN base_cell ON grade.cell_id = base_cell.id"
        ).fetchall()
    found = {}
    for student, cell, score in rows:
        found.setdefault(student, {})[cell] = score
    return found


def totals(course):
    """{student: total auto score} from the gradebook."""
    return {student: sum(v for v in cells.values() if v is not None) for student, cells in points(course).items()}


def dask_overhead(course, n):
    """Seconds per submission of `batch --scheduler` (LocalCluster, 2 processes) minus `batch --jobs 2`."""
    from distributed import LocalCluster

    names = sorted(os.listdir(os.path.join(course, "submitted")))[:n]
    subset = os.path.join(course, "dask-subset")
    for name in names:
        shutil.copytree(os.path.join(course, "submitted", name), os.path.join(subset, name))
    local, _ = run([sys.executable, "-m", "autograder", "batch", subset, "--assignment", A, "--out",
                    os.path.join(course, "out-local"), "--jobs", "2"], course)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        remote, _ = run([sys.executable, "-m", "autograder", "batch", subset, "--assignment", A, "--out",
                         os.path.join(course, "out-dask"), "--scheduler", cluster.scheduler_address], course)
    return local, remote, len(names)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--dask", type=int, default=8, help="submissions for the Dask overhead (0: skip)")
    parser.add_argument("--no-stock", action="store_true", help="skip stock nbgrader")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours, stock = os.path.join(tmp, "ours"), os.path.join(tmp, "stock")
        os.makedirs(ours)
        students = build_course(ours, args.students)
        shutil.copytree(ours, stock)
        with open(os.path.join(stock, "nbgrader_config.py"), "a") as handle:
            handle.write(STOCK_OVERRIDE)
        print(f"class: {len(students)} submissions of {A} "
              f"({sum(students.values())} honest, {len(students) - sum(students.values())} hostile), "
              f"{os.cpu_count()} CPU cores")
        t_ours, proc = run([sys.executable, "-m", "autograder", "autograde", A, "--jobs", "2"], ours)
        print(f"autograder autograde --jobs 2: {t_ours:7.1f} s  ({t_ours / len(students):.2f} s per submission)")
        print("\n".join("  " + line for line in proc.stdout.strip().splitlines()[-14:]))
        if not args.no_stock:
            t_stock, _ = run([sys.executable, "-m", "nbgrader", "autograde", A], stock)
            print(f"stock nbgrader autograde:      {t_stock:7.1f} s  ({t_stock / len(students):.2f} s per submission)")
            print(f"ratio ours / stock: {t_ours / t_stock:.3f}  (target <= 0.25)")
            mine, theirs = totals(ours), totals(stock)
            honest = [s for s, ok in students.items() if ok]
            same = [s for s in honest if mine.get(s) == theirs.get(s)]
            print(f"identical totals on honest submissions: {len(same)}/{len(honest)}")
            ours_cells, stock_cells = points(ours), points(stock)
            for s in honest:
                if mine.get(s) != theirs.get(s):
                    cells = {c: (v, stock_cells[s].get(c)) for c, v in ours_cells[s].items()
                             if v != stock_cells[s].get(c)}
                    print(f"  differs: {s}: ours {mine.get(s)}, stock {theirs.get(s)}; (ours, stock) by cell: {cells}")
            hostile = [s for s, ok in students.items() if not ok]
            print("hostile submissions, ours vs stock: " + ", ".join(f"{s} {mine.get(s)} vs {theirs.get(s)}"
                                                                   for s in hostile))
        if args.dask:
            local, remote, n = dask_overhead(ours, args.dask)
            print(f"Dask route: batch --jobs 2 {local:.1f} s, batch --scheduler (LocalCluster, 2 processes) "
                  f"{remote:.1f} s on {n} submissions: overhead {(remote - local) / n:+.2f} s per submission")


if __name__ == "__main__":
    main()
