"""Header layouts kept between files, so the next image of a series is checked, not walked.

Within a series the files share their element layout up to the pixel module: the same
tags with the same VRs and nearly all the same value lengths (in the real CT series in
../shared/data only SOPInstanceUID and one referenced UID change length). When two
files in a row had the same tags, :class:`LayoutCache` keeps their layout: each run of
elements whose headers did not change becomes one :class:`struct.Struct`, unpacked and
compared in one call; elements whose length changed, and sequences of undefined
length, stay single steps taken as the walk takes them.

Following a layout is exact, not a guess: every element header the walk would read is
read at the same position and compared with the remembered one, so a match means the
walk would have taken the very same steps and found the same values. Any difference
and the file is walked as usual (and the layout learns from it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .tagwalk import (
    EXPLICIT_SHORT,
    LAST_NEEDED,
    NEEDED,
    TAG,
    UINT,
    UNDEFINED,
    Found,
    HandOverError,
    Record,
    skip_undefined,
)

__all__ = ["Layout", "LayoutCache", "follow"]


@dataclass(frozen=True)
class _Run:
    """Consecutive elements checked in one call: their headers, values skipped."""

    headers: struct.Struct
    expected: tuple[object, ...]
    span: int  # from the first header to past the last value
    needed: tuple[tuple[int, bytes, int, int], ...]  # tag, VR, value offset in the run, length


@dataclass(frozen=True)
class _Step:
    """One element read as the walk reads it (its length may differ from file to file)."""

    tag: int
    vr: bytes
    size: int  # header size, 8 or 12


@dataclass(frozen=True)
class Layout:
    """The elements of the last file walked, which of them change length, and the plan."""

    records: tuple[Record, ...]
    variable: tuple[bool, ...]
    segments: tuple[_Run | _Step, ...]  # empty: seen once, nothing to follow yet


class LayoutCache:
    """The layout of the latest header walked (one: its size is bounded by one header's
    elements); ``hits`` and ``misses`` count its use. A :class:`~.fastheader.FastReader`
    owns one.

    One reference is swapped whole, so threads sharing a cache can only make it less
    useful, never wrong: :func:`follow` checks every header it relies on.
    """

    def __init__(self) -> None:
        self.layout: Layout | None = None
        self.hits = 0
        self.misses = 0

    def remember(self, records: list[Record]) -> None:
        """Learn from a file walked in full (``records``: what the walk stepped over)."""
        previous = self.layout
        if previous is None or len(previous.records) != len(records):
            self.layout = Layout(tuple(records), (), ())
            return
        if any(old[:3] != new[:3] for old, new in zip(previous.records, records, strict=True)):
            self.layout = Layout(tuple(records), (), ())
            return
        changed = previous.variable or (False,) * len(records)
        variable = tuple(
            was or old[3] != new[3] or new[3] == UNDEFINED
            for was, old, new in zip(changed, previous.records, records, strict=True)
        )
        self.layout = Layout(tuple(records), variable, _plan(records, variable))


def follow(layout: Layout, head: bytes, position: int, found: Found) -> int | None:
    """Take the layout's steps from ``position``; the stop position, or None on a difference.

    Fills ``found`` as the walk would. Raises :class:`HandOverError` where the walk
    would (a needed element of undefined length, a broken sequence).
    """
    end = len(head)
    try:
        for segment in layout.segments:
            if isinstance(segment, _Run):
                if segment.headers.unpack_from(head, position) != segment.expected:
                    return None
                for tag, vr, offset, length in segment.needed:
                    found[tag] = (vr, position + offset, length)
                position += segment.span
                continue
            group, element, vr, length = EXPLICIT_SHORT.unpack_from(head, position)
            if group << 16 | element != segment.tag or vr != segment.vr:
                return None
            if segment.size == 12:
                (length,) = UINT.unpack_from(head, position + 8)
            position += segment.size
            if length == UNDEFINED:
                if segment.tag in NEEDED:
                    raise HandOverError("undefined_length")
                position = skip_undefined(head, position, False)
                continue
            if segment.tag in NEEDED:
                found[segment.tag] = (vr, position, length)
            position += length
        if position + 8 > end:
            return None
        group, element = TAG.unpack_from(head, position)
    except struct.error:  # the layout runs past the bytes read: let the walk decide
        return None
    return position if group << 16 | element > LAST_NEEDED else None


def _plan(records: list[Record], variable: tuple[bool, ...]) -> tuple[_Run | _Step, ...]:
    segments: list[_Run | _Step] = []
    run: list[Record] = []
    for record, changes in zip(records, variable, strict=True):
        if changes:
            if run:
                segments.append(_run(run))
                run = []
            segments.append(_Step(record[0], record[1], record[2]))
        else:
            run.append(record)
    if run:
        segments.append(_run(run))
    return tuple(segments)


def _run(records: list[Record]) -> _Run:
    """One struct for the headers of ``records``: tag, VR and length as the walk reads them."""
    codes, expected, needed, offset, gap = ["<"], list[object](), [], 0, 0
    for tag, vr, size, length in records:
        codes.append(f"{gap}x{'HH2s2xI' if size == 12 else 'HH2sH'}")  # gap: the value before
        expected += [tag >> 16, tag & 0xFFFF, vr, length]
        if tag in NEEDED:
            needed.append((tag, vr, offset + size, length))
        offset += size + length
        gap = length
    return _Run(struct.Struct("".join(codes)), tuple(expected), offset, tuple(needed))
