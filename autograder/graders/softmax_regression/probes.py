"""The probes of softmax_regression: they run IN the student's process, beside the student's code.

Each is sent as its own source and called as ``probe(ns, *args)``: self-contained (it imports what it uses),
it calls the student's code and returns data, and decides nothing (the judge does, from what comes back).
"""


def probe_apply(ns, name, O, y=None):
    """Call softmax(O) or cross_entropy(O, y); return the result and the arguments as they are afterwards."""
    import torch
    fn = ns.require(name)
    out = fn(O) if y is None else fn(O, y)
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu()
    else:
        out = f"a {type(out).__name__}"
    after = {"out": out, "O_after": O.detach().clone()}
    if y is not None:
        after["y_after"] = y.detach().clone()
    return after


def probe_backward(ns, name, O, G, y=None):
    """Values, and O.grad after backward of sum(G * fn(O)) (or of fn(O, y)); O.grad stays None when no
    gradient reaches O."""
    import torch
    fn = ns.require(name)
    O = O.clone().requires_grad_()
    out = fn(O) if y is None else fn(O, y)
    if not isinstance(out, torch.Tensor):
        return {"out": f"a {type(out).__name__}", "grad": None}
    try:
        (out * G).sum().backward() if y is None else out.sum().backward()
    except RuntimeError:
        pass
    return {"out": out.detach(), "grad": None if O.grad is None else O.grad.detach()}


def probe_jacobian(ns, name, O, points, y=None):
    """fn (with y fixed) at each of the given points, and at O the gradient of each output entry with
    respect to O by autograd (None where none reaches O)."""
    import torch
    fn = ns.require(name)

    def f(inp):
        return fn(inp) if y is None else fn(inp, y)

    values = []
    for point in points:
        value = f(point.clone())
        values.append(value.detach().clone() if isinstance(value, torch.Tensor) else f"a {type(value).__name__}")
    O = O.clone().requires_grad_()
    out = f(O)
    rows = []
    if isinstance(out, torch.Tensor):
        flat = out.reshape(-1)
        for k in range(flat.numel()):
            try:
                (grad,) = torch.autograd.grad(flat[k], O, retain_graph=True, allow_unused=True)
            except RuntimeError:
                grad = None
            rows.append(None if grad is None else grad.detach().clone())
    return {"values": values, "rows": rows}


def probe_init_params(ns, num_inputs, num_outputs, G_W, G_b):
    """init_softmax_params' W and b, the shape of softmax_regression's logits with them, and their .grad
    after one backward pass of sum(G_W * W) + sum(G_b * b) (None where no gradient lands)."""

    import torch
    from autograder.sandbox.inside.probing import gradients_after
    torch.manual_seed(0)
    result = ns.require("init_softmax_params")(num_inputs, num_outputs)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"error": f"returned a {type(result).__name__}, not a tuple (W, b)"}
    out = {}
    for key, p in zip(("W", "b"), result):
        if not isinstance(p, torch.Tensor):
            return {"error": f"returned {key} as a {type(p).__name__}, not a tensor"}
        out[key] = p.detach().clone()
    W, b = result
    X = torch.ones(5, num_inputs)
    O = ns.require("softmax_regression")(X, W, b)
    out["O_shape"] = tuple(O.shape) if isinstance(O, torch.Tensor) else None
    out["W_grad"], out["b_grad"] = gradients_after([W, b], [G_W, G_b], clear=False)
    return out


def probe_model(ns, X, W, b, G):
    """Logits of softmax_regression(X, W, b) and the gradients of sum(G * O) for W and b."""
    import torch
    W = W.clone().requires_grad_()
    b = b.clone().requires_grad_()
    O = ns.require("softmax_regression")(X, W, b)
    if not isinstance(O, torch.Tensor):
        return {"O": f"a {type(O).__name__}"}
    if O.requires_grad and O.shape == G.shape:
        (O * G).sum().backward()
    return {"O": O.detach(), "W_grad": None if W.grad is None else W.grad.detach(),
            "b_grad": None if b.grad is None else b.grad.detach()}


def probe_train_manual(ns, X, y, W0, b0, lr, num_epochs, batch_size, seed, offset, scale, G_W, G_b):
    """Train the caller's W, b with train_softmax; return them, the history, X and y as they are afterwards,
    and W.grad, b.grad after one more backward pass of sum(G_W * W) + sum(G_b * b).

    While it runs, ``softmax_regression`` and ``cross_entropy`` are the grader's own: logits shifted by a
    constant ``offset`` per class and the mean cross-entropy times ``scale`` (the judging process replays
    exactly these), so that only the training loop is judged here.
    """
    import contextlib
    import io

    import torch
    import torch.nn.functional as F
    from autograder.sandbox.inside.probing import gradients_after, history_as_floats, stand_ins
    train = ns.require("train_softmax")
    graders = {"cross_entropy": lambda O, y: scale * F.cross_entropy(O, y),
               "softmax_regression": lambda X, W, b: X @ W + (b + offset)}
    torch.manual_seed(seed)
    W = W0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    with stand_ins(ns.globals, graders):
        with contextlib.redirect_stderr(io.StringIO()):  # progress bars and warnings are not graded
            history = train(W, b, X, y, lr, num_epochs, batch_size)
    out = {"W": W.detach().clone(), "b": b.detach().clone(), "history": history_as_floats(history),
           "X_after": X.detach().clone(), "y_after": y.detach().clone()}
    out["W_grad"], out["b_grad"] = gradients_after([W, b], [G_W, G_b])
    return out


def probe_train_fast(ns, X, y, num_classes, lr, num_epochs, batch_size, seed, X_eval, device):
    """Train with train_softmax_fast; return the trained net's logits for X_eval and the history."""
    import contextlib
    import io

    import torch
    from torch import nn
    from autograder.sandbox.inside.probing import history_as_floats
    train = ns.require("train_softmax_fast")
    torch.manual_seed(seed)
    with contextlib.redirect_stderr(io.StringIO()):  # progress bars and warnings are not graded
        result = train(X, y, num_classes, lr, num_epochs, batch_size, device=device)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"error": f"train_softmax_fast returned a {type(result).__name__}, not a tuple (net, history)"}
    net, history = result
    if not isinstance(net, nn.Module):
        return {"error": f"train_softmax_fast returned a {type(net).__name__} as the net, not an nn.Module"}
    params = list(net.parameters())
    where = params[0].device if params else torch.device("cpu")
    net.eval()
    with torch.no_grad():
        O = net(X_eval.to(where))
    if not isinstance(O, torch.Tensor):
        return {"error": f"the trained net returned a {type(O).__name__}, not a tensor of logits"}
    history = history_as_floats(history)
    return {"O": O.detach().cpu().float(), "history": history, "device": str(where)}


def probe_fast_device(ns, X, y):
    """Run train_softmax_fast with device=meta and a stand-in for fit that records where things are.

    Without a GPU, the meta device shows whether the model and the batches follow ``device``: a stand-in
    for ``fit`` (the real one needs numbers, which meta tensors do not have) looks at the net's
    parameters and at one batch of train_iter. If the notebook's code does not call ``fit``, nothing
    is recorded and nothing can be concluded.
    """
    import contextlib
    import io

    import torch
    from autograder.sandbox.inside.probing import stand_ins
    train = ns.require("train_softmax_fast")
    seen = {}

    def fit_stand_in(net, loss_fn, optimizer, train_iter, num_epochs, *args, **kwargs):
        seen["net"] = sorted({p.device.type for p in net.parameters()})
        batch = next(iter(train_iter))
        seen["batch"] = sorted({t.device.type for t in batch if isinstance(t, torch.Tensor)})
        return {"epoch": list(range(1, num_epochs + 1)), "train_loss": [0.0] * num_epochs}

    error = None
    with stand_ins(ns.globals, {"fit": fit_stand_in}):
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                train(X, y, 4, 0.1, 1, 8, device=torch.device("meta"))
        except Exception as exc:  # noqa: BLE001 - meta tensors cannot give numbers; judged only with ``seen``
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
    return {"seen": seen, "error": error}


def probe_net(ns, num_inputs, num_outputs, X):
    import torch
    from torch import nn
    torch.manual_seed(0)
    net = ns.require("softmax_net")(num_inputs, num_outputs)
    if not isinstance(net, nn.Module):
        return {"error": f"softmax_net returned a {type(net).__name__}, not an nn.Module"}
    trainable = [p.detach().clone() for p in net.parameters() if p.requires_grad]
    with torch.no_grad():
        O = net(X)
    return {"O": O.detach() if isinstance(O, torch.Tensor) else f"a {type(O).__name__}", "trainable": trainable}


def probe_init_values(ns, num_inputs, num_outputs):
    import torch
    torch.manual_seed(3)
    result = ns.require("init_softmax_params")(num_inputs, num_outputs)
    if not isinstance(result, (tuple, list)) or len(result) != 2 or not all(
            isinstance(t, torch.Tensor) for t in result):
        return {"error": f"returned a {type(result).__name__}, not a tuple of two tensors (W, b)"}
    return {"W": result[0].detach().clone(), "b": result[1].detach().clone()}


def probe_train_fast_traced(ns, X, y, num_classes, lr, num_epochs, batch_size, seed, X_eval):
    """train_softmax_fast with torch.optim.SGD recording the starting parameters and settings of each optimizer."""
    import contextlib
    import io

    import torch

    from autograder.sandbox.inside.probing import recording_optimizer
    train = ns.require("train_softmax_fast")
    with recording_optimizer(ns, "SGD") as created:
        torch.manual_seed(seed)
        with contextlib.redirect_stderr(io.StringIO()):  # progress bars and warnings are not graded
            result = train(X, y, num_classes, lr, num_epochs, batch_size, device=torch.device("cpu"))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"error": f"train_softmax_fast returned a {type(result).__name__}, not a tuple (net, history)"}
    net, history = result
    net.eval()
    with torch.no_grad():
        O = net(X_eval)
    out = {"O": O.detach().cpu().clone(), "created": created}
    if isinstance(history, dict) and isinstance(history.get("train_loss"), (list, tuple)):
        out["train_loss"] = [float(v) for v in history["train_loss"]]
    return out
