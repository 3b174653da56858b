"""Regenerate ``release/<assignment>/`` from ``source/`` with nbgrader, in a throw-away course folder."""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_assignments(root=ROOT):
    """Assignment folders present under source/."""
    folder = os.path.join(root, "source")
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))


def generate_into(course_dir, assignments, root=ROOT):
    """Run ``nbgrader generate_assignment`` for ``assignments`` in a copy of the course at ``course_dir``."""
    shutil.copy(os.path.join(root, "nbgrader_config.py"), course_dir)
    for assignment in assignments:
        shutil.copytree(os.path.join(root, "source", assignment), os.path.join(course_dir, "source", assignment),
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for assignment in assignments:
        result = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force", "--no-db",
             "--CourseDirectory.root=" + course_dir],
            cwd=course_dir, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{result.stdout}{result.stderr}")
    return os.path.join(course_dir, "release")


def generate_releases(assignments=None, root=ROOT):
    """Replace release/<assignment>/ with a fresh nbgrader release for each assignment."""
    assignments = assignments or source_assignments(root)
    with tempfile.TemporaryDirectory() as course_dir:
        release = generate_into(course_dir, assignments, root)
        for assignment in assignments:
            target = os.path.join(root, "release", assignment)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(os.path.join(release, assignment), target)
            print(f"release/{assignment} regenerated")
