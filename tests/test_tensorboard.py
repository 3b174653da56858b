"""02-tensorboard: reference full marks, release zero, the mistake bank, correct variants, and the reference
notebook's event files read back through a real TensorBoard server."""
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

from tests.notebooks import ROOT, edit_solution, grade, release_notebook, replace_solution, source_notebook

A = "02-tensorboard"


@pytest.fixture(scope="module")
def reference():
    return source_notebook(A)


def test_reference_gets_full_marks(reference):
    report = grade(reference)
    assert report.error is None
    assert report.failed_tasks() == set(), {t.id: t.output for t in report.tasks}
    assert report.score == report.max_score == 10


def test_untouched_release_gets_zero_on_every_task():
    report = grade(release_notebook(A))
    assert report.error is None
    assert report.score == 0
    assert report.failed_tasks() == {t.id for t in report.tasks}
    assert "not implemented yet" in report.by_task["read_scalars"].output


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
        losses = []
        for X, y in train_iter:
            loss = loss_fn(net(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        train_loss = sum(losses) / len(losses)
        writer.add_scalar("loss/train", train_loss, global_step=epoch)
        history["epoch"].append(epoch)
        history["train_loss"].append(train_loss)
        if valid_iter is not None:
            with torch.no_grad():
                valid_losses = [loss_fn(net(X), y).item() for X, y in valid_iter]
            valid_loss = sum(valid_losses) / len(valid_losses)
            writer.add_scalar("loss/valid", valid_loss, global_step=epoch)
            history.setdefault("valid_loss", []).append(valid_loss)
    return history
'''

LAST_BATCH_LOGGED = DIRECT_LOOP.replace("train_loss = sum(losses) / len(losses)", "train_loss = losses[-1]")

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


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_mistake_loses_exactly_its_task(reference, name):
    task, how = MISTAKES[name]
    report = grade(_apply(reference, task, how))
    assert report.failed_tasks() == {task}, {t.id: t.output for t in report.tasks}
    assert report.by_task[task].output.strip()
    if name in MESSAGE_HINTS:
        assert MESSAGE_HINTS[name] in report.by_task[task].output, report.by_task[task].output


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
    from course.tensorboard import (TensorBoardCallback, log_history, read_hparams, read_histograms,
                                    read_scalars, scalar_curves)
    from course.training import fit

    X, y = make_regression(torch.tensor([2.0, -3.4]), 4.2, 100, seed=0)
    batches = [(X[i:i + 20], y[i:i + 20]) for i in range(0, 100, 20)]
    torch.manual_seed(0)
    net = nn.Linear(2, 1)
    with SummaryWriter(str(tmp_path / "fit")) as writer:
        history = fit(net, nn.MSELoss(), torch.optim.SGD(net.parameters(), lr=0.05), batches, 3,
                      valid_iter=batches, callbacks=[TensorBoardCallback(writer, net)], progress=False)
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
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
