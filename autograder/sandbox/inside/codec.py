"""Data-only messages between the judging process and the student's process.

A message is JSON plus raw tensor bytes; decoding never executes anything and never unpickles.
Supported values: None, bool, int, float, str, list, tuple, dict (any supported keys), torch.Tensor
(CPU tensors with data; meta tensors as shape/dtype only), torch.dtype, torch.device, torch.Size.
Wire format: 4-byte big-endian length of the JSON header, the header, then the tensor blobs back to back.
"""
import json
import struct

import torch

MAX_MESSAGE_BYTES = 1 << 30

_DTYPES = {
    name: getattr(torch, name)
    for name in ("float16", "bfloat16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64",
                 "bool", "complex64", "complex128")
}
_DTYPE_NAMES = {dtype: name for name, dtype in _DTYPES.items()}


class CodecError(ValueError):
    """A value cannot be encoded, or a message is malformed."""


def _type_name(value):
    return f"{type(value).__module__}.{type(value).__qualname__}".replace("builtins.", "")


def encode(value):
    """Encode ``value`` into bytes (see the module docstring for what is supported)."""
    blobs = []
    header = json.dumps(_enc(value, blobs, 0), allow_nan=True).encode()
    return struct.pack(">I", len(header)) + header + b"".join(blobs)


def _enc(value, blobs, depth):
    if depth > 64:
        raise CodecError("value nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**62 else {"__bigint__": str(value)}
    if isinstance(value, float):
        return value
    if isinstance(value, torch.Tensor):
        return _enc_tensor(value, blobs)
    if isinstance(value, torch.Size):
        return {"__tuple__": [int(v) for v in value]}
    if isinstance(value, torch.dtype):
        if value not in _DTYPE_NAMES:
            raise CodecError(f"unsupported dtype {value}")
        return {"__dtype__": _DTYPE_NAMES[value]}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, list):
        return [_enc(v, blobs, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [_enc(v, blobs, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"__dict__": [[_enc(k, blobs, depth + 1), _enc(v, blobs, depth + 1)] for k, v in value.items()]}
    # numpy scalars and arrays, without importing numpy here
    if type(value).__module__ == "numpy":
        if hasattr(value, "shape") and getattr(value, "shape") != ():
            return _enc_tensor(torch.as_tensor(value), blobs)
        return _enc(value.item(), blobs, depth + 1)
    raise CodecError(f"cannot send a value of type {_type_name(value)}")


def _enc_tensor(tensor, blobs):
    # A subclass may override any method: read the data as a plain tensor, with torch functions undisturbed.
    with torch._C.DisableTorchFunctionSubclass():
        tensor = torch._C.TensorBase.as_subclass(tensor, torch.Tensor)
        tensor = torch._C.TensorBase.detach(tensor)
    return _enc_plain_tensor(tensor, blobs)


def _enc_plain_tensor(tensor, blobs):
    if tensor.dtype not in _DTYPE_NAMES:
        raise CodecError(f"unsupported tensor dtype {tensor.dtype}")
    meta = {"dtype": _DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape), "device": str(tensor.device),
            "requires_grad": False}
    if tensor.device.type == "meta":
        meta["blob"] = None
        return {"__tensor__": meta}
    if tensor.is_sparse or tensor.layout != torch.strided:
        tensor = tensor.to_dense()
    data = tensor.cpu().contiguous()
    if data.dtype == torch.bfloat16:
        raw = data.view(torch.int16).numpy().tobytes()
    elif data.dtype.is_complex:
        raw = torch.view_as_real(data).numpy().tobytes()
    else:
        raw = data.numpy().tobytes()
    meta["blob"] = len(blobs)
    meta["nbytes"] = len(raw)
    blobs.append(raw)
    return {"__tensor__": meta}


def decode(data):
    """Decode bytes made by ``encode``; raises CodecError on anything malformed."""
    if len(data) < 4 or len(data) > MAX_MESSAGE_BYTES:
        raise CodecError("message has an invalid size")
    (size,) = struct.unpack(">I", data[:4])
    if 4 + size > len(data):
        raise CodecError("message header is truncated")
    try:
        header = json.loads(data[4:4 + size].decode())
    except (ValueError, RecursionError) as exc:   # bad UTF-8 or JSON, huge numbers, deep nesting
        raise CodecError(f"message header is not valid JSON: {str(exc)[:100]}") from None
    offsets = [4 + size]
    try:
        return _dec(header, data, offsets, 0)
    except (RecursionError, OverflowError, MemoryError, RuntimeError, TypeError, ValueError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"malformed message: {type(exc).__name__}") from None


def _dec(node, data, offsets, depth):
    if depth > 64:
        raise CodecError("message nested too deeply")
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_dec(v, data, offsets, depth + 1) for v in node]
    if not isinstance(node, dict) or len(node) != 1:
        raise CodecError("malformed message node")
    (tag, body), = node.items()
    if tag == "__tuple__" and isinstance(body, list):
        return tuple(_dec(v, data, offsets, depth + 1) for v in body)
    if tag == "__dict__" and isinstance(body, list):
        out = {}
        for pair in body:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise CodecError("malformed dict entry")
            key = _dec(pair[0], data, offsets, depth + 1)
            try:
                hash(key)
            except TypeError:
                raise CodecError("unhashable dict key") from None
            out[key] = _dec(pair[1], data, offsets, depth + 1)
        return out
    if tag == "__bigint__" and isinstance(body, str):
        return int(body)
    if tag == "__dtype__" and body in _DTYPES:
        return _DTYPES[body]
    if tag == "__device__" and isinstance(body, str):
        try:
            return torch.device(body)
        except (RuntimeError, ValueError):
            raise CodecError(f"invalid device {body!r}") from None
    if tag == "__tensor__" and isinstance(body, dict):
        return _dec_tensor(body, data, offsets)
    raise CodecError(f"unknown message node {tag!r}")


def _dec_tensor(meta, data, offsets):
    dtype = _DTYPES.get(meta.get("dtype"))
    shape = meta.get("shape")
    if dtype is None or not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise CodecError("malformed tensor header")
    numel = 1
    for s in shape:
        numel *= s
    if meta.get("blob") is None:
        return torch.empty(shape, dtype=dtype, device="meta")
    nbytes = meta.get("nbytes")
    itemsize = torch.empty((), dtype=dtype).element_size()
    if not isinstance(nbytes, int) or nbytes != numel * itemsize:
        raise CodecError("tensor size does not match its shape")
    start = offsets[0]
    if start + nbytes > len(data):
        raise CodecError("tensor data is truncated")
    offsets[0] = start + nbytes
    raw = bytearray(data[start:start + nbytes])
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    if dtype == torch.bfloat16:
        return torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16).reshape(shape).clone()
    return torch.frombuffer(raw, dtype=dtype).reshape(shape).clone()
