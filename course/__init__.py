"""The course library: finished, tested versions of what the lessons build, for later lessons to import."""
import os

__all__ = ["quick_mode"]


def quick_mode():
    """Return True when notebooks should shrink their demos (environment COURSE_QUICK=1, set in CI)."""
    return os.environ.get("COURSE_QUICK", "").strip().lower() in {"1", "true", "yes"}
