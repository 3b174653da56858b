"""The probes of mnist_cnn: they run IN the student's process, beside the student's code.

Each is sent as its own source and called as ``probe(ns, *args)``: self-contained (it imports what it uses),
it calls the student's code and returns data, and decides nothing (the judge does, from what comes back).
"""


def probe_cnn_structure(ns, weights, X_table, X, large):
    """Net(): its named parameters, every dropout call's input and output in one forward pass per mode,
    outputs in eval and train mode, outputs with the judge's fixed weights (also for X_table scaled by
    ``large``, where the scores lie far apart), and a forward and backward pass
    on the meta device (its output and the parameters' gradients as meta tensors)."""
    import torch
    import torch.nn.functional as F
    Net = ns.require("Net", kind="class")
    torch.manual_seed(0)
    net = Net()
    out = {"type": type(net).__name__}
    try:
        named = list(net.named_parameters())
    except AttributeError as exc:            # judged in the judging process
        out["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return out
    out["named"] = [(name, p.detach().clone()) for name, p in named]

    names = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]
    saved = {name: getattr(F, name) for name in names if hasattr(F, name)}
    calls = []

    def recording(name, fn):
        def recorded(*args, **kwargs):
            input = args[0] if args else kwargs.get("input")
            before = input.detach().clone() if isinstance(input, torch.Tensor) else None
            result = fn(*args, **kwargs)
            calls.append((name, before, result.detach().clone() if isinstance(result, torch.Tensor) else None))
            return result
        return recorded

    try:
        for name, fn in saved.items():
            setattr(F, name, recording(name, fn))
        net.eval()
        with torch.no_grad():
            calls.clear()
            out["eval_1"] = net(X)
            out["eval_drops"] = list(calls)
            out["eval_2"] = net(X)
            out["single"] = net(X[:1])
            out["rows"] = torch.cat([net(X[i:i + 1]) for i in range(len(X))])
        net.train()
        with torch.no_grad():
            torch.manual_seed(2)
            calls.clear()
            out["train_1"] = net(X)
            out["train_drops"] = list(calls)
            out["train_2"] = net(X)
    finally:
        for name, fn in saved.items():
            setattr(F, name, fn)

    by_shape = {tuple(w.shape): w for w in weights}
    torch.manual_seed(0)
    fixed = Net()
    with torch.no_grad():
        for p in fixed.parameters():
            if tuple(p.shape) in by_shape:
                p.copy_(by_shape[tuple(p.shape)])
        fixed.eval()
        out["table"] = fixed(X_table)
        out["table_large"] = fixed(X_table * large)
    try:
        meta = Net().to("meta")
        meta.train()
        y_hat = meta(torch.randn(3, 1, 28, 28, device="meta"))
        torch.nn.functional.nll_loss(y_hat, torch.zeros(3, dtype=torch.long, device="meta")).backward()
        out["meta"] = {"output": y_hat.detach(),
                       "grads": [p.grad.detach() if p.grad is not None else None for p in meta.parameters()]}
    except Exception as exc:  # reported to the student as a device problem
        out["meta"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return out


def probe_optimizer(ns, steps):
    """make_optimizer(Net()): its type's name and learning rates, and Net's named parameters before and after
    each of its step() calls, with the judge's gradients (``steps``: one {name: gradient} per step) put in
    each parameter's .grad before the step."""
    import torch
    Net = ns.require("Net", kind="class")
    make_optimizer = ns.require("make_optimizer")
    torch.manual_seed(0)
    net = Net()
    optimizer = make_optimizer(net)
    groups = getattr(optimizer, "param_groups", None)
    out = {"type": type(optimizer).__name__, "lrs": None, "after": []}
    if isinstance(groups, list):
        out["lrs"] = [float(group["lr"]) if isinstance(group.get("lr"), (int, float)) else repr(group.get("lr"))
                      for group in groups if isinstance(group, dict)]
    params = dict(net.named_parameters())
    out["before"] = {name: p.detach().clone() for name, p in params.items()}
    try:
        for grads in steps:
            for name, p in params.items():
                p.grad = grads[name].clone() if name in grads else None
            optimizer.step()
            out["after"].append({name: p.detach().clone() for name, p in params.items()})
    except Exception as exc:                 # judged in the judging process
        out["step_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return out


def probe_cnn_training(ns, X_train, y_train, X_heldout, batch_size, seed, mean, std):
    """One epoch of a correct loop on the student's Net and make_optimizer; held-out predictions.

    X_train: (n, 28, 28) uint8 with y_train (n,) int64; X_heldout: (m, 1, 28, 28) float32, normalised.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset
    Net = ns.require("Net", kind="class")
    make_optimizer = ns.require("make_optimizer")

    Xtr = ((X_train.float() / 255 - mean) / std).unsqueeze(1)
    torch.manual_seed(seed)
    net = Net()
    optimizer = make_optimizer(net)
    loader = DataLoader(TensorDataset(Xtr, y_train), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    net.train()
    for X, y in loader:
        optimizer.zero_grad()
        F.nll_loss(net(X), y).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(X_heldout[i:i + 500]).argmax(dim=1) for i in range(0, len(X_heldout), 500)])
        log_probs = net(Xtr[:1000])
        loss = float(-log_probs.gather(1, y_train[:1000].reshape(-1, 1)).mean())
    return {"pred": pred, "train_loss": loss}


def probe_train(ns, state, X, y, log_interval, epoch):
    """train() for one epoch of the judge's X, y (batches of 8, last one smaller, not shuffled) on a small
    recording model in eval mode, with SGD(lr=0.1). Returns the input shapes and graph roots of its forward
    calls, what it printed, what it returned, and the model's state (parameters and running statistics)."""
    import contextlib
    import io
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from autograder.sandbox.inside.probing import recording_net, typed
    train = ns.require("train")

    net = recording_net(state)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=False)
    net.eval()                                     # train() must switch to train mode itself
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = train(net, torch.device("cpu"), loader, torch.optim.SGD(net.parameters(), lr=0.1), epoch,
                       log_interval)
    lines = [line for line in printed.getvalue().splitlines() if line.strip()]
    return {"shapes": net.shapes, "graphs": net.graphs, "lines": lines[:20], "n_lines": len(lines),
            "result": typed(result), "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}


def probe_test(ns, state, X, y):
    """test() on the judge's X, y in batches of 8 (the last smaller) with a small recording model left in
    train mode. Returns the input shapes and graph roots of its forward calls, the number of lines printed,
    what it returned, and the model's state afterwards (parameters and running statistics)."""
    import contextlib
    import io
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from autograder.sandbox.inside.probing import recording_net, typed
    test = ns.require("test")

    net = recording_net(state)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=False)
    net.train()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = test(net, torch.device("cpu"), loader)
    returned = {"type": type(result).__name__, "items": None}
    if isinstance(result, (tuple, list)):
        returned["items"] = [typed(value) for value in result]
    return {"shapes": net.shapes, "graphs": net.graphs, "result": returned,
            "n_lines": len([line for line in printed.getvalue().splitlines() if line.strip()]),
            "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}


def probe_on_meta(ns, which):
    """Run ``which`` ("train", "test" or "predict_image") with the model on the meta device.

    Returns None, or the error's text. Meta tensors hold no values: while this runs, ``item``,
    ``float()``, ``int()`` and ``.cpu()`` of a meta tensor give zeros.
    """
    import contextlib
    import io
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    fn = ns.require(which)
    names = ("item", "__float__", "__int__", "cpu")
    saved = {name: torch.Tensor.__dict__.get(name) for name in names}
    originals = {name: getattr(torch.Tensor, name) for name in names}

    def zero(value):
        return 0 if not (value.is_floating_point() or value.is_complex()) else 0.0

    patches = {
        "item": lambda self: zero(self) if self.is_meta else originals["item"](self),
        "__float__": lambda self: 0.0 if self.is_meta else originals["__float__"](self),
        "__int__": lambda self: 0 if self.is_meta else originals["__int__"](self),
        "cpu": lambda self, *a, **k: (torch.zeros(self.shape, dtype=self.dtype) if self.is_meta
                                      else originals["cpu"](self, *a, **k)),
    }
    gen = torch.Generator().manual_seed(9)
    X, y = torch.randn(20, 1, 28, 28, generator=gen), torch.randint(0, 10, (20,), generator=gen)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=False)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10), torch.nn.LogSoftmax(dim=1))
    net = net.to("meta")
    device = torch.device("meta")
    try:
        for name, patch in patches.items():
            setattr(torch.Tensor, name, patch)
        with contextlib.redirect_stdout(io.StringIO()):
            if which == "train":
                fn(net, device, loader, torch.optim.SGD(net.parameters(), lr=0.1), 1, 2)
            elif which == "test":
                fn(net, device, loader)
            else:
                fn(net, X[0])
        return None
    except Exception as exc:  # judged in the judging process
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        for name, value in saved.items():
            if value is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, value)


def probe_predict(ns, state, images):
    """predict_image on each of the judge's images with a small recording model put in train mode before each
    call. Returns what it returned, the input shapes and graph roots of the model's forward calls, and the
    model's state afterwards (parameters and running statistics)."""
    from autograder.sandbox.inside.probing import recording_net, typed
    predict_image = ns.require("predict_image")

    net = recording_net(state)
    got = []
    for image in images:
        net.train()
        got.append(typed(predict_image(net, image)))
    return {"got": got, "shapes": net.shapes, "graphs": net.graphs,
            "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}
