"""ops/allocator.py: what Dask's MALLOC_TRIM_THRESHOLD_ costs packing, and that the room
given for a batch is taken back after it. Counted in page faults, not time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only"
)

COUNT_FAULTS = textwrap.dedent(
    """
    import resource
    import numpy as np
    from medmask.ops.allocator import roomy_allocator

    def faults():  # a 1 MiB buffer made and freed 100 times, as packing does per mask
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(100):
            buffer = np.ones(1 << 20, np.uint8)
            del buffer
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults()  # the first buffer's pages, in every setting
    outside = faults()
    with roomy_allocator():
        inside = faults()
    print(outside, inside, faults())
    """
)


def run(**env: str) -> tuple[int, int, int]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", COUNT_FAULTS], env={**environ, **env},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    outside, inside, after = map(int, done.stdout.split())
    return outside, inside, after


def test_in_a_dask_worker_buffers_are_reused_within_and_returned_after() -> None:
    outside, inside, after = run(MALLOC_TRIM_THRESHOLD_="65536")  # what Dask's nanny sets
    assert outside >= 100 * 200  # every buffer a fresh mapping: 256 pages faulted in each
    assert inside < outside // 20  # the heap keeps the buffer for the next one
    assert after >= 100 * 200  # the worker's own setting is back


def test_a_process_without_the_setting_is_left_as_it_is() -> None:
    outside, inside, after = run()
    assert outside < 100 * 200  # glibc's own threshold already reuses the buffer
    assert inside <= outside + 300 and after <= outside + 300
