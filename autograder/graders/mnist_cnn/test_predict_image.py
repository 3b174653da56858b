"""Checks of task `predict_image`."""
import pytest
import torch

from autograder.judge.checks import expect
from autograder.sandbox.inside.probing import recording_net

from .probes import probe_on_meta, probe_predict
from .reference import PREDICT_IMAGES, PREDICT_STATE, device_failure


@pytest.mark.predict_image
def test_predict_image(student):
    out = student.probe(probe_predict, PREDICT_STATE, PREDICT_IMAGES, label="`predict_image`")
    with torch.no_grad():
        expected = recording_net(PREDICT_STATE).eval()(PREDICT_IMAGES).argmax(dim=1).tolist()
    shapes = out["shapes"]
    expect(shapes and all(tuple(shape) == (1, 1, 28, 28) for shape in shapes),
           f"predict_image should pass a batch of one image, shape (1, 1, 28, 28), to the network; it passed "
           f"{sorted({tuple(s) for s in shapes})}.")
    state = out["state"]
    expect(torch.equal(state["norm.running_mean"], PREDICT_STATE["norm.running_mean"]),
           "predict_image ran the network in training mode: call net.eval() first.")
    expect(all(graph is None for graph in out["graphs"]),
           "predict_image ran the network with gradients enabled: predict inside torch.no_grad().")
    for item, want in zip(out["got"], expected):
        value = item["value"]
        expect(isinstance(value, int) and not isinstance(value, bool),
               f"predict_image should return a Python int, not a {item['type']}.")
        expect(value == want, f"predict_image returned {value}; the class with the highest score is {want}.")


@pytest.mark.predict_image
def test_predict_image_follows_the_model(student):
    device_failure("predict_image", student.probe(probe_on_meta, "predict_image", label="`predict_image`"),
                    "Move the image to the device of the network's parameters: "
                    "image.to(next(net.parameters()).device).")
