"""Checks of task `reusable_module`."""
import pytest

from autograder.judge.checks import expect, fail

from .probes import probe_minibatches_generator, probe_module_file, probe_regression
from .reference import B, W, check_generator, check_regression, _seed


def module_file(student):
    """my_datasets.py as it is on disk next to the notebook: fail unless it defines the required functions
    and is what `import my_datasets` loads."""
    import ast
    out = student.probe(probe_module_file, "my_datasets", label="`my_datasets.py`")
    if out["text"] is None:
        fail("There is no file my_datasets.py next to your notebook: the cell of this task should start with "
             "`%%writefile my_datasets.py` and hold the functions, so that running it writes the module.")
    try:
        tree = ast.parse(out["text"])
    except SyntaxError as exc:
        fail(f"my_datasets.py is not valid Python (line {exc.lineno}: {exc.msg}): write only Python code after "
             f"the `%%writefile my_datasets.py` line.")
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update(t.id for t in targets if isinstance(t, ast.Name))
    missing = [name for name in ("make_regression", "minibatches") if name not in defined]
    expect(not missing, f"my_datasets.py does not define {' and '.join(missing)}: write "
                        f"{'both functions' if len(missing) == 2 else 'the function'} into the file itself.")
    if out["import_error"]:
        fail(f"`import my_datasets` fails: {out['import_error']}.")
    expect(out["imported_from"] == "my_datasets.py",
           f"`import my_datasets` does not load the file my_datasets.py next to your notebook (it loads "
           f"{out['imported_from']}): the module should be that file.")


@pytest.mark.reusable_module
def test_reusable_module(student):
    module_file(student)
    out = student.probe(probe_regression, W, B, 4000, 0.3, _seed(0), module="my_datasets",
                        label="`my_datasets.make_regression`")
    if not isinstance(out, dict):
        fail("my_datasets.make_regression returned an unexpected value.")
    check_regression(out, 4000, W, B, 0.3, what="my_datasets.make_regression")
    for power in (2, 3):
        out = student.probe(probe_regression, W, B, 50, 0.0, _seed(6), power=power, module="my_datasets",
                            label=f"`my_datasets.make_regression(..., power={power})`")
        check_regression(out, 50, W, B, 0.0, power=power, what=f"my_datasets.make_regression(..., power={power})")


@pytest.mark.reusable_module
def test_reusable_module_minibatches(student):
    module_file(student)
    seed = _seed(12)
    runs = student.probe(probe_minibatches_generator, 29, 6, [seed, seed, seed + 1], module="my_datasets",
                         label="`my_datasets.minibatches`")
    check_generator(runs, "my_datasets.minibatches")
