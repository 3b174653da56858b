"""The MNIST multilayer perceptron: 784 -> hidden -> 10 with ReLU, trained on whatever device is there.

``MnistModel`` returns logits (no softmax): pair it with ``F.cross_entropy``, which applies
``log_softmax`` itself. Training uses :func:`course.training.fit` and the helpers of
:mod:`course.devices`.
"""
import torch.nn.functional as F
from torch import nn

__all__ = ["MnistModel", "loss_fn"]

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
