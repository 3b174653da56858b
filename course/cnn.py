"""The MNIST ConvNet: two 3x3 convolutions, max-pooling, dropout and two fully connected layers.

Shapes for a batch of N images: (N, 1, 28, 28) -conv1-> (N, 16, 26, 26) -conv2-> (N, 32, 24, 24)
-max_pool 2-> (N, 32, 12, 12) -flatten-> (N, 4608) -fc1-> (N, 64) -fc2-> (N, 10) log-probabilities.
``train`` and ``test`` follow the classic PyTorch MNIST example, with ``F.nll_loss`` on those
log-probabilities and Adadelta at lr 0.5.
"""
import torch
import torch.nn.functional as F
from torch import nn, optim

__all__ = ["Net", "make_optimizer", "train", "test", "predict_image"]


class Net(nn.Module):
    """ConvNet for 28x28 grey images: (N, 1, 28, 28) -> (N, 10) log-probabilities."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, stride=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, stride=1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(4608, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, X):
        """Convolutions and pooling extract features, the fully connected layers classify them."""
        X = F.relu(self.conv1(X))
        X = F.relu(self.conv2(X))
        X = F.max_pool2d(X, 2)
        X = self.dropout1(X)
        X = torch.flatten(X, 1)
        X = F.relu(self.fc1(X))
        X = self.dropout2(X)
        X = self.fc2(X)
        return F.log_softmax(X, dim=1)


def make_optimizer(net):
    """Adadelta at lr 0.5 over the network's parameters."""
    return optim.Adadelta(net.parameters(), lr=0.5)


def train(net, device, train_iter, optimizer, epoch, log_interval=100):
    """One epoch of training (train mode); prints the loss every ``log_interval`` batches.

    Returns the mean training loss of the epoch, weighted by batch size (float).
    """
    net.train()
    total_loss, total_n = 0.0, 0
    for batch_idx, (X, y) in enumerate(train_iter):
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(net(X), y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(X)
        total_n += len(X)
        if batch_idx % log_interval == 0:
            print(f"epoch {epoch} [{total_n}/{len(train_iter.dataset) if hasattr(train_iter, 'dataset') else '?'}]"
                  f"  loss {loss.item():.4f}")
    return total_loss / max(total_n, 1)


def test(net, device, test_iter):
    """Mean loss and accuracy over ``test_iter`` in eval mode without gradients; returns (loss, accuracy)."""
    net.eval()
    total_loss, correct, total_n = 0.0, 0, 0
    with torch.no_grad():
        for X, y in test_iter:
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            total_loss += F.nll_loss(y_hat, y, reduction="sum").item()
            correct += (y_hat.argmax(dim=1) == y).sum().item()
            total_n += len(X)
    loss, acc = total_loss / total_n, correct / total_n
    print(f"test: mean loss {loss:.4f}, accuracy {correct}/{total_n} ({acc:.2%})")
    return loss, acc


def predict_image(net, image):
    """Predicted class (int) of one image of shape (1, 28, 28), on the network's device, in eval mode."""
    net.eval()
    device = next(net.parameters()).device
    with torch.no_grad():
        y_hat = net(image.unsqueeze(0).to(device))
    return int(y_hat.argmax(dim=1).item())
