"""The engine's layout shows the trust boundary: each stage imports only the stages below it, and the code that
runs in the student's process (``autograder/sandbox/inside``) imports nothing of the judge's."""
import ast
import builtins
import os
import symtable

from autograder import PACKAGE_DIR

# Lowest first: a module may import its own stage and the stages before it, never one after it.
STAGES = ["sandbox.inside", "sandbox", "judge", "distribute", "classroom", "service", ""]


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
                found[module_of(path)] = path
    return found


def imports_of(path):
    """The ``autograder`` modules a file imports (at any depth, deferred and relative imports included)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    package = module_of(path).rsplit(".", 1)[0] if not path.endswith("__init__.py") else module_of(path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("autograder"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            if not base.startswith("autograder"):
                continue
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found


def module_of(path):
    """The dotted module name of a file of the engine."""
    relative = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
    return relative.removesuffix(".__init__")


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
    assert stage_of("autograder.__main__") == stage_of("autograder.graders.datasets.reference") == ""


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


def probe_modules():
    """{dotted name: path} of every lesson's probes (``autograder/graders/<lesson>/probes.py``)."""
    return {m: p for m, p in MODULES.items() if m.startswith("autograder.graders.") and m.endswith(".probes")}


def free_names(function_source):
    """Names a function reads from outside itself (its globals), nested functions included."""
    table = symtable.symtable(function_source, "<probe>", "exec").get_children()[0]
    found, tables = set(), [table]
    while tables:
        current = tables.pop()
        found.update(s.get_name() for s in current.get_symbols() if s.is_global() and s.is_referenced())
        tables.extend(current.get_children())
    return found


def test_every_lesson_has_its_probes_apart():
    assert len(probe_modules()) == 7, sorted(probe_modules())


def test_a_probe_is_self_contained_source_that_imports_only_the_code_beside_the_student():
    """A probe travels as its own source: it reads only builtins and what it imports itself, and of the engine it
    imports only ``autograder.sandbox.inside`` (the probe helpers staged into the box)."""
    allowed = set(dir(builtins))
    wrong = []
    for module, path in probe_modules().items():
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef):
                outside = free_names(ast.get_source_segment(source, node)) - allowed
                if outside:
                    wrong.append(f"{module}.{node.name} reads {sorted(outside)} from its module")
        wrong += [f"{module} imports {m}" for m in imports_of(path) if stage_of(m) != "sandbox.inside"]
    assert not wrong, wrong


def test_the_probe_rule_would_catch_a_probe_that_leans_on_its_module():
    assert free_names("def probe(ns):\n    import torch\n    return torch.zeros(N) + len([])\n") - set(dir(builtins)) == {"N"}
