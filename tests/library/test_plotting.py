"""course.plotting: training curves against whole epochs."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course.plotting import plot_histories, plot_history  # noqa: E402


@pytest.mark.parametrize("num_epochs", [2, 3, 5, 7])
def test_epoch_ticks_are_whole_epochs(num_epochs):
    history = {"epoch": list(range(1, num_epochs + 1)), "train_loss": [1.0 / e for e in range(1, num_epochs + 1)]}
    for ax in (plot_history(history), plot_histories({"lr=0.1": history}, "train_loss")):
        ax.figure.canvas.draw()
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert ax.get_xlabel() == "epoch"
        plt.close(ax.figure)
