"""The probes of logistic_regression: they run IN the student's process, beside the student's code.

Each is sent as its own source and called as ``probe(ns, *args)``: self-contained (it imports what it uses),
it calls the student's code and returns data, and decides nothing (the judge does, from what comes back).
"""


# Probes only call the student's code and bring back data (values, gradients, what came back); every verdict
# is made by the checks (test_*.py), in the judging process.
def probe_elementwise(ns, name, z, y=None):
    """The student's ``name`` at z (and labels y): its value, z as it is afterwards, the gradient of the sum."""
    fn = ns.require(name)
    z = z.clone().requires_grad_()
    out = fn(z) if y is None else fn(z, y)
    after = z.detach().clone()
    try:
        out.sum().backward()
    except (RuntimeError, TypeError, AttributeError):
        pass                            # not connected to z: its gradient stays None
    return {"value": out, "z_after": after, "grad": z.grad}


def probe_accuracy(ns, y_hat, y):
    """What binary_accuracy(y_hat, y) returns."""
    return ns.require("binary_accuracy")(y_hat, y)


def standins(twist, calls=None):
    """(net, loss, updater) for train_logreg, shaped like the lesson's but each with a twist chosen by the judge,
    so that none is an answer to a task: the model reads its features scaled and shifts its logits, each
    example's binary cross-entropy is weighted by its class (weights[label]), and each parameter's step has a
    factor of its own (w: factors[0], b: factors[1]). The judge's replay calls these very functions; the probes
    get their source. ``calls`` (optional) counts the calls of each."""
    import torch
    scale, shift, weights, factors = twist["scale"], twist["shift"], twist["weights"], twist["factors"]

    def net(X, w, b):
        if calls is not None:
            calls["net"] += 1
        return torch.matmul(X, w * scale.to(w.dtype)) + b + shift

    def loss(z, y):
        if calls is not None:
            calls["loss"] += 1
        t = y.reshape(z.shape).to(z.dtype)
        weight = weights[0] + (weights[1] - weights[0]) * t
        return weight * torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction="none")

    def updater(params, lr, batch_size):
        if calls is not None:
            calls["updater"] += 1
        with torch.no_grad():
            for p in params:
                factor = factors[0] if p.dim() == 2 else factors[1]
                p.sub_(p.grad * (factor * lr / batch_size))
                p.grad.zero_()

    return net, loss, updater


def probe_train_logreg(ns, X, y, w0, b0, lr, num_epochs, batch_size, seed, pieces, twist, probe_grads):
    """train_logreg from (w0, b0) with the stand-ins of ``pieces``: the w and b the caller holds afterwards, the
    history, the calls of the stand-ins, and the gradients that the backward() of sum(g_w * w) + sum(g_b * b)
    leaves on w and b after training."""
    from autograder.sandbox.inside.probing import train_with_standins
    return train_with_standins(ns, "train_logreg", X, y, w0, b0, lr, num_epochs, batch_size, seed, pieces, twist,
                               probe_grads, calls={"net": 0, "loss": 0, "updater": 0})


def probe_train_fast(ns, X, y, X_test, lr, num_epochs, batch_size, seed):
    """train_logreg_fast: the trained net's logits for X_test and the history, or the type name of what came back when
    it is not two things."""
    import torch

    from autograder.sandbox.inside.probing import trained_outputs
    train = ns.require("train_logreg_fast")
    torch.manual_seed(seed)
    result = train(X, y, lr, num_epochs, batch_size, generator=torch.Generator().manual_seed(seed))
    return trained_outputs(result, X_test, "logits")


def probe_train_fast_traced(ns, X, y, X_eval, lr, num_epochs, batch_size, seed):
    """train_logreg_fast with torch.optim.SGD recording the starting parameters and settings of each optimizer."""
    import torch

    from autograder.sandbox.inside.probing import recording_optimizer, trained_outputs
    train = ns.require("train_logreg_fast")
    with recording_optimizer(ns, "SGD") as created:
        torch.manual_seed(seed)
        result = train(X, y, lr, num_epochs, batch_size, generator=torch.Generator().manual_seed(seed))
    return dict(trained_outputs(result, X_eval, "logits"), created=created)


def probe_diagnose(ns, runs):
    """What diagnose_training(history) returns for each run."""
    diagnose = ns.require("diagnose_training")
    labels = []
    for run in runs:
        history = {"epoch": list(range(1, len(run["train_loss"]) + 1)),
                   "train_loss": [float(v) for v in run["train_loss"]],
                   "grad_norm": [float(v) for v in run["grad_norm"]]}
        labels.append(diagnose(history))
    return labels
