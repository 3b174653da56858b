"""The engine's layout shows the trust boundary: each stage imports only the stages below it, and the code that
runs in the student's process (``autograder/sandbox/inside``) imports nothing of the judge's."""
import ast
import os

from autograder import PACKAGE_DIR

# Lowest first: a module may import its own stage and the stages before it, never one after it.
STAGES = ["sandbox.inside", "sandbox", "judge", "distribute", "classroom", ""]


def stage_of(module):
    """The stage of a dotted module name under ``autograder`` ("" for the top: the command line, the grade
    cells' bridge, the graders)."""
    rest = module[len("autograder."):] if module.startswith("autograder.") else ""
    for stage in STAGES[:-1]:
        if rest == stage or rest.startswith(stage + "."):
            return stage
    return ""


def engine_modules():
    """{dotted name: path} of every module of the engine."""
    found = {}
    for folder, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
                found[relative.removesuffix(".__init__")] = path
    return found


def imports_of(path):
    """The ``autograder`` modules a file imports (at any depth, deferred imports included)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("autograder"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("autograder"):
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module)
    return found


MODULES = engine_modules()


def test_no_stage_imports_a_later_one():
    wrong = []
    for module, path in MODULES.items():
        own = STAGES.index(stage_of(module))
        for imported in imports_of(path):
            if imported == "autograder":
                continue                 # the package's paths (ROOT, PACKAGE_DIR)
            if STAGES.index(stage_of(imported)) > own:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, wrong


def test_the_code_beside_the_students_imports_only_itself():
    inside = {m: p for m, p in MODULES.items() if stage_of(m) == "sandbox.inside"}
    assert {"autograder.sandbox.inside.worker", "autograder.sandbox.inside.zygote"} <= set(inside)
    for module, path in inside.items():
        others = {m for m in imports_of(path) if stage_of(m) != "sandbox.inside"}
        assert not others, f"{module} imports {others}: only autograder.sandbox.inside runs beside the student's code"


def test_the_stage_rule_would_catch_an_import_from_above():
    assert STAGES.index(stage_of("autograder.judge.checks")) > STAGES.index(stage_of("autograder.sandbox.student"))
    assert stage_of("autograder.sandbox.inside.worker") == "sandbox.inside"
    assert stage_of("autograder.__main__") == stage_of("autograder.graders.test_datasets") == ""


def test_no_import_loop():
    graph = {module: {m for m in imports_of(path) if m in MODULES and m != "autograder"}
             for module, path in MODULES.items()}
    loops = []

    def visit(module, trail):
        for imported in graph.get(module, ()):
            if imported in trail:
                loops.append(trail[trail.index(imported):] + [imported])
            elif imported not in done:
                visit(imported, trail + [imported])
        done.add(module)

    done = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not loops, loops
