"""The MNIST multilayer perceptron: 784 -> hidden -> 10 with ReLU, trained on whatever device is there;
and the inside of ``nn.Module``: a custom layer, initialisation with ``apply``, a shared layer, saving
and loading a ``state_dict``.

``MnistModel`` returns logits (no softmax): pair it with ``F.cross_entropy``, which applies
``log_softmax`` itself. Training uses :func:`course.training.fit` and the helpers of
:mod:`course.devices`.
"""
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MnistModel", "loss_fn", "MyLinear", "init_weights", "make_shared_net", "save_params", "load_params"]

loss_fn = F.cross_entropy


class MnistModel(nn.Module):
    """Feedforward network with one hidden layer: (N, 1, 28, 28) or (N, 784) -> (N, out_size) logits."""

    def __init__(self, in_size=784, hidden_size=32, out_size=10):
        super().__init__()
        self.linear1 = nn.Linear(in_size, hidden_size)
        self.linear2 = nn.Linear(hidden_size, out_size)

    def forward(self, X):
        """Flatten every image of the batch, then hidden layer, ReLU, output layer."""
        X = X.reshape(X.shape[0], -1)
        return self.linear2(F.relu(self.linear1(X)))


class MyLinear(nn.Module):
    """A linear layer with registered parameters: X (N, in_features) -> X @ weight + bias (N, out_features).

    weight: (in_features, out_features) from N(0, 0.01^2); bias: (out_features,) zeros. Both are
    ``nn.Parameter``s, so they appear in ``parameters()`` and ``state_dict()`` and move with ``.to(device)``.
    """

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features) * 0.01)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, X):
        """X: (N, in_features). Returns (N, out_features)."""
        return X @ self.weight + self.bias


def init_weights(m):
    """For ``net.apply``: Xavier-uniform weight and zero bias (if any) for an nn.Linear; other modules unchanged."""
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def make_shared_net(in_features, hidden, out_features):
    """Linear, ReLU, shared, ReLU, shared, ReLU, Linear, where ``shared`` is one nn.Linear(hidden, hidden).

    X: (N, in_features) -> (N, out_features). The shared layer's parameters are counted once and receive
    the sum of the gradients of both uses.
    """
    shared = nn.Linear(hidden, hidden)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(),
                         nn.Linear(hidden, out_features))


def save_params(net, path):
    """Save ``net.state_dict()`` (parameters and buffers, by name) to the file ``path``."""
    torch.save(net.state_dict(), path)


def load_params(make_net, path):
    """A new network from ``make_net()`` holding the state saved at ``path``, in eval mode."""
    net = make_net()
    net.load_state_dict(torch.load(path))
    net.eval()
    return net
