"""Handing the memory freed by training back to the operating system.

Training threads allocate their epoch buffers from glibc's per-thread arenas. Freed, that memory
stays in the arenas: the main thread, where scikit-learn splits the data again to score, cannot
reuse it, so the process would hold both at once. ``malloc_trim`` returns the free pages (as
dask's workers do for the same reason); elsewhere than glibc nothing happens.
"""

import ctypes
import functools
import sys

__all__ = ["return_free_memory"]


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # another C library (musl): nothing to trim
        return None


def return_free_memory():
    """Return the process's free heap pages to the system; True when it could try."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
