"""The range coder: numbers round-trip, the payload is read exactly, damage is flagged."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medmask.codecs import rangecoder as rc

GROUPS = 3

numbers = st.lists(
    st.tuples(
        st.integers(0, GROUPS - 1),
        st.booleans(),
        # mostly small values, as in masks, plus some needing long Exp-Golomb codes
        st.one_of(st.integers(-6, 6), st.integers(-(2**31), 2**31)),
    ),
    max_size=300,
)


def encode(items: list[tuple[int, bool, int]]) -> bytes:
    out = np.empty(64 + 12 * len(items), np.uint8)
    probs = rc.new_model(GROUPS)
    state = rc.new_encoder()
    for group, signed, value in items:
        state = rc.encode_number(out, probs, group, signed, value, state)
    size = rc.finish(out, state)
    assert size <= out.size
    return out[:size].tobytes()


def decode(payload: bytes, items: list[tuple[int, bool, int]]) -> tuple[list[int], int, int]:
    data = np.frombuffer(payload, np.uint8)
    probs = rc.new_model(GROUPS)
    state = rc.start(data)
    values = []
    for group, signed, _ in items:
        value, state = rc.decode_number(data, probs, group, signed, state)
        values.append(value)
    return values, state[2], state[3]


def as_coded(items: list[tuple[int, bool, int]]) -> list[tuple[int, bool, int]]:
    """Unsigned numbers are coded as magnitudes."""
    return [(g, signed, v if signed else abs(v)) for g, signed, v in items]


@settings(max_examples=200, deadline=None)
@given(numbers)
def test_numbers_round_trip_and_the_payload_is_read_to_its_end(
    items: list[tuple[int, bool, int]],
) -> None:
    items = as_coded(items)
    payload = encode(items)
    assert payload[0] == 0  # LZMA's leading byte
    values, used, damage = decode(payload, items)
    assert values == [v for _, _, v in items]
    assert used == len(payload)
    assert damage == 0


def test_adaptation_makes_skewed_data_cheap() -> None:
    # 10,000 zeros and a few ones: an adaptive model spends well under a bit each
    items = [(0, True, 1 if i % 500 == 0 else 0) for i in range(10_000)]
    assert len(encode(items)) < 10_000 / 8 / 10


def test_a_truncated_payload_reads_past_its_end() -> None:
    items = as_coded([(i % GROUPS, True, (i * 37) % 11 - 5) for i in range(400)])
    payload = encode(items)
    for cut in range(len(payload)):
        _, used, _ = decode(payload[:cut], items)
        assert used > cut


def test_damage_flags() -> None:
    data = np.frombuffer(b"\x01\x00\x00\x00\x00", np.uint8)
    assert rc.start(data)[3] & rc.DAMAGED_START  # the first byte must be 0
    data = np.frombuffer(b"\x00\xff\xff\xff\xff", np.uint8)
    assert rc.start(data)[3] & rc.DAMAGED_START  # code must be below 0xFFFFFFFF
    # a code just below the range and ever-1 bits: an Exp-Golomb prefix that never ends
    data = np.frombuffer(b"\x00\xff\xff\xff\xfe" + b"\xff" * 64, np.uint8)
    _, state = rc.decode_number(data, rc.new_model(1), 0, False, rc.start(data))
    assert state[3] & rc.DAMAGED_GOLOMB


_CHILD = """
import numpy as np
from medmask.codecs import rangecoder as rc
out = np.zeros(64, np.uint8)
state = rc.encode_number(out, rc.new_model(1), 0, True, -123456, rc.new_encoder())
size = rc.finish(out, state)
state = rc.start(out[:size])
print(rc.decode_number(out[:size], rc.new_model(1), 0, True, state)[0])
"""


def _no_cache_place(tmp_path: Path) -> dict[str, str]:
    """A child's environment where numba finds no place of its own to cache: only the
    user-chosen locator (``NUMBA_CACHE_DIR``, unset) - as for medmask installed where the
    user cannot write, with a home folder that is not writable (``docker run --user``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env |= {"NUMBA_CACHE_LOCATOR_CLASSES": "UserProvidedCacheLocator", "TMPDIR": str(tmp_path)}
    return env


def _code_a_number_without_a_cache_place(tmp_path: Path) -> None:
    """:data:`_CHILD` run where numba has no place of its own: it codes and decodes."""
    run = subprocess.run(
        [sys.executable, "-c", _CHILD], env=_no_cache_place(tmp_path),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["-123456"]


needs_locator_setting = pytest.mark.skipif(
    not hasattr(numba.config, "CACHE_LOCATOR_CLASSES"),
    reason="numba before 0.63 has no NUMBA_CACHE_LOCATOR_CLASSES to take its places away",
)


@needs_locator_setting
@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners")
def test_without_a_place_to_cache_the_coder_caches_in_a_private_temporary_folder(
    tmp_path: Path,
) -> None:
    """numba refuses to compile at all where it cannot cache ("no locator available"):
    the coder then caches in the user's own folder in TMPDIR, mode 700."""
    _code_a_number_without_a_cache_place(tmp_path)
    folder = tmp_path / f"medmask-numba-{os.getuid()}"
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0
    assert any(folder.rglob("*.nbi")) and any(folder.rglob("*.nbc"))


@needs_locator_setting
@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners")
def test_a_cache_folder_others_can_write_is_not_used(tmp_path: Path) -> None:
    """A ``medmask-numba-<uid>`` that others can write (planted: numba loads its cache
    files as pickles) is left alone: the coder compiles without a cache, and works."""
    folder = tmp_path / f"medmask-numba-{os.getuid()}"
    folder.mkdir()
    folder.chmod(0o777)
    _code_a_number_without_a_cache_place(tmp_path)
    assert list(folder.iterdir()) == []
