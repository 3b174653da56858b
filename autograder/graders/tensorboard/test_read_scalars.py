"""Checks of task `read_scalars`."""
import os

import pytest
import torch

from autograder.judge.checks import expect, expect_close, fail

from .probes import probe_read_scalars
from .reference import CURVE_KINDS


def _layout():
    """Runs the read_scalars probe writes, (run, [(kind, tag, step, value)]), and what they should read as:
    {(run, tag): (kind of curve, [(step, value), ...] sorted by step)}."""
    layout = [
        [".", [["scalar", "acc/valid", step, 0.5 + 0.125 * step] for step in range(3)]
         + [["scalar", "acc/train", step, 0.25 * step] for step in (3, 1, 2)]
         + [["scalars", "loss", step, {"train": 2.0 / (step + 1), "valid": 3.0 / (step + 1)}]
            for step in range(3)]],
        ["lr_0.1", [["scalar", "loss/train", step, 1.5 - 0.25 * step] for step in range(1, 4)]
         + [["scalars", "cmp", 7, {"a": 0.75}]]],
    ]
    expected = {
        (".", "acc/valid"): ("top", [(s, 0.5 + 0.125 * s) for s in range(3)]),
        (".", "acc/train"): ("top", [(s, 0.25 * s) for s in (1, 2, 3)]),
        ("loss_train", "loss"): ("scalars", [(s, 2.0 / (s + 1)) for s in range(3)]),
        ("loss_valid", "loss"): ("scalars", [(s, 3.0 / (s + 1)) for s in range(3)]),
        ("lr_0.1", "loss/train"): ("run", [(s, 1.5 - 0.25 * s) for s in range(1, 4)]),
        (os.path.join("lr_0.1", "cmp_a"), "cmp"): ("nested", [(7, 0.75)]),
    }
    return layout, expected


@pytest.mark.read_scalars
def test_read_scalars_finds_every_curve(student):
    layout, expected = _layout()
    out = student.probe(probe_read_scalars, layout, label="`read_scalars`")
    where = "read_scalars on a log_dir holding curves of add_scalar, add_scalars and a run in a sub-directory"
    expect("type" not in out, f"{where}: should return a dict, but it returned a {out.get('type')}.")
    expect("bad_key" not in out, f"{where}: keys should be (run, tag) pairs of two strings, found a key that "
                                 f"is {out.get('bad_key')}.")
    expect("bad_points" not in out,
           f"{where}: each curve should be a list of (step, value) pairs, found an entry that is "
           f"{out.get('bad_points')}.")
    for _, _, points in out["curves"]:
        for step_kinds, value_kinds, _, _ in points:
            expect("int" in step_kinds and "bool" not in step_kinds and "float" in value_kinds,
                   f"{where}: each point should be a pair (int step, float value), found a pair of "
                   f"({step_kinds[0]}, {value_kinds[0]}): use (event.step, event.value) of each ScalarEvent.")
    absolute = [run for run, _, _ in out["curves"] if os.path.isabs(run)]
    expect(not absolute, f"{where}: runs should be paths relative to log_dir (os.path.relpath(directory, "
                         f"log_dir), '.' for log_dir itself), but {len(absolute)} key(s) hold a full path.")
    found = {}
    for run, tag, points in out["curves"]:
        found[(os.path.normpath(run) if run else ".", tag)] = [(int(step), value) for _, _, step, value in points]
    missing = [key for key in expected if key not in found]
    if missing:
        kinds = sorted({expected[key][0] for key in missing}, key=list(CURVE_KINDS).index)
        fail(f"{where}: {len(missing)} of the {len(expected)} curves were not found: the "
             f"{'; the '.join(CURVE_KINDS[k] for k in kinds)}. TensorBoard reads every directory below log_dir "
             f"that holds event files; so must read_scalars.")
    extra = [key for key in found if key not in expected]
    expect(not extra, f"{where}: {len(extra)} key(s) name no curve below log_dir: the run is the directory of "
                      f"the event files relative to log_dir ('.' for log_dir itself, e.g. 'lr_0.03/loss_train'), "
                      f"the tag is the tag as logged.")
    for key, (_, points) in expected.items():
        steps = [step for step, _ in found[key]]
        want = [step for step, _ in points]
        expect(steps == want,
               f"{where}: one curve has points at steps {steps}, expected {want}: one point per logged value, "
               f"sorted by step (events are stored in the order they were written, which need not be step order).")
        expect_close(torch.tensor([value for _, value in found[key]], dtype=torch.float64),
                     torch.tensor([value for _, value in points], dtype=torch.float64),
                     f"{where}: the values read back", rtol=1e-6, atol=1e-7)
