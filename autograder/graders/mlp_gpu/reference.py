"""The judge's side of mlp_gpu: the data it sends, its own replays and the thresholds (measured in
CALIBRATION.md)."""
import math
import os

import torch
import torch.nn.functional as F

from course import data


MLP_ACCURACY_MIN = 0.89

# Noise of 0.1 times the images' spread and no shift, as in 07: a shift of up to one pixel costs an MLP
# about 9 points of accuracy, noise nothing measurable, and noise alone defeats exact and hashed lookups.
HELDOUT_DISGUISE = {"max_shift": 0, "noise": 0.1}

MLP_LOSS_MAX = 0.50

MLP_TRAINING = {"hidden": 32, "lr": 0.1, "num_epochs": 4, "batch_size": 100}

MNIST_MEAN, MNIST_STD = data.MNIST_MEAN[0], data.MNIST_STD[0]

# Scores of +-1000 (4 rows of 10 classes; the true class at -1000 in rows 0 and 2): softmax underflows to 0
# there, so log(softmax(...)) gives -inf, while cross_entropy (log-sum-exp) gives the finite mean 1250.
EXTREME_SCORES = torch.zeros(4, 10)

EXTREME_SCORES[0, 0], EXTREME_SCORES[0, 3] = 1000.0, -1000.0

EXTREME_SCORES[1, 5] = 1000.0

EXTREME_SCORES[2] = -1000.0

EXTREME_SCORES[2, 7] = 1000.0

EXTREME_SCORES[3] = torch.linspace(-1000.0, 1000.0, 10)

EXTREME_LABELS = torch.tensor([3, 5, 2, 4])

LARGE_INPUT = 1e4          # inputs scaled by this: the model's scores lie hundreds apart


def grading_seed():
    """Seed of the graders' inputs and training (COURSE_GRADING_SEED, default 0)."""
    return int(os.environ.get("COURSE_GRADING_SEED", "0"))


def _seed(base):
    """The generator seed of one input: ``base`` under grading seed 0, shifted by 1000 per grading seed."""
    return base + 1000 * grading_seed()


def number(value, what):
    """A student-facing rendering of a number described by a probe (its ``describe``)."""
    if value["kind"] in ("int", "float"):
        return f"{value['value']:g}"
    return f"{what} of type {value['type']}"


def _describe(value):
    """A value a probe returned (``raw``: None, numbers, tensors, numpy scalars, type names) as a plain
    description: {"kind": none / int / float / tensor / tensor-int / other, "value": float or None, "type"}."""
    if value is None:
        return {"kind": "none", "value": None, "type": "NoneType"}
    if isinstance(value, bool):
        return {"kind": "other", "value": None, "type": "bool"}
    if isinstance(value, int):
        return {"kind": "int", "value": float(value), "type": "int"}
    if isinstance(value, float):
        return {"kind": "float", "value": value, "type": "float"}
    if isinstance(value, torch.Tensor):
        if value.numel() == 1 and value.device.type != "meta" and not value.is_complex():
            integral = not value.is_floating_point()
            return {"kind": "tensor-int" if integral else "tensor", "value": float(value), "type": "tensor"}
        return {"kind": "other", "value": None, "type": f"tensor of shape {tuple(value.shape)}"}
    if isinstance(value, dict) and "numpy" in value:
        number_ = value.get("value")
        if isinstance(number_, (int, float)) and not isinstance(number_, bool):
            return {"kind": "int" if isinstance(number_, int) else "float", "value": float(number_),
                    "type": str(value["numpy"])}
        return {"kind": "other", "value": None, "type": str(value["numpy"])}
    return {"kind": "other", "value": None, "type": str(value.get("type")) if isinstance(value, dict) else "?"}


def _margin_loss(y_hat, y):
    """The loss given to loss_batch, evaluate and fit (not cross-entropy)."""
    return F.multi_margin_loss(y_hat, y)


def _true_class_prob(y_hat, y):
    """The metric given to loss_batch, evaluate and fit (not accuracy), as a Python float."""
    return y_hat.softmax(dim=1)[torch.arange(len(y)), y].mean().item()

ACCURACY_SCORES = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 3.0, 1.0, 0.5], [0.1, 0.2, 0.3, 0.4],
                                [5.0, -5.0, 0.0, 0.0], [0.0, 0.0, 9.0, 1.0], [1.0, 2.0, 3.0, 0.0],
                                [0.3, 0.2, 0.1, 0.0], [-1.0, -2.0, -3.0, -0.5]])

ACCURACY_LABELS = torch.tensor([0, 1, 3, 1, 2, 0, 0, 2])            # 5 of 8 correct

LOSS_BATCH_LR = 0.5


def linear_start(generator, fan_in=4, fan_out=3):
    """Parameters of an nn.Linear(fan_in, fan_out) drawn by the judge (its state_dict)."""
    bound = 1 / math.sqrt(fan_in)
    return {"weight": (torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound,
            "bias": (torch.rand(fan_out, generator=generator) * 2 - 1) * bound}

EVALUATE_DROPOUT = 0.5

FIT_LR, FIT_EPOCHS = 0.3, 3

SHARED_SIZES = [(6, 5, 2, 4), (3, 8, 1, 1)]

SAVE_LOAD_FILES = {"mlp": "mlp.params", "small": "small-net.pt"}

SAVE_LOAD_SHIFT = 0.25
