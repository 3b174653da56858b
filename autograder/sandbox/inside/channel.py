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


class FrameTooLarge(ValueError):
    """The announced frame is larger than the reader accepts (it is not read)."""


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


def recv_frame(fd, timeout=None, max_size=MAX_FRAME):
    """Read one frame; ChannelTimeout after ``timeout`` seconds, ChannelClosed at end of file,
    FrameTooLarge when it announces more than ``max_size`` bytes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    (size,) = struct.unpack(">Q", _read_exact(fd, 8, deadline))
    if size > min(max_size, MAX_FRAME):
        raise FrameTooLarge(size)
    return _read_exact(fd, size, deadline)
