"""Held-out images the student's process may see: changed by a secret drawn anew for every grading.

A grader that measures accuracy sends the student's code held-out *inputs* only and keeps the labels.
Since the public data sets are public, the inputs are first changed by a per-grading secret transform
(each image shifted by up to one pixel and given a little noise), so that a table built from the
published files (a hash of each image, or its exact pixels, mapped to its label) matches nothing.
The reference solution keeps its margin on the changed images (see each grader's calibration notes).
"""
import secrets

import torch

MAX_SHIFT = 1          # pixels, in each direction
NOISE = 0.03           # standard deviation of added noise, in units of the images' own spread


def grading_secret():
    """A fresh secret for one grading (never sent to the student's process)."""
    return secrets.randbits(62)


def disguise(images, secret, max_shift=MAX_SHIFT, noise=NOISE):
    """images: (N, C, H, W) or (N, H, W) float tensor. Returns a changed copy, same shape and dtype.

    Each image is shifted by a random whole number of pixels in [-max_shift, max_shift] along both axes
    (vacated pixels take the image's minimum, i.e. the background) and gets Gaussian noise of standard
    deviation ``noise * images.std()``. The randomness comes from ``secret`` alone.
    """
    gen = torch.Generator().manual_seed(int(secret))
    X = images.clone()
    squeeze = X.dim() == 3
    if squeeze:
        X = X.unsqueeze(1)
    n = X.shape[0]
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=gen)
    background = X.amin(dim=(1, 2, 3), keepdim=True)
    out = background.expand_as(X).clone()
    H, W = X.shape[-2:]
    for (dy, dx) in {tuple(s) for s in shifts.tolist()}:
        rows = ((shifts[:, 0] == dy) & (shifts[:, 1] == dx)).nonzero().reshape(-1)
        src = X[rows]
        ys, yd = (slice(0, H - dy), slice(dy, H)) if dy >= 0 else (slice(-dy, H), slice(0, H + dy))
        xs, xd = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W), slice(0, W + dx))
        block = out[rows]
        block[:, :, yd, xd] = src[:, :, ys, xs]
        out[rows] = block
    spread = images.float().std().item() or 1.0
    out = out + noise * spread * torch.randn(out.shape, generator=gen, dtype=torch.float32).to(out.dtype)
    return out.squeeze(1) if squeeze else out
