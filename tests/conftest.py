"""Project tests: make the repository importable and keep matplotlib off-screen."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("MPLBACKEND", "Agg")
# A test worker grades every lesson, many times: it keeps a warm sandbox for each (about 0.4 GB each), as a judge
# process that grades a whole course would.
os.environ.setdefault("COURSE_WARM_BOXES", "8")


def _group_names(item):
    return sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                   for m in item.iter_markers("xdist_group")})


def pytest_collection_modifyitems(config, items):
    """Tests marked ``xdist_group`` run on one pytest-xdist worker, which builds their shared module fixture
    (a graded class, a course folder) once. pytest-xdist's ``--dist loadgroup`` puts the group into each
    test's node id through an attribute that this pytest no longer reads, so the group is added here."""
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:             # an older pytest, where pytest-xdist's own grouping works
        return
    for item in items:
        names = _group_names(item)
        if names and not item.nodeid.endswith("@" + "_".join(names)):
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


@pytest.fixture(scope="module")
def reference(request):
    """The source notebook (the reference solution) of the test module's assignment ``A``."""
    from tests.notebooks import source_notebook

    return source_notebook(request.module.A)
