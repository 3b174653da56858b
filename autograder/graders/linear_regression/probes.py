"""The probes of linear_regression: they run IN the student's process, beside the student's code.

Each is sent as its own source and called as ``probe(ns, *args)``: self-contained (it imports what it uses),
it calls the student's code and returns data, and decides nothing (the judge does, from what comes back).
"""


# Probes only call the student's code and bring back data (values, gradients, what came back); every verdict
# is made by the checks (test_*.py), in the judging process.
def probe_init(ns, num_inputs, X, c):
    """Two calls of init_linreg_params(num_inputs): what the first returned, and the gradients that the
    backward() of sum(c * (X w + b)) through the first pair leaves on the tensors of both pairs."""
    import torch
    init = ns.require("init_linreg_params")
    torch.manual_seed(0)
    first = init(num_inputs)
    second = init(num_inputs)
    try:
        w, b = first
        w2, b2 = second
    except (TypeError, ValueError):
        return {"first": first}
    try:
        ((X.to(w.dtype) @ w + b) * c).sum().backward()
    except (RuntimeError, TypeError, AttributeError):
        pass                            # a pair that autograd cannot reach: its gradients stay None
    grads = [getattr(t, "grad", None) for t in (w, b, w2, b2)]
    return {"first": first, "grads": [None if g is None else g.clone() for g in grads]}


def probe_linreg(ns, X, w, b):
    """linreg(X, w, b) and the gradients of its sum with respect to w and b."""
    linreg = ns.require("linreg")
    w = w.clone().requires_grad_()
    b = b.clone().requires_grad_()
    y_hat = linreg(X, w, b)
    try:
        y_hat.sum().backward()
    except (RuntimeError, TypeError, AttributeError):
        pass                            # not connected to w and b: their gradients stay None
    return {"y_hat": y_hat, "w_grad": w.grad, "b_grad": b.grad}


def probe_squared_loss(ns, y_hat, y):
    """squared_loss(y_hat, y), the y it was given as it is afterwards, and the gradient of the summed loss."""
    loss = ns.require("squared_loss")
    y_hat = y_hat.clone().requires_grad_()
    l = loss(y_hat, y)
    after = y.clone()
    try:
        l.sum().backward()
    except (RuntimeError, TypeError, AttributeError):
        pass
    return {"loss": l, "y_after": after, "grad": y_hat.grad}


def probe_sgd(ns, values, grads, lr, batch_size):
    """Steps of sgd on parameters the caller holds; before each, backward() of sum(g * p) puts the judge's
    gradients g into p.grad. After each step: the values and .grad of the caller's tensors."""
    sgd = ns.require("sgd")
    held = [v.clone().requires_grad_() for v in values]
    steps = []
    for step_grads in grads:
        try:
            sum((g * p).sum() for p, g in zip(held, step_grads)).backward()
        except RuntimeError as exc:     # no tensor that autograd reaches any more
            return {"steps": steps, "backward_error": str(exc)}
        sgd(list(held), lr, batch_size)
        steps.append({"values": [p.detach().clone() for p in held],
                      "grads": [None if p.grad is None else p.grad.clone() for p in held]})
    return {"steps": steps}


def standins(twist, calls=None):
    """(net, loss, updater) for train_linreg, shaped like the lesson's but each with a twist chosen by the judge,
    so that none is an answer to a task: the model reads its features scaled and shifts its predictions, each
    example's loss is weighted by 1 + bend * tanh(target)**2, and each parameter's step has a factor of its
    own (w: factors[0], b: factors[1]). The judge's replay calls these very functions; the probes get their
    source. ``calls`` (optional) counts the calls of each."""
    import torch
    scale, shift, bend, factors = twist["scale"], twist["shift"], twist["bend"], twist["factors"]

    def net(X, w, b):
        if calls is not None:
            calls["net"] += 1
        return torch.matmul(X, w * scale.to(w.dtype)) + b + shift

    def loss(y_hat, y):
        if calls is not None:
            calls["loss"] += 1
        target = y.reshape(y_hat.shape).to(y_hat.dtype)
        weight = 1 + bend * torch.tanh(target) ** 2
        return weight * (y_hat - target) ** 2 / 2

    def updater(params, lr, batch_size):
        if calls is not None:
            calls["updater"].append([float(lr), float(batch_size)])
        with torch.no_grad():
            for p in params:
                factor = factors[0] if p.dim() == 2 else factors[1]
                p.sub_(p.grad * (factor * lr / batch_size))
                p.grad.zero_()

    return net, loss, updater


def probe_train_linreg(ns, X, y, w0, b0, lr, num_epochs, batch_size, seed, pieces, twist, probe_grads):
    """train_linreg from (w0, b0) with the stand-ins of ``pieces``: the w and b the caller holds afterwards, the
    history, the calls of the stand-ins, and the gradients that the backward() of sum(g_w * w) + sum(g_b * b)
    leaves on w and b after training."""
    from autograder.sandbox.inside.probing import train_with_standins
    return train_with_standins(ns, "train_linreg", X, y, w0, b0, lr, num_epochs, batch_size, seed, pieces, twist,
                               probe_grads, calls={"net": 0, "loss": 0, "updater": []})


def probe_train_fast(ns, X, y, X_test, lr, num_epochs, batch_size, seed):
    """train_linreg_fast: the trained net's outputs for X_test and the history, or the type name of what came back when
    it is not two things."""
    import torch

    from autograder.sandbox.inside.probing import trained_outputs
    train = ns.require("train_linreg_fast")
    torch.manual_seed(seed)
    result = train(X, y, lr, num_epochs, batch_size, generator=torch.Generator().manual_seed(seed))
    return trained_outputs(result, X_test, "y_hat")


def probe_init_sigma(ns, num_inputs, sigma):
    """What init_linreg_params(num_inputs) (sigma None) or init_linreg_params(num_inputs, sigma=sigma) returns."""
    import torch
    init = ns.require("init_linreg_params")
    torch.manual_seed(1)
    return init(num_inputs) if sigma is None else init(num_inputs, sigma=sigma)


def probe_train_fast_traced(ns, X, y, X_eval, lr, num_epochs, batch_size, seed):
    """train_linreg_fast with torch.optim.SGD recording the starting parameters and settings of each optimizer."""
    import torch

    from autograder.sandbox.inside.probing import recording_optimizer, trained_outputs
    train = ns.require("train_linreg_fast")
    with recording_optimizer(ns, "SGD") as created:
        torch.manual_seed(seed)
        result = train(X, y, lr, num_epochs, batch_size, generator=torch.Generator().manual_seed(seed))
    return dict(trained_outputs(result, X_eval, "y_hat"), created=created)
