"""02-tensorboard: reference full marks, release zero, the mistake bank, correct variants, and the reference
notebook's event files read back through a real TensorBoard server.

Mistakes are graded in groups (one notebook per group, at most one mistake per task): each group must
lose exactly the tasks it mutates, so a mistake that also cost another task would show."""
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.banks import expect_groups_cover
from tests.notebooks import ROOT, edit_solution, grade, replace_solution
from tests.service.server import stop

A = "02-tensorboard"


# ------------------------------------------------------------------------------------- mistake bank
NEVER_CLOSED = '''
def compare_lrs(lrs, make_net, loss_fn, train_iter, valid_iter, num_epochs, log_dir):
    results = {}
    for lr in lrs:
        net = make_net()
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
        writer = SummaryWriter(os.path.join(log_dir, f"lr_{lr}"))
        history = fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=valid_iter,
                      callbacks=[TensorBoardCallback(writer)], progress=False)
        results[lr] = history["valid_loss"][-1]
        writer.add_hparams({"lr": lr}, {"hparam/valid_loss": results[lr]}, run_name=".")
    return results
'''

FLUSHED_NOT_CLOSED = NEVER_CLOSED.replace("    return results", "        writer.flush()\n    return results")

ONE_NET_FOR_ALL = '''
def compare_lrs(lrs, make_net, loss_fn, train_iter, valid_iter, num_epochs, log_dir):
    results = {}
    net = make_net()
    for lr in lrs:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
        with SummaryWriter(os.path.join(log_dir, f"lr_{lr}")) as writer:
            history = fit(net, loss_fn, optimizer, train_iter, num_epochs, valid_iter=valid_iter,
                          callbacks=[TensorBoardCallback(writer)], progress=False)
            results[lr] = history["valid_loss"][-1]
            writer.add_hparams({"lr": lr}, {"hparam/valid_loss": results[lr]}, run_name=".")
    return results
'''

# The loss tensor itself is accumulated for logging: the graph of every batch of the epoch stays alive.
LOSS_TENSOR_KEPT = '''
def train_logged(net, loss_fn, optimizer, train_iter, num_epochs, writer, valid_iter=None):
    history = {"epoch": [], "train_loss": []}
    for epoch in range(1, num_epochs + 1):
        epoch_loss, n = 0.0, 0
        for X, y in train_iter:
            loss = loss_fn(net(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            epoch_loss += loss * len(X)
            n += len(X)
        writer.add_scalar("loss/train", epoch_loss / n, epoch)
        history["epoch"].append(epoch)
        history["train_loss"].append((epoch_loss / n).item())
        if valid_iter is not None:
            valid_loss = evaluate(net, loss_fn, valid_iter)["loss"]
            writer.add_scalar("loss/valid", valid_loss, epoch)
            history.setdefault("valid_loss", []).append(valid_loss)
    return history
'''

DIRECT_LOOP = '''
def train_logged(net, loss_fn, optimizer, train_iter, num_epochs, writer, valid_iter=None):
    history = {"epoch": [], "train_loss": []}
    for epoch in range(1, num_epochs + 1):
        net.train()
        losses, sizes = [], []
        for X, y in train_iter:
            loss = loss_fn(net(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            sizes.append(len(X))
        train_loss = sum(l * n for l, n in zip(losses, sizes)) / sum(sizes)
        writer.add_scalar("loss/train", train_loss, global_step=epoch)
        history["epoch"].append(epoch)
        history["train_loss"].append(train_loss)
        if valid_iter is not None:
            net.eval()
            with torch.no_grad():
                valid_losses = [(loss_fn(net(X), y).item(), len(X)) for X, y in valid_iter]
            net.train()
            valid_loss = sum(l * n for l, n in valid_losses) / sum(n for _, n in valid_losses)
            writer.add_scalar("loss/valid", valid_loss, global_step=epoch)
            history.setdefault("valid_loss", []).append(valid_loss)
    return history
'''

WEIGHTED_MEAN = "train_loss = sum(l * n for l, n in zip(losses, sizes)) / sum(sizes)"
assert WEIGHTED_MEAN in DIRECT_LOOP
LAST_BATCH_LOGGED = DIRECT_LOOP.replace(WEIGHTED_MEAN, "train_loss = losses[-1]")

TOP_DIRECTORY_ONLY = '''
def read_scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    accumulator = EventAccumulator(log_dir)
    accumulator.Reload()
    return {(".", tag): [(e.step, e.value) for e in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}
'''

# name: (task it must cost, how to make it: ("edit", old, new[, count]) or ("replace", source))
MISTAKES = {
    "no_global_step": ("log_history", ("edit", ", global_step=epoch)", ")", 2)),
    "add_scalar_of_weight_tensor": ("log_parameters", ("edit", 'writer.add_histogram(f"weights/{name}"',
                                                       'writer.add_scalar(f"weights/{name}"')),
    "loss_tensor_kept_alive": ("train_logged", ("replace", LOSS_TENSOR_KEPT)),
    "last_batch_loss_logged": ("train_logged", ("replace", LAST_BATCH_LOGGED)),
    "writer_never_closed": ("compare_lrs", ("replace", NEVER_CLOSED)),
    "writer_flushed_not_closed": ("compare_lrs", ("replace", FLUSHED_NOT_CLOSED)),
    "one_net_for_every_lr": ("compare_lrs", ("replace", ONE_NET_FOR_ALL)),
    "add_scalars_dirs_not_read": ("read_scalars", ("replace", TOP_DIRECTORY_ONLY)),
}


# Feedback must say what went wrong for the silent mistakes (nothing crashes in them).
MESSAGE_HINTS = {
    "no_global_step": "global_step",
    "loss_tensor_kept_alive": "alive",
    "writer_never_closed": "still open",
    "add_scalars_dirs_not_read": "sub-directories",
}


def _apply(nb, task, how):
    if how[0] == "edit":
        return edit_solution(nb, task, *how[1:])
    return replace_solution(nb, task, how[1])


# ------------------------------------------------------------------ more mistakes, graded in groups
COMPARE_VIA_TRAIN_LOGGED = """
def compare_lrs(lrs, make_net, loss_fn, train_iter, valid_iter, num_epochs, log_dir):
    results = {}
    for lr in lrs:
        net = make_net()
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
        with SummaryWriter(os.path.join(log_dir, f"lr_{lr}")) as writer:
            history = train_logged(net, loss_fn, optimizer, train_iter, num_epochs, writer, valid_iter=valid_iter)
            results[lr] = float(history["valid_loss"][-1])
            writer.add_hparams({"lr": lr}, {"hparam/valid_loss": results[lr]}, run_name=".")
    return results
"""

HISTORY_ALWAYS_VALID = """
def log_history(writer, history):
    for i, epoch in enumerate(history["epoch"]):
        writer.add_scalar("loss/train", history["train_loss"][i], global_step=epoch)
        writer.add_scalar("loss/valid", history["valid_loss"][i], global_step=epoch)
"""

HISTORY_STEP_FROM_ENUMERATE = """
def log_history(writer, history):
    for step, loss in enumerate(history["train_loss"], start=1):
        writer.add_scalar("loss/train", loss, step)
    for step, loss in enumerate(history.get("valid_loss", []), start=1):
        writer.add_scalar("loss/valid", loss, step)
"""

HISTORY_CLOSES_WRITER = """
def log_history(writer, history):
    for i, epoch in enumerate(history["epoch"]):
        writer.add_scalar("loss/train", history["train_loss"][i], epoch)
        if "valid_loss" in history:
            writer.add_scalar("loss/valid", history["valid_loss"][i], epoch)
    writer.close()
"""

PARAMETERS_FROM_STATE_DICT = """
def log_parameters(writer, net, step):
    for name, tensor in net.state_dict().items():
        writer.add_histogram(f"weights/{name}", tensor, step)
        if tensor.grad is not None:
            writer.add_histogram(f"grads/{name}", tensor.grad, step)
"""

GRAD_LOGGED_WHILE_NONE = """
def log_parameters(writer, net, step):
    for name, param in net.named_parameters():
        writer.add_histogram(f"weights/{name}", param.detach(), step)
        writer.add_histogram(f"grads/{name}", param.grad, step)
"""

OPTIMIZER_IGNORED = DIRECT_LOOP.replace(
    "            optimizer.step()\n",
    "            lr = optimizer.param_groups[0]['lr']\n"
    "            with torch.no_grad():\n"
    "                for param in net.parameters():\n"
    "                    param -= lr * param.grad\n")
VALIDATED_IN_TRAINING_MODE = DIRECT_LOOP.replace("            net.eval()\n", "")
assert VALIDATED_IN_TRAINING_MODE != DIRECT_LOOP
OWN_MSE = DIRECT_LOOP.replace("            loss = loss_fn(net(X), y)\n",
                              "            loss = ((net(X) - y) ** 2).mean()\n")
assert OWN_MSE != DIRECT_LOOP
WRITER_CLOSED_IN_TRAIN_LOGGED = DIRECT_LOOP.replace("    return history", "    writer.close()\n    return history")
assert WRITER_CLOSED_IN_TRAIN_LOGGED != DIRECT_LOOP
EVAL_MODE_NEVER_LEFT = DIRECT_LOOP.replace("        net.train()\n        losses, sizes", "        losses, sizes").replace(
    "            net.train()\n            valid_loss", "            valid_loss")

SCALARS_WITHOUT_SORT = """
def read_scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    curves = {}
    for root, _, files in os.walk(log_dir):
        if any("tfevents" in f for f in files):
            acc = EventAccumulator(root)
            acc.Reload()
            for tag in acc.Tags()["scalars"]:
                curves[(os.path.relpath(root, log_dir), tag)] = [(e.step, e.value) for e in acc.Scalars(tag)]
    return curves
"""
SCALARS_FULL_PATHS = SCALARS_WITHOUT_SORT.replace("(os.path.relpath(root, log_dir), tag)", "(root, tag)").replace(
    "[(e.step, e.value) for e in acc.Scalars(tag)]", "sorted((e.step, e.value) for e in acc.Scalars(tag))")
SCALAR_EVENTS_RETURNED = SCALARS_WITHOUT_SORT.replace("[(e.step, e.value) for e in acc.Scalars(tag)]",
                                                      "list(acc.Scalars(tag))")

# name: (task it must cost, how to make it)
GROUPED_MISTAKES = {
    "valid_loss_assumed_in_history": ("log_history", ("replace", HISTORY_ALWAYS_VALID)),
    "steps_counted_from_one": ("log_history", ("replace", HISTORY_STEP_FROM_ENUMERATE)),
    "closes_the_callers_writer": ("log_history", ("replace", HISTORY_CLOSES_WRITER)),
    "state_dict_has_no_grads": ("log_parameters", ("replace", PARAMETERS_FROM_STATE_DICT)),
    "gradient_logged_while_none": ("log_parameters", ("replace", GRAD_LOGGED_WHILE_NONE)),
    "summed_epoch_loss": ("train_logged", ("replace", DIRECT_LOOP.replace(
        WEIGHTED_MEAN, "train_loss = sum(l * n for l, n in zip(losses, sizes))"))),
    "unweighted_mean_of_batches": ("train_logged", ("replace", DIRECT_LOOP.replace(
        WEIGHTED_MEAN, "train_loss = sum(losses) / len(losses)"))),
    "eval_mode_never_left": ("train_logged", ("replace", EVAL_MODE_NEVER_LEFT)),
    "optimizer_ignored_for_plain_sgd": ("train_logged", ("replace", OPTIMIZER_IGNORED)),
    "own_mse_instead_of_loss_fn": ("train_logged", ("replace", OWN_MSE)),
    "validated_in_training_mode": ("train_logged", ("replace", VALIDATED_IN_TRAINING_MODE)),
    "train_logged_closes_the_writer": ("train_logged", ("replace", WRITER_CLOSED_IN_TRAIN_LOGGED)),
    "runs_named_by_index": ("compare_lrs", ("edit", 'os.path.join(log_dir, f"lr_{lr}")',
                                             'os.path.join(log_dir, f"run_{lrs.index(lr)}")')),
    "momentum_added": ("compare_lrs", ("edit", "torch.optim.SGD(net.parameters(), lr=lr)",
                                       "torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)")),
    "points_left_unsorted": ("read_scalars", ("replace", SCALARS_WITHOUT_SORT)),
    "runs_as_full_paths": ("read_scalars", ("replace", SCALARS_FULL_PATHS)),
    "scalar_events_returned": ("read_scalars", ("replace", SCALAR_EVENTS_RETURNED)),
}
GROUPED_MISTAKES.update(MISTAKES)
GROUP_HINTS = {
    "gradient_logged_while_none": "param.grad is not None",
    "closes_the_callers_writer": "belongs to the caller",
    "eval_mode_never_left": "net.train()",
    "validated_in_training_mode": "eval mode (net.eval())",
    "train_logged_closes_the_writer": "belongs to the caller",
    "own_mse_instead_of_loss_fn": "loss_fn it was given",
    **MESSAGE_HINTS,
}
# One grading per group, at most one mistake per task. compare_lrs calling train_logged (a correct
# variant) rides along with a train_logged mistake: the mistake must cost train_logged only.
MISTAKE_GROUPS = [
    ["valid_loss_assumed_in_history", "gradient_logged_while_none", "summed_epoch_loss", "points_left_unsorted"],
    ["steps_counted_from_one", "state_dict_has_no_grads", "unweighted_mean_of_batches", "runs_as_full_paths",
     "one_net_for_every_lr"],
    ["closes_the_callers_writer", "eval_mode_never_left", "runs_named_by_index", "scalar_events_returned"],
    ["no_global_step", "add_scalar_of_weight_tensor", "optimizer_ignored_for_plain_sgd", "momentum_added",
     "add_scalars_dirs_not_read"],
    ["loss_tensor_kept_alive", "writer_never_closed"],
    ["last_batch_loss_logged", "writer_flushed_not_closed"],
    ["validated_in_training_mode"],
    ["train_logged_closes_the_writer"],
    ["own_mse_instead_of_loss_fn"],
]
RIDE_ALONG = {0: ("compare_lrs", COMPARE_VIA_TRAIN_LOGGED)}


def test_mistake_groups_cover_the_bank():
    expect_groups_cover(MISTAKE_GROUPS, GROUPED_MISTAKES)


@pytest.mark.parametrize("index", range(len(MISTAKE_GROUPS)), ids=lambda i: "+".join(MISTAKE_GROUPS[i]))
def test_grouped_mistakes_lose_exactly_their_tasks(reference, index):
    nb = reference
    if index in RIDE_ALONG:
        nb = replace_solution(nb, *RIDE_ALONG[index])
    for name in MISTAKE_GROUPS[index]:
        task, how = GROUPED_MISTAKES[name]
        nb = _apply(nb, task, how)
    report = grade(nb)
    expected = {GROUPED_MISTAKES[name][0] for name in MISTAKE_GROUPS[index]}
    assert report.failed_tasks() == expected, {t.id: t.output for t in report.tasks}
    for name in MISTAKE_GROUPS[index]:
        output = report.by_task[GROUPED_MISTAKES[name][0]].output
        assert output.strip() and "not implemented" not in output and "/tmp" not in output, output
        assert "runs-" not in output and "judged-run" not in output, output
        if name in GROUP_HINTS:
            assert GROUP_HINTS[name] in output, output


# ------------------------------------------------------------------------------------ correct variants
# Correct solutions written differently from the reference; one per task, several issue-named ones.
VARIANTS = {
    "log_history_with_add_scalars": ("log_history", '''
def log_history(writer, history):
    for i, epoch in enumerate(history["epoch"]):
        values = {"train": history["train_loss"][i]}
        if "valid_loss" in history:
            values["valid"] = history["valid_loss"][i]
        writer.add_scalars("loss", values, epoch)
'''),
    "log_parameters_data_as_numpy": ("log_parameters", '''
def log_parameters(writer, net, step):
    for name, p in net.named_parameters():
        writer.add_histogram("weights/" + name, p.data.cpu().numpy(), step)
    for name, p in net.named_parameters():
        if p.grad is not None:
            writer.add_histogram("grads/" + name, p.grad.clone(), step)
'''),
    "train_logged_direct_loop": ("train_logged", DIRECT_LOOP),
    "train_logged_detached_sum": ("train_logged", LOSS_TENSOR_KEPT.replace("epoch_loss += loss * len(X)",
                                                                           "epoch_loss += loss.detach() * len(X)")),
    "compare_lrs_finally_and_default_run_name": ("compare_lrs", '''
def compare_lrs(lrs, make_net, loss_fn, train_iter, valid_iter, num_epochs, log_dir):
    finals = {}
    for lr in lrs:
        net = make_net()
        writer = SummaryWriter(log_dir=f"{log_dir}/lr_{lr}")
        try:
            history = fit(net, loss_fn, torch.optim.SGD(net.parameters(), lr), train_iter, num_epochs,
                          valid_iter=valid_iter, callbacks=[TensorBoardCallback(writer)], progress=False)
            finals[lr] = float(history["valid_loss"][-1])
            writer.add_hparams({"lr": lr}, {"hparam/valid_loss": finals[lr]})
        finally:
            writer.close()
    return finals
'''),
    "read_scalars_with_multiplexer": ("read_scalars", '''
def read_scalars(log_dir):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    mux = EventMultiplexer().AddRunsFromDirectory(log_dir)
    mux.Reload()
    out = {}
    for run, tags in mux.Runs().items():
        for tag in tags["scalars"]:
            out[(run, tag)] = sorted((e.step, e.value) for e in mux.Scalars(run, tag))
    return out
'''),
    "log_history_tqdm_and_print": ("log_history", """
from tqdm.auto import tqdm
def log_history(writer, history):
    for i, epoch in enumerate(tqdm(history["epoch"], desc="logging")):
        writer.add_scalar("loss/train", history["train_loss"][i], epoch)
        if history.get("valid_loss"):
            writer.add_scalar("loss/valid", history["valid_loss"][i], epoch)
    print(f"logged {len(history['epoch'])} epochs")
"""),
    "log_parameters_warns_without_grad": ("log_parameters", """
import warnings
def log_parameters(writer, net, step):
    for name, param in net.named_parameters():
        writer.add_histogram("weights/" + name, param, global_step=step)
        if param.grad is None:
            warnings.warn(f"{name} has no gradient yet")
            continue
        writer.add_histogram("grads/" + name, param.grad, global_step=step)
"""),
    "compare_lrs_via_train_logged": ("compare_lrs", COMPARE_VIA_TRAIN_LOGGED),
    "read_scalars_with_glob": ("read_scalars", """
import glob
def read_scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    pattern = os.path.join(log_dir, "**", "*tfevents*")
    curves = {}
    for directory in sorted({os.path.dirname(path) for path in glob.glob(pattern, recursive=True)}):
        acc = EventAccumulator(directory)
        acc.Reload()
        run = os.path.relpath(directory, log_dir)
        for tag in acc.Tags()["scalars"]:
            curves[(run, tag)] = sorted(((e.step, e.value) for e in acc.Scalars(tag)), key=lambda p: p[0])
    return curves
"""),
}


def _variant_rounds():
    """Variants grouped so that each round holds at most one variant per task."""
    rounds = []
    for name in sorted(VARIANTS):
        task, source = VARIANTS[name]
        for chosen in rounds:
            if task not in chosen:
                chosen[task] = (name, source)
                break
        else:
            rounds.append({task: (name, source)})
    return rounds


@pytest.mark.parametrize("chosen", _variant_rounds(),
                         ids=lambda chosen: "+".join(name for name, _ in chosen.values()))
def test_correct_variants_get_full_marks(reference, chosen):
    """Several variants in one notebook: every grader calls only its own task's function, so a variant
    that failed would show as its own task failing."""
    nb = reference
    for task, (_, source) in chosen.items():
        nb = replace_solution(nb, task, source)
    report = grade(nb)
    assert report.failed_tasks() == set(), {t.id: t.output for t in report.tasks if not t.passed}


# ------------------------------------------------------------------------------ the course library
def test_course_callback_logs_fit_and_readers_agree(tmp_path):
    """course.tensorboard: TensorBoardCallback in fit writes the history; the readers find every curve."""
    import torch
    from torch import nn
    from torch.utils.tensorboard import SummaryWriter

    from course.datasets import make_regression
    from course.tensorboard import (TensorBoardCallback, log_history, log_parameters, read_hparams,
                                    read_histograms, read_scalars, scalar_curves)
    from course.trainer import fit

    X, y = make_regression(torch.tensor([2.0, -3.4]), 4.2, 100, seed=0)
    batches = [(X[i:i + 20], y[i:i + 20]) for i in range(0, 100, 20)]
    torch.manual_seed(0)
    net = nn.Linear(2, 1)
    with SummaryWriter(str(tmp_path / "fit")) as writer:
        history = fit(net, nn.MSELoss(), torch.optim.SGD(net.parameters(), lr=0.05), batches, 3,
                      valid_iter=batches, progress=False,
                      callbacks=[TensorBoardCallback(writer), lambda epoch, record: log_parameters(writer, net, epoch)])
        writer.add_hparams({"lr": 0.05}, {"hparam/valid_loss": history["valid_loss"][-1]}, run_name=".")
    with SummaryWriter(str(tmp_path / "scalars")) as writer:
        writer.add_scalars("loss", {"train": 1.0, "valid": 2.0}, 1)
    curves = scalar_curves(str(tmp_path / "fit"))
    for key, name in (("train_loss", "loss/train"), ("valid_loss", "loss/valid")):
        assert [s for s, _ in curves[name]] == [1, 2, 3]
        assert all(math.isclose(v, h, rel_tol=1e-6) for (_, v), h in zip(curves[name], history[key]))
    tags = {tag for _, tag in read_histograms(str(tmp_path / "fit"))}
    assert tags == {"weights/weight", "weights/bias", "grads/weight", "grads/bias"}
    assert read_hparams(str(tmp_path)) == {"fit": {"lr": 0.05}}
    assert scalar_curves(str(tmp_path / "scalars")) == {"loss/train": [(1, 1.0)], "loss/valid": [(1, 2.0)]}
    assert read_scalars(str(tmp_path / "scalars")) == {("loss_train", "loss"): [(1, 1.0)],
                                                       ("loss_valid", "loss"): [(1, 2.0)]}
    with SummaryWriter(str(tmp_path / "history")) as writer:
        log_history(writer, {"epoch": [1, 2], "train_loss": [0.5, 0.25], "other": [1, 2]})
    assert scalar_curves(str(tmp_path / "history")) == {"loss/train": [(1, 0.5), (2, 0.25)]}


# ------------------------------------------------------------------ a real TensorBoard server, loopback only
def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


@pytest.fixture
def reference_runs(tmp_path_factory):
    """Execute the reference notebook top to bottom (quick mode); returns the `runs` directory it wrote."""
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    workdir = tmp_path_factory.mktemp("tensorboard-notebook")
    nb = nbformat.read(os.path.join(ROOT, "source", A, "tensorboard.ipynb"), as_version=4)
    env_keys = {"COURSE_QUICK": "1", "PYTHONPATH": ROOT, "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}
    saved = {key: os.environ.get(key) for key in env_keys}
    os.environ.update(env_keys)
    try:
        client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                         resources={"metadata": {"path": str(workdir)}})
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return workdir / "runs"


def test_reference_notebook_runs_and_tensorboard_serves_its_runs(reference_runs, tmp_path):
    """The reference notebook runs top to bottom (quick mode) and writes its runs; a real `tensorboard`
    on 127.0.0.1 serves the logged scalars over its HTTP API, equal to the event files' values."""
    from course.tensorboard import read_hparams, read_scalars, scalar_curves

    assert sorted(os.listdir(reference_runs / "compare")) == ["lr_0.003", "lr_0.03"]
    curves = scalar_curves(str(reference_runs / "compare" / "lr_0.03"))
    assert [step for step, _ in curves["loss/valid"]] == [1, 2]
    assert read_hparams(str(reference_runs / "compare")) == {"lr_0.003": {"lr": 0.003}, "lr_0.03": {"lr": 0.03}}

    executable = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    if not os.path.exists(executable):
        pytest.skip(f"no tensorboard executable next to {sys.executable}")
    expected = {(os.path.join("compare", run) if run != "." else "compare", tag): points
                for (run, tag), points in read_scalars(str(reference_runs / "compare")).items()}
    port = _free_port()
    log = open(tmp_path / "tensorboard.log", "wb")
    server = subprocess.Popen(
        [executable, "--logdir", str(reference_runs), "--host", "127.0.0.1", "--port", str(port),
         "--reload_interval", "1"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(tmp_path)})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        tags = None
        while time.monotonic() < deadline:
            if server.poll() is not None:
                log.flush()
                pytest.skip(f"tensorboard exited with {server.returncode} before serving: "
                            f"{(tmp_path / 'tensorboard.log').read_text()[-800:]}")
            try:
                tags = _get_json(f"{base}/data/plugin/scalars/tags")
            except OSError:
                tags = None
            if tags and all(tags.get(run, {}).get(tag) is not None for run, tag in expected):
                break
            time.sleep(0.5)
        if tags is None:
            pytest.skip(f"tensorboard did not answer on {base} within 60 s")
        for run, tag in [("compare/lr_0.003", "loss/train"), ("compare/lr_0.03", "loss/valid"),
                         ("compare/lr_0.03", "hparam/valid_loss")]:
            assert tag in tags.get(run, {}), (run, tag, tags)
        for (run, tag), points in expected.items():
            query = urllib.parse.urlencode({"run": run, "tag": tag})
            served = _get_json(f"{base}/data/plugin/scalars/scalars?{query}")   # [[wall_time, step, value]]
            assert [step for _, step, _ in served] == [step for step, _ in points], (run, tag)
            for (_, _, value), (_, want) in zip(served, points):
                assert math.isfinite(value) and math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-9), (run, tag)
    finally:
        stop(server)
        log.close()
