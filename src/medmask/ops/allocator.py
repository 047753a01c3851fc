"""Room for glibc's allocator while a Dask worker packs (docs/cohorts.md, "On Dask").

Dask's nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536`` so that freed
memory goes back to the operating system at once. Setting that variable also fixes
glibc's mmap threshold at 128 KiB (it otherwise grows to fit the blocks a program reuses),
so every mask-sized buffer packing makes - a decompressed NIfTI, a bounding-box test, a
cropped copy - is a fresh ``mmap`` whose pages fault in one by one and a ``munmap`` when
freed: 34 times the page faults of a plain process, and packing 1.4x slower
(benchmarks/cohort_pack.py). :func:`roomy_allocator` lets the heap keep such buffers for
the length of one batch and puts the worker's own settings back afterwards, returning the
memory with ``malloc_trim`` as Dask intended. It changes nothing where the variable is
not set, or where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["roomy_allocator"]

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_GLIBC_MMAP_DEFAULT = 128 * 1024
_MMAP_ROOM = 32 * 2**20  # glibc's largest mmap threshold on 64-bit systems
_TRIM_ROOM = 64 * 2**20


def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl and others: no libc.so.6
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _setting(name: str) -> int | None:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return None


@contextmanager
def roomy_allocator() -> Iterator[None]:
    """Within: buffers up to 32 MiB come from the heap and stay there for reuse, when this
    process was started with a small ``MALLOC_TRIM_THRESHOLD_`` (Dask's workers).

    On leaving, the thresholds the process started with are set again and freed memory is
    returned to the operating system.
    """
    trim = _setting("MALLOC_TRIM_THRESHOLD_")
    libc = _glibc() if trim is not None and trim < _TRIM_ROOM else None
    if libc is None or trim is None:
        yield
        return
    mmap = _setting("MALLOC_MMAP_THRESHOLD_") or _GLIBC_MMAP_DEFAULT
    libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_ROOM)
    libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_ROOM)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, mmap)
        libc.mallopt(_M_TRIM_THRESHOLD, trim)
        libc.malloc_trim(0)
