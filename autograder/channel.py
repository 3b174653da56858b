"""Length-prefixed frames over pipes, with deadlines. No torch here: the judge spawns the sandbox first."""
import os
import select
import struct
import time

MAX_FRAME = 1 << 30


class ChannelClosed(EOFError):
    """The other side closed the pipe (it exited or crashed)."""


class ChannelTimeout(TimeoutError):
    """No complete frame arrived before the deadline."""


def send_frame(fd, payload):
    """Write one frame (8-byte big-endian length, then the payload)."""
    data = struct.pack(">Q", len(payload)) + payload
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd, size, deadline):
    chunks, remaining = [], size
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeout()
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise ChannelTimeout()
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise ChannelClosed()
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_frame(fd, timeout=None):
    """Read one frame; ChannelTimeout after ``timeout`` seconds, ChannelClosed at end of file."""
    deadline = None if timeout is None else time.monotonic() + timeout
    (size,) = struct.unpack(">Q", _read_exact(fd, 8, deadline))
    if size > MAX_FRAME:
        raise ChannelClosed()
    return _read_exact(fd, size, deadline)
