"""The probes of mlp_gpu: they run IN the student's process, beside the student's code.

Each is sent as its own source and called as ``probe(ns, *args)``: self-contained (it imports what it uses),
it calls the student's code and returns data, and decides nothing (the judge does, from what comes back).
"""


def probe_mlp_structure(ns, seed, extreme_scores, extreme_log_probs, extreme_labels, large):
    """Shapes, parameters, per-image independence, nonlinearity, the loss and its gradient (also on a batch of
    one image and on the judge's extreme scores and their log-probabilities), the output for inputs scaled by
    ``large``, a run on meta."""
    import copy
    import torch
    MnistModel = ns.require("MnistModel", kind="class")
    loss_fn = ns.require("loss_fn", kind="loss function")

    def shapes(net):
        """(In the student's process.) The shapes of net.parameters(), or what calling it raised."""
        try:
            return [tuple(p.shape) for p in net.parameters()]
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}

    out = {}
    for key, args in (("32", (784, 32, 10)), ("64", (784, 64, 10)), ("small", (196, 20, 4))):
        torch.manual_seed(seed)
        out[f"params_{key}"] = shapes(MnistModel(*args))
    torch.manual_seed(seed)
    out["params_default"] = shapes(MnistModel())
    torch.manual_seed(seed)
    small = MnistModel(196, 20, 4)
    gen = torch.Generator().manual_seed(seed + 1)
    try:
        with torch.no_grad():
            out["small_y_hat"] = small(torch.randn(5, 196, generator=gen))
    except Exception as exc:
        out["small_y_hat"] = None
        out["small_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    torch.manual_seed(seed)
    net = MnistModel(784, 32, 10)
    X = torch.randn(6, 1, 28, 28, generator=gen)
    with torch.no_grad():
        out["y_hat"] = net(X)
        out["again"] = net(X)
        out["single"] = net(X[:1])
        out["rows"] = torch.cat([net(X[i:i + 1]) for i in range(6)])
        out["mid"] = net((X[:3] + X[3:]) / 2)
        out["ends"] = (net(X[:3]) + net(X[3:])) / 2
        out["flat"] = net(X.reshape(6, 784))
    # The loss on a batch of 6 and of 9, with the model's own outputs; its gradient with respect to them.
    X9 = torch.randn(9, 1, 28, 28, generator=gen)
    y6, y9 = torch.tensor([0, 1, 2, 3, 4, 5]), torch.randint(0, 10, (9,), generator=gen)
    loss = loss_fn(net(X), y6)
    out["loss"] = loss.detach() if isinstance(loss, torch.Tensor) else loss
    with torch.no_grad():
        out["y_hat9"] = net(X9)
    scores = out["y_hat9"].clone().requires_grad_(True)
    loss9 = loss_fn(scores, y9)
    out["loss9"] = loss9.detach() if isinstance(loss9, torch.Tensor) else loss9
    try:
        loss9.backward()
    except Exception as exc:
        out["loss9_backward_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    out["loss9_grad"] = scores.grad
    out["y9"] = y9
    # The loss on a batch of one image (a squeeze of y_hat or y breaks it), with its gradient.
    scores1 = net(X[:1]).detach().requires_grad_(True)
    out["y_hat1"] = scores1.detach().clone()
    try:
        loss1 = loss_fn(scores1, y6[:1])
        out["loss1"] = loss1.detach() if isinstance(loss1, torch.Tensor) else loss1
        loss1.backward()
        out["loss1_grad"] = scores1.grad
    except Exception as exc:
        out["loss1_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    # The loss on the judge's extreme scores (entries of +-1000) and on their log-probabilities, with gradients.
    for key, values in (("scores", extreme_scores), ("log_probs", extreme_log_probs)):
        t = values.clone().requires_grad_(True)
        try:
            value = loss_fn(t, extreme_labels)
            value.backward()
            out[f"extreme_{key}"] = {"loss": value.detach(), "grad": t.grad}
        except Exception as exc:
            out[f"extreme_{key}"] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    # The model's output for inputs of large magnitude (its scores far apart).
    with torch.no_grad():
        out["y_hat_large"] = net(X * large)
    # Second differences along random directions, in float64: zero for a piecewise-linear (ReLU) net.
    try:
        net64 = copy.deepcopy(net).double()
        X64 = torch.randn(8, 784, generator=gen, dtype=torch.float64)
        d = torch.randn(8, 784, generator=gen, dtype=torch.float64)
        d = d / d.norm(dim=1, keepdim=True)
        eps = 1e-2
        with torch.no_grad():
            out["line"] = [net64(X64 - eps * d), net64(X64), net64(X64 + eps * d)]
    except Exception:  # a model that cannot run in float64 is not judged on this
        out["line"] = None
    try:
        meta = MnistModel(784, 32, 10).to("meta")
        y_hat = meta(torch.randn(4, 1, 28, 28, device="meta"))
        loss = loss_fn(y_hat, torch.zeros(4, dtype=torch.long, device="meta"))
        loss.backward()
        out["meta"] = {"y_hat": y_hat.detach(), "grads": [p.grad for p in meta.parameters()]}
    except Exception as exc:  # reported to the student as a device problem
        out["meta"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return out


def probe_mlp_training(ns, X_train, y_train, X_test, hidden, lr, num_epochs, batch_size, seed, mean, std):
    """Train the student's model with a plain SGD loop and the student's loss_fn; predict held-out images.

    X_train: (N, 28, 28) uint8; X_test: (M, 1, 28, 28) float32, already normalised (and disguised).
    """
    import torch
    MnistModel = ns.require("MnistModel", kind="class")
    loss_fn = ns.require("loss_fn", kind="loss function")
    Xtr = ((X_train.float() / 255 - mean) / std).unsqueeze(1)
    torch.manual_seed(seed)
    net = MnistModel(784, hidden, 10)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(num_epochs):
        net.train()
        order = torch.randperm(len(Xtr), generator=gen)
        for i in range(0, len(Xtr), batch_size):
            idx = order[i:i + batch_size]
            loss = loss_fn(net(Xtr[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(X_test[i:i + 500]).argmax(dim=1) for i in range(0, len(X_test), 500)])
        loss = float(loss_fn(net(Xtr[:2000]), y_train[:2000]))
    return {"pred": pred, "train_loss": loss}


def probe_default_device(ns):
    """get_default_device() with torch.cuda.is_available reporting True, then False: what it returns."""
    import torch
    get_default_device = ns.require("get_default_device")
    original = torch.cuda.is_available
    result = {}
    try:
        for flag in (True, False):
            torch.cuda.is_available = lambda flag=flag: flag
            device = get_default_device()
            # torch.device and str travel as they are; anything else as its type name and text
            result[str(flag)] = device if isinstance(device, (str, torch.device)) else \
                {"type": type(device).__name__, "text": str(device)[:100]}
    finally:
        torch.cuda.is_available = original
    return result


def probe_to_device(ns):
    """to_device on a tensor, a list, a tuple and a nested list, to the meta device and back to the CPU."""
    import torch
    to_device = ns.require("to_device")
    meta = torch.device("meta")
    X, y = torch.randn(3, 2), torch.arange(3)

    def describe(value):
        if isinstance(value, torch.Tensor):
            return {"type": "tensor", "device": value.device.type, "shape": tuple(value.shape)}
        if isinstance(value, (list, tuple)):
            return {"type": "list" if isinstance(value, list) else "tuple",
                    "items": [describe(v) for v in value]}
        return {"type": "none" if value is None else type(value).__name__}

    out = {}
    for key, data in (("one", X), ("pair", [X, y]), ("tuple", (X, y)), ("nested", [[X, y], X])):
        try:
            out[key] = describe(to_device(data, meta))
        except Exception as exc:
            out[key] = {"type": "error", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    back = to_device(X, torch.device("cpu"))
    out.update({"back": back if isinstance(back, torch.Tensor) else None, "X": X})
    return out


def probe_device_loader(ns):
    """Iterate a DeviceDataLoader to the meta device twice; train a small model on its batches."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    DeviceDataLoader = ns.require("DeviceDataLoader", kind="class")
    dl = DataLoader(TensorDataset(torch.randn(10, 1, 28, 28), torch.arange(10) % 10), batch_size=4)
    loader = DeviceDataLoader(dl, torch.device("meta"))
    out = {"len": len(loader), "passes": []}
    for _ in range(2):
        batches = []
        for batch in loader:
            batches.append([(tuple(t.shape), t.device.type) if isinstance(t, torch.Tensor) else None
                            for t in batch])
        out["passes"].append(batches)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).to("meta")
    try:
        for X, y in loader:
            torch.nn.functional.cross_entropy(net(X), y).backward()
        out["grads"] = [p.grad for p in net.parameters()]
    except Exception as exc:
        out["train_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return out


def probe_loss_batch(ns, start, X, y, scores, labels, lr):
    """accuracy on known scores; loss_batch without and with an SGD optimiser (lr), with a margin loss and a
    metric, from the judge's parameters ``start``: what it returns and the parameters after."""
    import torch
    import torch.nn.functional as F
    from autograder.sandbox.inside.probing import as_data as raw
    accuracy = ns.require("accuracy")
    loss_batch = ns.require("loss_batch")

    def returned(result):
        items = [raw(r) for r in result] if isinstance(result, (tuple, list)) else None
        graphs = ([type(r.grad_fn).__name__ if isinstance(r, torch.Tensor) and r.grad_fn is not None else None
                   for r in result] if items is not None else None)          # the graph a returned tensor keeps
        return {"type": type(result).__name__, "items": items, "graphs": graphs}

    out = {"acc_logits": raw(accuracy(scores, labels)),
           "acc_logprobs": raw(accuracy(F.log_softmax(scores, dim=1), labels)),
           "acc_probs": raw(accuracy(F.softmax(scores[:5], dim=1), labels[:5])),
           "acc_single": raw(accuracy(scores[3:4], labels[3:4]))}

    def margin_loss(y_hat, y):
        return F.multi_margin_loss(y_hat, y)

    def true_class_prob(y_hat, y):
        return y_hat.softmax(dim=1)[torch.arange(len(y)), y].mean()

    net = torch.nn.Linear(4, 3)
    net.load_state_dict(start)
    out["plain"] = returned(loss_batch(net, margin_loss, X, y))
    out["with_metric"] = returned(loss_batch(net, margin_loss, X, y, metric=true_class_prob))
    out["after_plain"] = {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.load_state_dict(start)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    out["steps"] = [returned(loss_batch(net, margin_loss, X, y, optimizer, true_class_prob)) for _ in range(2)]
    out["after_steps"] = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return out


def probe_evaluate(ns, start, batches, table, p):
    """evaluate twice (with and without a metric) on the judge's batches, from train mode, with a model whose
    linear layer holds the judge's ``start`` and is followed by dropout(p); it keeps every input and output.

    loss_batch is replaced for the call by a stand-in that runs the model on the batch and returns the judge's
    numbers for that batch as 0-dim tensors, as loss_batch does (``table``; NaN for a loss or metric other than
    the ones evaluate is given).
    Returned: evaluate's results, every (input, output) of the model, and the weight's gradient after a
    backward through each output (None where the output has no graph).
    """
    import torch
    import torch.nn.functional as F
    from autograder.sandbox.inside.probing import as_data as raw
    evaluate = ns.require("evaluate")

    class Watched(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)
            self.dropout = torch.nn.Dropout(p)
            self.seen = []

        def forward(self, X):
            out = self.dropout(self.linear(X))
            self.seen.append((X, out))
            return out

    def margin_loss(y_hat, y):
        return F.multi_margin_loss(y_hat, y)

    def true_class_prob(y_hat, y):
        return y_hat.softmax(dim=1)[torch.arange(len(y)), y].mean()

    nan = float("nan")

    def table_loss_batch(net, loss_fn, X, y, optimizer=None, metric=None):
        net(X)
        rows = [row for (a, _), row in zip(batches, table) if a.shape == X.shape and torch.equal(a, X)]
        row = rows[0] if rows else {"loss": nan, "n": len(X), "metric": nan}
        given = None if metric is None else torch.tensor(row["metric"] if metric is true_class_prob else nan)
        return torch.tensor(row["loss"] if loss_fn is margin_loss else nan), row["n"], given

    def plain(result):
        if not isinstance(result, dict):
            return {"__type__": type(result).__name__}
        return {k: raw(v) for k, v in result.items() if isinstance(k, str)}

    torch.manual_seed(0)                                   # the dropout masks, should the model train
    net = Watched()
    net.linear.load_state_dict(start)
    scope = evaluate.__globals__
    saved = scope.get("loss_batch", None)
    had = "loss_batch" in scope
    scope["loss_batch"] = table_loss_batch
    try:
        net.train()
        result = evaluate(net, margin_loss, batches, true_class_prob)
        net.train()
        result_none = evaluate(net, margin_loss, batches)
    finally:
        if had:
            scope["loss_batch"] = saved
        else:
            scope.pop("loss_batch", None)
    grads = []
    for _, out in net.seen:
        net.zero_grad(set_to_none=True)
        try:
            out.sum().backward()
        except RuntimeError:                               # no graph: no gradient
            pass
        grads.append(net.linear.weight.grad)
    return {"result": plain(result), "result_none": plain(result_none),
            "seen": [(X.detach(), out.detach()) for X, out in net.seen], "grads": grads}


def probe_fit(ns, start, train_batches, valid_batches, train_table, valid_table, lr, num_epochs):
    """fit three times (with validation, without, with progress=True) on a Linear(4, 3) + BatchNorm1d(3)
    model that starts from the judge's ``start`` in eval mode, with SGD(lr): the histories and the model's
    state_dict after each (batch-norm statistics included).

    loss_batch and evaluate are replaced for the call by stand-ins: loss_batch runs the model and the optimiser
    step it is given and returns the judge's numbers for its k-th call as 0-dim tensors (``train_table``);
    evaluate puts the model in eval mode and returns the judge's numbers for its k-th call as Python floats
    (``valid_table``); both give NaN for a loss or metric other than the ones fit is given.
    """
    import torch
    import torch.nn.functional as F
    from autograder.sandbox.inside.probing import as_data as raw
    fit = ns.require("fit")

    def margin_loss(y_hat, y):
        return F.multi_margin_loss(y_hat, y)

    def true_class_prob(y_hat, y):
        return y_hat.softmax(dim=1)[torch.arange(len(y)), y].mean()

    nan = float("nan")

    def stand_ins():
        steps, evaluations = iter(train_table), iter(valid_table)

        def table_loss_batch(net, loss_fn, X, y, optimizer=None, metric=None):
            row = next(steps, None) or {"loss": nan, "n": len(X)}
            objective = loss_fn(net(X), y)
            step = optimizer is not None
            if step:
                optimizer.zero_grad()
                objective.backward()
                optimizer.step()
            loss = torch.tensor(row["loss"] if loss_fn is margin_loss else nan)
            return loss, row["n"], (None if metric is None else torch.tensor(nan))

        def table_evaluate(net, loss_fn, data_iter, metric=None):
            net.eval()                                     # left in eval mode, as evaluate may: fit switches back
            count = sum(len(X) for X, _ in data_iter)
            row = next(evaluations, None) or {"loss": nan, "metric": nan}
            given = None if metric is None else row["metric"] if metric is true_class_prob else nan
            return {"loss": row["loss"] if loss_fn is margin_loss else nan, "metric": given, "n": count}

        return table_loss_batch, table_evaluate

    def history_data(history):
        if not isinstance(history, dict):
            return {"__type__": type(history).__name__}
        return {key: {"type": type(values).__name__,
                      "items": [raw(v) for v in values] if isinstance(values, (list, tuple)) else None}
                for key, values in history.items() if isinstance(key, str)}

    def model():
        net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
        net.load_state_dict(start)
        net.eval()                                         # fit must switch to train mode itself
        return net

    scope = fit.__globals__
    saved = {name: scope[name] for name in ("loss_batch", "evaluate") if name in scope}
    runs = {}
    try:
        for name, kwargs in (("main", {"valid_iter": valid_batches, "metric": true_class_prob}),
                             ("no_valid", {}),
                             ("progress", {"valid_iter": valid_batches, "metric": true_class_prob, "progress": True})):
            scope["loss_batch"], scope["evaluate"] = stand_ins()
            net = model()
            optimizer = torch.optim.SGD(net.parameters(), lr=lr)
            if name == "main":                             # its errors reach the student as they are
                history = fit(net, margin_loss, optimizer, train_batches, num_epochs, **kwargs)
            else:
                try:
                    history = fit(net, margin_loss, optimizer, train_batches, num_epochs, **kwargs)
                except Exception as exc:
                    runs[name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
                    continue
            runs[name] = {"history": history_data(history),
                          "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}
    finally:
        for name in ("loss_batch", "evaluate"):
            if name in saved:
                scope[name] = saved[name]
            else:
                scope.pop(name, None)
    return runs


def probe_custom_layer(ns, seed):
    """MyLinear's parameters, forward, gradients, initialisation, device move and use in nn.Sequential."""
    import torch
    MyLinear = ns.require("MyLinear", kind="class")
    out = {}
    torch.manual_seed(seed)
    layer = MyLinear(5, 3)
    try:
        named = dict(layer.named_parameters())
        out["state_keys"] = sorted(layer.state_dict())
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return out
    out["names"] = sorted(named)
    out["shapes"] = {k: tuple(v.shape) for k, v in named.items()}
    # the attributes themselves (a tensor as its values), to tell a plain tensor from a missing attribute
    out["attr"] = {k: (getattr(layer, k).detach().clone() if isinstance(getattr(layer, k, None), torch.Tensor)
                       else None if getattr(layer, k, None) is None else type(getattr(layer, k)).__name__)
                   for k in ("weight", "bias")}
    if "weight" not in named or "bias" not in named:
        return out
    gen = torch.Generator().manual_seed(seed + 7)
    out["cases"] = []
    for (fan_in, fan_out, n) in ((5, 3, 4), (7, 2, 1)):
        torch.manual_seed(seed)
        layer = MyLinear(fan_in, fan_out)
        with torch.no_grad():               # values away from the initialisation, so that weight matters
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen))
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen))
        X = torch.randn(n, fan_in, generator=gen)
        R = torch.randn(n, fan_out, generator=gen)
        y_hat = layer(X)
        case = {"X": X, "R": R, "W": layer.weight.detach().clone(), "b": layer.bias.detach().clone(),
                "y_hat": y_hat.detach() if isinstance(y_hat, torch.Tensor) else None}
        try:
            (y_hat * R).sum().backward()
        except Exception as exc:
            case["backward_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        case["W_grad"], case["b_grad"] = layer.weight.grad, layer.bias.grad
        out["cases"].append(case)
    torch.manual_seed(seed)
    big = MyLinear(1000, 400)
    w, b = big.weight.detach().double(), big.bias.detach()
    out["init"] = {"shape": tuple(w.shape), "mean": w.mean().item(), "std": w.std().item(),
                   "beyond_2std": (w.abs() > 0.02).double().mean().item(), "bias_max": b.abs().max().item()}
    moved = MyLinear(5, 3).to("meta")
    out["moved"] = {k: v.detach() for k, v in moved.named_parameters()}
    seq = torch.nn.Sequential(MyLinear(4, 8), torch.nn.ReLU(), MyLinear(8, 2))
    out["sequential_params"] = sum(p.numel() for p in seq.parameters())
    with torch.no_grad():
        y_hat = seq(torch.randn(3, 4, generator=gen))
    out["sequential_shape"] = tuple(y_hat.shape)
    return out


def probe_init_apply(ns, seed, others):
    """net.apply(init_weights) on nested containers holding Linear layers (with and without bias) and other
    layers that hold the judge's values ``others`` (by module name): the Linear weights' statistics and the
    other layers' state after the call."""
    import torch
    from torch import nn
    init_weights = ns.require("init_weights")
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Sequential(nn.Linear(1000, 400), nn.ReLU(), nn.LayerNorm(400)),
        nn.Sequential(nn.Sequential(nn.Linear(400, 1500, bias=False)), nn.Tanh()),
        nn.Conv2d(3, 8, 5),
        nn.BatchNorm1d(1500),
        nn.Linear(1500, 20),
    )
    modules = dict(net.named_modules())
    for name, state in others.items():
        modules[name].load_state_dict(state)
    out = {}
    try:
        net.apply(init_weights)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        return out
    linears = []
    for layer in (net[0][0], net[1][0][0], net[4]):
        w = layer.weight.detach().double()
        linears.append({"fan_in": layer.in_features, "fan_out": layer.out_features, "min": w.min().item(),
                        "max": w.max().item(), "mean": w.mean().item(), "std": w.std().item(),
                        "bias_max": None if layer.bias is None else layer.bias.detach().abs().max().item()})
    out["linears"] = linears
    out["others"] = {name: {k: v.detach().clone() for k, v in modules[name].state_dict().items()} for name in others}
    return out


def probe_shared_layer(ns, seed, sizes):
    """make_shared_net: which nn.Linear runs when (forward hooks), output, and gradients per parameter."""
    import torch
    from torch import nn
    make_shared_net = ns.require("make_shared_net")
    in_features, hidden, out_features, n = sizes
    torch.manual_seed(seed)
    net = make_shared_net(in_features, hidden, out_features)
    try:
        params = list(net.parameters())
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}", "type": type(net).__name__}
    out = {"n_params": sum(p.numel() for p in params), "n_tensors": len(params)}
    keys = {id(p): i for i, p in enumerate(params)}
    calls = []
    hooks = [m.register_forward_hook(lambda m, inp, outp, i=i: calls.append(i)) for i, m in enumerate(linears)]
    gen = torch.Generator().manual_seed(seed + 11)
    X = torch.randn(n, in_features, generator=gen)
    try:
        y_hat = net(X)
    finally:
        for h in hooks:
            h.remove()
    R = torch.randn(tuple(y_hat.shape), generator=gen)
    (y_hat * R).sum().backward()
    out.update({
        "X": X, "R": R, "y_hat": y_hat.detach(), "calls": calls,
        "linears": [{"weight": keys.get(id(m.weight)), "bias": None if m.bias is None else keys.get(id(m.bias)),
                     "shape": tuple(m.weight.shape)} for m in linears],
        "values": [p.detach().clone() for p in params],
        "grads": [None if p.grad is None else p.grad.clone() for p in params],
    })
    return out


def probe_save_load(ns, states, X, shift, seed):
    """save_params / load_params in a fresh folder of the working folder, for two networks holding the
    judge's ``states``: the files written (their bytes), and the outputs on X of the saved network and of
    the loaded one (twice, then once more after ``shift`` was added to the saved network's parameters)."""
    import os
    import re
    import shutil
    import tempfile
    import torch
    from torch import nn
    save_params = ns.require("save_params")
    load_params = ns.require("load_params")

    def make_mlp():
        return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))

    def make_small():
        return nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3))

    folder = tempfile.mkdtemp(dir=os.getcwd())
    out = {}
    try:
        for name, make_net, filename in (("mlp", make_mlp, "mlp.params"), ("small", make_small, "small-net.pt")):
            original = make_net()
            original.load_state_dict(states[name])
            original.train()
            torch.manual_seed(seed)              # make_net inside load_params draws weights of its own
            here = tempfile.mkdtemp(dir=folder)  # a folder of its own: what save_params writes there
            path = os.path.join(here, filename)
            save_params(original, path)
            case = {"files": {}}
            for entry in sorted(os.listdir(here))[:10]:
                with open(os.path.join(here, entry), "rb") as f:
                    content = f.read(1 << 20)
                case["files"][entry] = torch.tensor(list(content), dtype=torch.uint8)
            original.eval()
            with torch.no_grad():
                case["original"] = original(X)
            try:
                loaded = load_params(make_net, path)
            except Exception as exc:
                message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc).splitlines()[0]) if str(exc) else ""
                case["load_error"] = f"{type(exc).__name__}: {message[:160]}"
                out[name] = case
                continue
            case["loaded_type"] = type(loaded).__name__
            try:
                with torch.no_grad():
                    case["pred"] = loaded(X)
                    case["pred_again"] = loaded(X)
                    for p in original.parameters():
                        p.add_(shift)
                    case["pred_after_shift"] = loaded(X)
            except Exception as exc:
                case["pred_error"] = f"{type(exc).__name__}: {str(exc)[:160]}"
            out[name] = case
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out
