"""The probes of tensorboard: they run IN the student's process, beside the student's code.

Each is sent as its own source and called as ``probe(ns, *args)``: self-contained (it imports what it uses),
it calls the student's code and returns data, and decides nothing (the judge does, from what comes back).
"""


def probe_log_history(ns, history, caller_tag):
    """Student's log_history on a fresh writer, which the caller then uses once more and closes; returns the
    run directory's files and the names of the files there before the call."""
    import os
    import tempfile

    from torch.utils.tensorboard import SummaryWriter
    from autograder.sandbox.inside.probing import files_as_data

    log_history = ns.require("log_history")
    run_dir = tempfile.mkdtemp(prefix="run-")
    writer = SummaryWriter(run_dir)
    first = sorted(os.listdir(run_dir))
    try:
        log_history(writer, history)
        writer.add_scalar(caller_tag, 1.0, global_step=0)
    finally:
        writer.close()
    files = files_as_data(run_dir)
    return {"files": files, "first": first}


def probe_log_parameters(ns, stages):
    """Student's log_parameters at steps 0, 1, 2 with the given parameters and gradients; returns files."""
    import tempfile
    import traceback

    import torch
    from torch import nn
    from torch.utils.tensorboard import SummaryWriter
    from autograder.sandbox.inside.probing import files_as_data

    log_parameters = ns.require("log_parameters")
    net = nn.Sequential(nn.Conv2d(1, 2, 2), nn.Flatten(), nn.Linear(8, 2))
    run_dir = tempfile.mkdtemp(prefix="run-")
    writer = SummaryWriter(run_dir)
    try:
        for step, (params, grads) in enumerate(stages):
            with torch.no_grad():
                for key, tensor in net.named_parameters():
                    tensor.copy_(params[key])
                    tensor.grad = None if grads is None else grads[key].clone()
            try:
                log_parameters(writer, net, step)
            except NotImplementedError as exc:
                frames = traceback.extract_tb(exc.__traceback__)
                if grads is None and frames and "tensorboard" in frames[-1].filename:
                    return {"none_grad_error": f"{type(exc).__name__}: {str(exc)[:200]}", "step": step}
                raise
    finally:
        writer.close()
    files = files_as_data(run_dir)
    return {"files": files}


def probe_train_logged(ns, X_train, y_train, X_valid, y_valid, state, lr, momentum, num_epochs, batch_size,
                       caller_tag, huber_delta, with_valid=True):
    """Student's train_logged on a fresh writer (used once more by the caller afterwards, then closed), with a
    Huber loss function (not the mean squared error a loop might compute on its own) that counts live loss
    graphs, on BatchNorm1d(2) then Linear(2, 1): batch normalisation
    computes differently in training and in eval mode, so the modes show in the losses and the state."""
    import os
    import tempfile

    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.tensorboard import SummaryWriter
    from autograder.sandbox.inside.probing import files_as_data, graph_counter

    live, mark = graph_counter()           # how many graphs the loop keeps alive at once

    def loss_fn(y_hat, y):
        return mark(F.huber_loss(y_hat, y, delta=huber_delta))

    train_iter = [(X_train[i:i + batch_size], y_train[i:i + batch_size]) for i in range(0, len(X_train), batch_size)]
    valid_iter = [(X_valid[i:i + batch_size], y_valid[i:i + batch_size]) for i in range(0, len(X_valid), batch_size)]
    train_logged = ns.require("train_logged")
    net = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 1))
    net.load_state_dict(state)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    run_dir = tempfile.mkdtemp(prefix="run-")
    writer = SummaryWriter(run_dir)
    first = sorted(os.listdir(run_dir))
    try:
        history = train_logged(net, loss_fn, optimizer, train_iter, num_epochs, writer,
                               valid_iter=valid_iter if with_valid else None)
        writer.add_scalar(caller_tag, 1.0, global_step=0)
    finally:
        writer.close()

    def number(value):
        if isinstance(value, torch.Tensor):
            return {"type": "tensor"}
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if isinstance(value, float) else int(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            return {"type": type(value).__name__}

    if isinstance(history, dict):
        returned = {str(k): ([number(v) for v in vals] if isinstance(vals, (list, tuple)) else
                             {"type": type(vals).__name__}) for k, vals in history.items()}
    else:
        returned = {"__type__": type(history).__name__}
    files = files_as_data(run_dir)
    state_after = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return {"files": files, "first": first, "history": returned, "max_live": live["max"], "state": state_after}


def probe_compare_lrs(ns, X_train, y_train, X_valid, y_valid, state, lrs, num_epochs, batch_size):
    """Student's compare_lrs, with correct stand-ins for the notebook's train_logged, log_history and
    log_parameters; files are read as soon as it returns, with the number of the process's threads (as the
    kernel lists them) before and after the call: an open SummaryWriter keeps a thread."""
    import os
    import tempfile

    import torch
    from torch import nn
    from torch.utils.tensorboard import SummaryWriter

    import time
    from autograder.sandbox.inside.probing import files_as_data, stand_ins

    listdir, sleep, monotonic = os.listdir, time.sleep, time.monotonic   # bound before the student's code runs
    x = torch.randn(256, 256, requires_grad=True)
    (x @ x).sum().backward()     # torch's worker threads and TensorBoard's started before counting
    SummaryWriter(tempfile.mkdtemp(prefix="settle-")).close()
    threads_before = len(listdir("/proc/self/task"))

    def make_net():
        net = nn.Linear(2, 1)
        net.load_state_dict(state)
        return net

    # The grader's versions of the other tasks' functions, so that this task is judged on its own. Each is
    # deliberately not its task's answer, in a way that changes nothing for nn.Linear runs from fit's
    # histories: curves at steps 1, 2, ... (not the history's epochs), no gradient histograms, validation
    # in training mode with gradients on.
    def log_history(writer, history):
        for step, value in enumerate(history["train_loss"], start=1):
            writer.add_scalar("loss/train", value, step)
        for step, value in enumerate(history.get("valid_loss", []), start=1):
            writer.add_scalar("loss/valid", value, step)

    def log_parameters(writer, net, step):
        for key, tensor in net.state_dict().items():
            writer.add_histogram("weights/" + key, tensor, step)

    def train_logged(net, loss_fn, optimizer, train_iter, num_epochs, writer, valid_iter=None):
        history = {"epoch": [], "train_loss": []}
        net.train()
        for epoch in range(1, num_epochs + 1):
            sums = []
            for X, y in train_iter:
                loss = loss_fn(net(X), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                sums.append((loss.item() * len(X), len(X)))
            history["epoch"].append(epoch)
            history["train_loss"].append(sum(a for a, _ in sums) / sum(n for _, n in sums))
            if valid_iter is not None:
                sums = [(loss_fn(net(X), y).item() * len(X), len(X)) for X, y in valid_iter]
                history.setdefault("valid_loss", []).append(sum(a for a, _ in sums) / sum(n for _, n in sums))
        log_history(writer, history)
        return history

    compare_lrs = ns.require("compare_lrs")
    train_iter = [(X_train[i:i + batch_size], y_train[i:i + batch_size]) for i in range(0, len(X_train), batch_size)]
    valid_iter = [(X_valid[i:i + batch_size], y_valid[i:i + batch_size]) for i in range(0, len(X_valid), batch_size)]
    log_dir = tempfile.mkdtemp(prefix="runs-")
    replacements = {"train_logged": train_logged, "log_history": log_history, "log_parameters": log_parameters}
    with stand_ins(ns.globals, replacements):
        results = compare_lrs(list(lrs), make_net, nn.MSELoss(), train_iter, valid_iter, num_epochs, log_dir)
    files = files_as_data(log_dir)
    # a joined thread may still be ending in the kernel for a moment: a writer left open never ends
    deadline = monotonic() + 2.0
    while len(listdir("/proc/self/task")) > threads_before and monotonic() < deadline:
        sleep(0.01)
    threads_after = len(listdir("/proc/self/task"))
    if isinstance(results, dict):
        pairs = []
        for key, value in results.items():
            if isinstance(value, torch.Tensor):
                value = float(value.detach().reshape(-1)[0]) if value.numel() == 1 else None
            try:
                pairs.append([float(key), float(value)])
            except (TypeError, ValueError):
                pairs.append([repr(key)[:40], repr(value)[:40]])
        returned = {"pairs": pairs}
    else:
        returned = {"type": type(results).__name__}
    return {"files": files, "results": returned, "threads": [threads_before, threads_after]}


def probe_read_scalars(ns, layout):
    """Write the runs described by ``layout`` here, then return what the student's read_scalars finds: each
    curve's run and tag as returned, and each point as the classes of its two items (their MRO's names) and
    their values as floats."""
    import os
    import tempfile

    from torch.utils.tensorboard import SummaryWriter

    def number(item):
        try:
            return float(item)
        except (TypeError, ValueError):
            return None

    read_scalars = ns.require("read_scalars")
    log_dir = tempfile.mkdtemp(prefix="runs-")
    for run, entries in layout:
        with SummaryWriter(os.path.join(log_dir, run)) as writer:
            for kind, tag, step, value in entries:
                if kind == "scalar":
                    writer.add_scalar(tag, value, global_step=step)
                else:
                    writer.add_scalars(tag, value, global_step=step)
    found = read_scalars(log_dir)
    if not isinstance(found, dict):
        return {"type": type(found).__name__}
    out = []
    for key, points in found.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)):
            return {"bad_key": f"a {type(key).__name__}" if not isinstance(key, tuple) else
                    f"a tuple of {len(key)} item(s), not two strings"}
        run, tag = key
        try:
            pairs = list(points)
        except TypeError:
            return {"bad_points": type(points).__name__}
        checked = []
        for point in pairs:
            if not (isinstance(point, (tuple, list)) and len(point) == 2):
                return {"bad_points": f"{type(point).__name__} of length {len(point)}"
                        if isinstance(point, (tuple, list)) else type(point).__name__}
            checked.append([[kind.__name__ for kind in type(item).__mro__] for item in point]
                           + [number(item) for item in point])
        out.append([run, tag, checked])
    return {"curves": out}
