"""What the lessons' probes share. It runs IN the student's process, beside the student's code.

A probe imports these helpers inside its own body (``from autograder.sandbox.inside.probing import ...``). Like
the probes, they call the student's code and bring back what it did as data (tensors, numbers, type names);
they decide nothing and hold no answer. Their judge-side twin, the replays those data are compared with, is
``autograder/judge/training.py``.
"""
import contextlib


def student_function(ns, name, module=None):
    """The student's function ``name``: from the file ``<module>.py`` itself when ``module`` is given (not from
    whatever an import of that name would serve), else from the notebook."""
    if not module:
        return ns.require(name)
    import importlib.util
    spec = importlib.util.spec_from_file_location("graded_" + module, module + ".py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return getattr(loaded, name)


@contextlib.contextmanager
def recording_optimizer(ns, name="SGD"):
    """Within the block, ``torch.optim.<name>`` (and any name the notebook bound to it) is a subclass that records
    each optimizer created: ``{"start": [the parameters' values, CPU copies], "lr", "momentum", "weight_decay"}``
    (of its first parameter group). Yields the list those records go to."""
    import torch
    real = getattr(torch.optim, name)
    created = []

    class Recording(real):
        def __init__(self, params, *args, **kwargs):
            super().__init__(list(params), *args, **kwargs)
            group = self.param_groups[0]
            created.append({"start": [p.detach().cpu().clone() for g in self.param_groups for p in g["params"]],
                            "lr": float(group["lr"]), "momentum": float(group.get("momentum", 0.0)),
                            "weight_decay": float(group.get("weight_decay", 0.0))})

    Recording.__name__ = Recording.__qualname__ = name
    aliases = [key for key, value in ns.globals.items() if value is real]
    setattr(torch.optim, name, Recording)
    for key in aliases:
        ns.globals[key] = Recording
    try:
        yield created
    finally:
        setattr(torch.optim, name, real)
        for key in aliases:
            ns.globals[key] = real


def trained_outputs(result, X_eval, key):
    """What a training function that should return ``(net, history)`` gave: ``{key: net(X_eval) in eval mode
    without gradients, "history": history}``, or ``{"returned": type name}`` when it is not two things."""
    import torch
    try:
        net, history = result
    except (TypeError, ValueError):
        return {"returned": type(result).__name__}   # not two things: only its name can come back
    if hasattr(net, "eval"):
        net.eval()
    with torch.no_grad():
        outputs = net(X_eval)
    return {key: outputs, "history": history}


def train_with_standins(ns, name, X, y, w0, b0, lr, num_epochs, batch_size, seed, pieces, twist, probe_grads, calls):
    """The student's manual loop ``name(w, b, X, y, lr, num_epochs, batch_size, net=, loss=, updater=, generator=)``
    from fresh leaves (w0, b0), with the judge's stand-ins: ``pieces`` is the source of a ``standins(twist,
    calls)`` that gives (net, loss, updater), each counting its calls in ``calls``.

    Returns the w and b the caller holds afterwards, the history, the calls, and the gradients that the
    backward() of sum(probe_grads[0] * w) + sum(probe_grads[1] * b) leaves on w and b after training (None
    where training left them without requires_grad)."""
    import torch
    train = ns.require(name)
    scope = {}
    exec(pieces, scope)
    net, loss, updater = scope["standins"](twist, calls)
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    torch.manual_seed(seed + 104729)    # not the generator's seed: the global state must not stand in for it
    history = train(w, b, X, y, lr, num_epochs, batch_size, net=net, loss=loss, updater=updater,
                    generator=torch.Generator().manual_seed(seed))
    out = {"w": w.detach().clone(), "b": b.detach().clone(), "history": history, "calls": calls}
    out["grads"] = gradients_after([w, b], probe_grads)
    return out


def as_data(value):
    """A value the student's code returned, as data: None, numbers and tensors (detached, on the CPU unless on
    the meta device) as they are, a numpy scalar as ``{"numpy": type, "value"}``, anything else as ``{"type"}``."""
    import torch
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach() if value.device.type == "meta" else value.detach().cpu()
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        return {"numpy": type(value).__name__, "value": value.item()}
    return {"type": type(value).__name__}


def typed(value):
    """``{"type": type name, "value": the value when a number or a tensor (detached), else None}``."""
    import torch
    kept = value if isinstance(value, (int, float, torch.Tensor)) and not isinstance(value, bool) else None
    return {"type": type(value).__name__, "value": kept.detach() if isinstance(kept, torch.Tensor) else kept}


def files_as_data(folder):
    """Every file below ``folder``: {path relative to it: its bytes as a uint8 tensor}."""
    import os

    import torch
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                data = handle.read()
            files[os.path.relpath(path, folder)] = torch.tensor(list(data), dtype=torch.uint8)
    return files


def gradients_after(tensors, weights, clear=True):
    """The .grad that the backward() of sum over i of sum(weights[i] * tensors[i]) leaves on each tensor (from
    cleared gradients unless ``clear`` is False): a copy, or None where autograd does not reach it (not a
    leaf, no requires_grad)."""
    import warnings
    if clear:
        for t in tensors:
            t.grad = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # reading .grad of a non-leaf warns
        try:
            sum((t * w).sum() for t, w in zip(tensors, weights)).backward()
        except RuntimeError:
            pass                          # nothing that autograd reaches: every gradient stays None
        return [None if t.grad is None else t.grad.detach().clone() for t in tensors]


def recording_net(state):
    """A small model for MNIST-shaped inputs, loaded from the judge's ``state``: BatchNorm2d(1), then Linear(784,
    10), then log_softmax. It records each forward's input shape (``net.shapes``) and the class name of its
    output's grad_fn, or None without a graph (``net.graphs``). The judge computes the same model to know what
    a correct loop gets from it."""
    import torch
    import torch.nn.functional as F

    class RecordingNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm2d(1)
            self.linear = torch.nn.Linear(784, 10)
            self.shapes, self.graphs = [], []

        def forward(self, X):
            self.shapes.append(tuple(X.shape))
            out = F.log_softmax(self.linear(self.norm(X.reshape(-1, 1, 28, 28)).reshape(-1, 784)), dim=1)
            self.graphs.append(type(out.grad_fn).__name__ if out.grad_fn is not None else None)
            return out

    net = RecordingNet()
    net.load_state_dict(state)
    return net


def graph_counter():
    """(live, mark): ``mark(t)`` gives t back tied to a token that lives exactly as long as the autograd graph
    node that holds it; ``live["now"]`` counts the tokens alive, ``live["max"]`` the most alive at once (how many
    graphs a loop kept)."""
    import torch
    live = {"now": 0, "max": 0}

    class Token:
        def __init__(self):
            live["now"] += 1
            live["max"] = max(live["max"], live["now"])

        def __del__(self):
            live["now"] -= 1

    class Marked(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark = Token()
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return grad

    return live, Marked.apply


@contextlib.contextmanager
def stand_ins(namespace, replacements):
    """Within the block, each name of ``replacements`` is bound in ``namespace`` (a dict: the notebook's globals,
    a module's dict) to its stand-in; afterwards each is as it was, or unbound again."""
    saved = {name: namespace[name] for name in replacements if name in namespace}
    namespace.update(replacements)
    try:
        yield
    finally:
        for name in replacements:
            if name in saved:
                namespace[name] = saved[name]
            else:
                namespace.pop(name, None)


def history_as_floats(history):
    """A returned history as data: {key: [float, ...]} (one-element tensors read with .item(); None for a key
    whose values are not numbers), or "a <type>" when it is not a dict."""
    import torch
    if not isinstance(history, dict):
        return f"a {type(history).__name__}"
    plain = {}
    for key, values in history.items():
        try:
            plain[str(key)] = [float(v.item() if isinstance(v, torch.Tensor) else v) for v in values]
        except (TypeError, ValueError, RuntimeError):
            plain[str(key)] = None
    return plain
