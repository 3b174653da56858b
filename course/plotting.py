"""Plotting helpers: training curves from a history, kept apart from training code."""


def _epoch_axis(ax):
    """Label the x axis "epoch", with ticks on whole epochs only (no 1.25, 1.5, ...)."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_history(history, keys=None, ax=None, title=None):
    """Plot the history returned by ``fit`` (one line per key against "epoch"); returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    epochs = history.get("epoch") or list(range(1, len(next(iter(history.values()))) + 1))
    for key in keys or [k for k in history if k != "epoch"]:
        values = history.get(key)
        if values:
            ax.plot(epochs[: len(values)], values, marker="o", label=key)
    _epoch_axis(ax)
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_histories(histories, key, ax=None, title=None):
    """Compare one key across several runs: ``histories`` maps a label (e.g. "lr=0.1") to a history."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for label, history in histories.items():
        ax.plot(history["epoch"], history[key], marker="o", label=label)
    _epoch_axis(ax)
    ax.set_ylabel(key)
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax
