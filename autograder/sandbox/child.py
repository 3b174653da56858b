"""The student's process as the judge starts and hears it: the environment it starts with, and its output,
drained in the background and bounded."""
import collections
import os
import threading

TEXT_CHARS = 200                       # longest text from the student's process that reaches a report


def base_env(limits):
    """The environment of the student's process (before the box adds its home and library)."""
    return {"PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "COURSE_GRADING": "1", "COURSE_QUICK": "1", "TQDM_DISABLE": "1",
            "OMP_NUM_THREADS": str(limits.threads), "MKL_NUM_THREADS": str(limits.threads), "LANG": "C.UTF-8"}


def text(value, limit=TEXT_CHARS):
    """A one-line, bounded string made from anything the student's process sent."""
    if not isinstance(value, str):
        value = "" if value is None else type(value).__name__
    value = " ".join(value.split())
    return value if len(value) <= limit else value[:limit - 4] + " ..."


class Output:
    """Drains what the student's process prints; keeps only the last ``limit`` bytes."""

    def __init__(self, stream, limit):
        self.tail = collections.deque()
        self.size = 0
        self.total = 0
        self.limit = limit
        self.thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self.thread.start()

    def _drain(self, stream):
        try:
            while True:
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    break
                self.total += len(chunk)
                self.tail.append(chunk)
                self.size += len(chunk)
                while self.size > self.limit:
                    if len(self.tail) > 1:
                        self.size -= len(self.tail.popleft())
                    else:
                        self.tail[0] = self.tail[0][-self.limit:]
                        self.size = len(self.tail[0])
        except (OSError, ValueError):
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass

    def last_line(self):
        data = b"".join(self.tail)[-400:].decode(errors="replace").strip().splitlines()
        return text(data[-1]) if data else ""
