"""Rewriting what a probe found gains nothing: the judge decides from data it checks itself.

A 03 submission gets `init_linreg_params` (w is not a leaf) and `sgd_step` (the update rebinds instead of
changing the tensors in place, and gradients are not cleared) wrong. Each attack adds the same wrong
answers a way to rewrite every result a probe returns: every False becomes True, every None gradient a
tensor of zeros, every report of "nothing changed" reversed. The hooks are installed in every way the
student's process allows: from the notebook (profile, trace, fork, garbage-collector and audit hooks, the
engine's own restore method, the import system) and, strongest, from inside the student's own functions
while a probe calls them, where no reset of the interpreter can reach. Each must score what the wrong
answers score without any hook.
"""
import pytest

from tests.hostile import FORGE
from tests.notebooks import append_cell, grade, replace_solution, source_notebook

A = "03-linear-regression"

WRONG_INIT = '''
def init_linreg_params(num_inputs, sigma=0.01):
    w = torch.randn(num_inputs, 1, requires_grad=True) * sigma
    b = torch.zeros(1, requires_grad=True)
    return w, b
'''
WRONG_SGD = '''
def sgd(params, lr, batch_size):
    for p in params:
        p = p - lr * p.grad / batch_size
'''

HOOKS = {
    "profile": "sys.setprofile(_profile)",
    "trace": "sys.settrace(_tracer)",
    "fork_hook": "os.register_at_fork(after_in_child=lambda: (sys.setprofile(_profile), threading.setprofile(_profile)))",
    "gc_callback": "gc.callbacks.append(lambda phase, info: sys.setprofile(_profile))",
    "audit_hook": ("def _audit(event, args):\n    if event == 'exec':\n        sys.setprofile(_profile)\n"
                   "sys.addaudithook(_audit)"),
    "engine_restore": ("import autograder.sandbox.inside.worker as _w\n_orig = _w.Pristine.restore\n"
                       "def _restore(self):\n    _orig(self)\n    sys.setprofile(_profile)\n"
                       "_w.Pristine.restore = _restore\n_w.Guard.reset = lambda self: sys.setprofile(_profile)"),
    "meta_path": ("class _Finder:\n    @staticmethod\n    def find_spec(name, path=None, target=None):\n"
                  "        sys.setprofile(_profile)\n        return None\nsys.meta_path.insert(0, _Finder)"),
}

# Inside the graded functions themselves: the hook is installed while the probe runs.
INSIDE = '''
_wrong_init, _wrong_sgd = init_linreg_params, sgd

def init_linreg_params(*args, **kwargs):
    sys.setprofile(_profile)
    return _wrong_init(*args, **kwargs)

def sgd(*args, **kwargs):
    sys.setprofile(_profile)
    return _wrong_sgd(*args, **kwargs)
'''


def _wrong():
    nb = replace_solution(source_notebook(A), "init_linreg_params", WRONG_INIT)
    return replace_solution(nb, "sgd_step", WRONG_SGD)


@pytest.fixture(scope="module")
def honest_wrong_score():
    report = grade(_wrong())
    assert report.error is None
    assert report.failed_tasks() == {"init_linreg_params", "sgd_step"}, report.failed_tasks()
    return report.score


@pytest.mark.xdist_group("hostile_verdicts")
@pytest.mark.parametrize("hook", sorted(HOOKS) + ["inside_the_graded_functions"])
def test_rewriting_probe_results_gains_nothing(honest_wrong_score, hook):
    body = FORGE + (INSIDE if hook == "inside_the_graded_functions" else HOOKS[hook])
    report = grade(append_cell(_wrong(), body))
    assert report.error is None
    assert report.failed_tasks() >= {"init_linreg_params", "sgd_step"}, (hook, report.failed_tasks())
    assert report.score <= honest_wrong_score, (hook, report.score)
