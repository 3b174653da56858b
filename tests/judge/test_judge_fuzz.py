"""The judge trusts nothing it receives: random and malformed frames never raise out of it.

Decoder: random bytes, truncated and bit-flipped encodings and random JSON headers decode to data or raise
CodecError, nothing else. Start-up and response handling: random structures become bounded text. End to
end: notebooks that write random frames on the grading channel (at start-up, and from a thread while
probes run) still get a valid report, and only the tasks they disturb are lost.
"""
import json
import math
import random
import struct

import pytest
import torch

from autograder.sandbox.inside import codec
from autograder.sandbox.child import TEXT_CHARS
from autograder.sandbox.student import Limits, StudentFailure, _cell_errors, student_error
from tests.notebooks import append_cell, grade, release_notebook

A = "01-datasets"


def random_json(rng, depth=0):
    """A random JSON-able value: nested containers, huge and odd strings, numbers of every kind."""
    kind = rng.randrange(12 if depth < 6 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 2**31, 2**63, -2**70, 10**30])
    if kind == 3:
        return rng.choice([0.5, -1e308, float("nan"), float("inf"), 1e-320])
    if kind == 4:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(0, 40)))
    if kind == 5:
        return "x" * rng.choice([0, 1, 10**4, 10**6])
    if kind == 6:
        return rng.choice(["__tensor__", "__tuple__", "__dict__", "__dtype__", "__device__", "__bigint__", "ok",
                           "event", "nonce", "value"])
    if kind in (7, 8):
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    if kind == 9:
        tag = rng.choice(["__tensor__", "__tuple__", "__dict__", "__dtype__", "__device__", "__bigint__"])
        return {tag: random_json(rng, depth + 1)}
    if kind == 10:
        return {"__tensor__": {"dtype": rng.choice(["float32", "int64", "bool", "nope", 3]),
                               "shape": [rng.choice([0, 1, 3, -1, 2**40, "a"]) for _ in range(rng.randrange(0, 70))],
                               "blob": rng.choice([None, 0, 1, -1, "x"]), "nbytes": rng.choice([0, 4, 12, 2**62, None])}}
    return {str(random_json(rng, depth + 1))[:20]: random_json(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def frame_for(header, blobs=b""):
    data = json.dumps(header, allow_nan=True).encode()
    return struct.pack(">I", len(data)) + data + blobs


def test_decoder_never_raises_anything_but_codec_error():
    rng = random.Random(1234)
    good = [codec.encode(v) for v in ({"x": torch.arange(6).reshape(2, 3)}, [1, 2.5, None, "s"],
                                      (torch.ones(2, dtype=torch.bfloat16), torch.float32), {"t": torch.empty(3, device="meta")})]
    cases = []
    for _ in range(1500):
        choice = rng.randrange(5)
        if choice == 0:
            cases.append(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))))
        elif choice == 1:
            base = rng.choice(good)
            cases.append(base[:rng.randrange(len(base))])
        elif choice == 2:
            base = bytearray(rng.choice(good))
            for _ in range(rng.randrange(1, 6)):
                base[rng.randrange(len(base))] ^= 1 << rng.randrange(8)
            cases.append(bytes(base))
        elif choice == 3:
            cases.append(frame_for(random_json(rng), bytes(rng.randrange(256) for _ in range(rng.randrange(0, 32)))))
        else:
            nested = "[" * rng.choice([10, 100, 5000]) + "]" * rng.choice([0, 10, 5000])
            cases.append(struct.pack(">I", len(nested)) + nested.encode())
    decoded = 0
    for data in cases:
        try:
            codec.decode(data)
            decoded += 1
        except codec.CodecError:
            pass
    assert 0 < decoded < len(cases)       # both outcomes were exercised


def test_startup_and_error_fields_become_bounded_text():
    rng = random.Random(99)
    known = {2, 5, 7}
    for _ in range(500):
        errors = _cell_errors(random_json(rng) if rng.random() < 0.5 else
                              [{"index": rng.choice([2, 5, 99, "2", None]), "type": random_json(rng),
                                "message": random_json(rng), "line": random_json(rng)} for _ in range(rng.randrange(6))],
                              known)
        assert len(errors) <= len(known)
        for error in errors:
            assert error["index"] in known
            assert isinstance(error["type"], str) and len(error["type"]) <= 40
            assert isinstance(error["message"], str) and len(error["message"]) <= TEXT_CHARS
            assert "\n" not in error["message"]
            assert error["line"] is None or isinstance(error["line"], int)
        response = random_json(rng)
        response = response if isinstance(response, dict) else {"kind": rng.choice(["missing", "student", "x"]),
                                                                 "name": random_json(rng), "type": random_json(rng),
                                                                 "message": random_json(rng), "where": random_json(rng)}
        failure = student_error(response, "`f`")
        assert isinstance(failure, StudentFailure)
        assert len(str(failure)) < 800 and "\n" not in str(failure)


RANDOM_FRAMES = """
import os, sys, random, struct, json, threading, time
rng = random.Random({seed})
fd = int(sys.argv[2])
def junk():
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if kind == 1:
        return struct.pack(">Q", rng.choice([0, 3, 1 << 20, 1 << 40])) + b"{{}}"
    header = json.dumps({{"event": rng.choice(["ready", "cell", "done"]), "ok": rng.random() < 0.5,
                         "value": rng.random(), "nonce": rng.choice([None, "x"]), "status": "bad",
                         "cell_errors": [{{"index": "x" * 1000}}] * rng.randrange(3)}}).encode()
    body = struct.pack(">I", len(header)) + header
    return struct.pack(">Q", len(body)) + body
def spray(n):
    for _ in range(n):
        try:
            os.write(fd, junk())
        except OSError:
            return
if {in_thread}:
    threading.Thread(target=lambda: (time.sleep(0.5), spray(50)), daemon=True).start()
else:
    spray(20)
"""


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_random_frames_on_the_channel_give_a_valid_report(seed):
    release = release_notebook(A)
    nb = append_cell(release, RANDOM_FRAMES.format(seed=seed, in_thread=seed % 2 == 1), index=3)
    report = grade(nb, limits=Limits(cell_timeout=20, call_timeout=30, max_restarts=2))
    data = json.loads(json.dumps(report.to_gradescope()))
    assert report.error is None
    assert 0 <= data["score"] <= 13 and math.isfinite(data["score"])
    assert report.score == 0                              # the release scores 0 with or without the noise
    assert all(len(m) <= 400 for m in report.messages)
    assert len(data["tests"]) == 8
