"""Device-agnostic helpers: pick the GPU when there is one, move tensors and batches to a device.

Code written with these runs unchanged on CPU and CUDA: nothing names ``cuda`` except
:func:`get_default_device`, which asks ``torch.cuda.is_available()``.
"""
import torch

__all__ = ["get_default_device", "to_device", "DeviceDataLoader"]


def get_default_device():
    """torch.device("cuda") when a GPU is available, else torch.device("cpu")."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def to_device(data, device):
    """Move a tensor, or the tensors inside a list / tuple / dict, to ``device``; returns the moved copy.

    ``Tensor.to`` returns a new tensor (it is not in place), so the result must be used.
    """
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=True)
    if isinstance(data, (list, tuple)):
        return type(data)(to_device(x, device) for x in data)
    if isinstance(data, dict):
        return {key: to_device(value, device) for key, value in data.items()}
    return data


class DeviceDataLoader:
    """Wrap a data loader so that every batch it yields is already on ``device``."""

    def __init__(self, dl, device):
        self.dl = dl
        self.device = device

    def __iter__(self):
        """Yield the wrapped loader's batches, moved to the device (a fresh pass each time)."""
        for batch in self.dl:
            yield to_device(batch, self.device)

    def __len__(self):
        """Number of batches."""
        return len(self.dl)
