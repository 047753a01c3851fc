"""Planar contours of a mask slice, and masks from contours (docs/rtstruct.md).

Coordinates are a slice's *corner grid*: pixel ``(row r, column c)`` is the unit square
``x in [c, c+1], y in [r, r+1]``; its centre is ``(c + 0.5, r + 0.5)``.

:func:`voxel_edge_polygons` traces the boundary of a slice's pixels along pixel edges:
every polygon is closed and simple (two pixels that touch only at a corner belong to
separate polygons: the inside is 4-connected), keeps only its corners (no two
consecutive edges in one direction), and runs with the inside on its right (y down):
outer boundaries one way round, holes the other. :func:`fill_even_odd` gives back the
pixels whose centre lies inside an odd number of polygons, so holes and islands in holes
come back, and ``fill_even_odd(voxel_edge_polygons(m), m.shape) == m`` for every mask
(no pixel centre lies on a voxel edge: the rule has no ties there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "fill_even_odd",
    "fill_stack",
    "fill_window",
    "inset",
    "inset_polygons",
    "stack_polygons",
    "voxel_edge_polygons",
]

# The sides of a pixel, as edges with the inside on their right (y down): top (+x),
# right (+y), bottom (-x), left (-y); turning right is the next side. Their start corners
# relative to the pixel's top-left one:
_DX = np.array([0, 1, 1, 0], dtype=np.int64)
_DY = np.array([0, 0, 1, 1], dtype=np.int64)


_ACROSS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])  # the neighbour across each side
_FORWARD = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]])  # the next pixel along each side


def voxel_edge_polygons(mask: NDArray[Any]) -> list[NDArray[np.int64]]:
    """The pixel-edge boundary of a 2-D mask's non-zero pixels, as closed polygons.

    Parameters
    ----------
    mask : numpy.ndarray
        2-D, ``(rows, columns)``; non-zero is inside.

    Returns
    -------
    list of numpy.ndarray
        One ``(n, 2)`` array of corner points ``(x, y)`` per polygon (n >= 4), the
        first point not repeated at the end; polygons in the order of their first edge
        (row by row).

    Examples
    --------
    >>> m = np.zeros((3, 3), bool); m[1, 1] = True
    >>> voxel_edge_polygons(m)[0].tolist()
    [[1, 1], [2, 1], [2, 2], [1, 2]]
    """
    inside = np.asarray(mask) != 0
    if inside.ndim != 2:
        raise ValueError(f"a mask slice is 2-D, got shape {inside.shape}")
    return [polygon for _, polygon in stack_polygons(inside[None])]


def stack_polygons(masks: NDArray[Any]) -> list[tuple[int, NDArray[np.int64]]]:
    """:func:`voxel_edge_polygons` of every slice of a ``(slices, rows, columns)`` stack
    at once: ``(slice index, polygon)`` pairs, slice by slice."""
    inside = np.asarray(masks) != 0
    slices, rows, columns = inside.shape
    width = columns + 2
    plane = (rows + 2) * width
    padded = np.zeros((slices, rows + 2, width), dtype=bool)
    padded[:, 1:-1, 1:-1] = inside
    flat = padded.ravel()  # pixel k's neighbours: k - width (above), k + 1, k + width, k - 1
    size = flat.size
    core = flat[width : size - width]
    closed = flat[: size - 2 * width] & flat[width + 1 : size - width + 1]
    closed &= flat[2 * width :]
    closed &= flat[width - 1 : size - width - 1]
    # the pixels with an outside neighbour, found in one pass over the stack
    pixels = np.flatnonzero(core & ~closed) + width
    # an edge: side s of an inside pixel k whose neighbour across it is outside, with the
    # inside on its right (top +x, right +y, bottom -x, left -y); numbered s * size + k,
    # so that the numbers come sorted side by side, pixel by pixel
    ids = np.concatenate(
        [
            pixels[~flat[pixels + across]] + side * size
            for side, across in enumerate(_ACROSS @ (width, 1))
        ]
    )
    if not len(ids):
        return []
    side, pixel = np.divmod(ids, size)
    # the edge after each, from the two pixels ahead of its end: ahead (the same row of
    # pixels) outside - turn right, around the same pixel (also where two pixels touch
    # at a corner: the inside is 4-connected); ahead-left inside - turn left onto it;
    # else straight on along the pixel ahead
    forward, outward = (_FORWARD @ (width, 1))[side], (_ACROSS @ (width, 1))[side]
    ahead = pixel + forward
    ahead_out = ~flat[ahead]
    ahead_left = ahead + outward
    left_in = flat[ahead_left] & ~ahead_out
    following = np.where(
        ahead_out,
        ((side + 1) % 4) * size + pixel,
        np.where(left_in, ((side + 3) % 4) * size + ahead_left, side * size + ahead),
    )
    after = np.searchsorted(ids, following)
    corner = np.zeros(len(ids), dtype=bool)  # the direction changes from the edge before
    corner[after[ahead_out | left_in]] = True
    order, lengths, corners = _loops(after, corner)
    edge = corners[order]
    z, rest = np.divmod(pixel[edge], plane)
    row, column = np.divmod(rest, width)
    points = np.stack([column - 1 + _DX[side[edge]], row - 1 + _DY[side[edge]]], axis=1)
    ends = np.cumsum(lengths)
    firsts = z[ends - lengths].tolist()
    return list(zip(firsts, np.split(points, ends[:-1].tolist()), strict=True))


def _loops(
    after: NDArray[np.int64], corner: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The polygons: from each corner edge to the next along ``after`` (found for all at
    once by pointer jumping: a straight run of n edges takes log2(n) array steps), then
    the loops of corners listed, each from its first corner (pointer jumping again: each
    corner's loop and its place in it). The corners' order, the loops' lengths and the
    corner edges."""
    ahead = after.copy()  # ends as: the first corner edge after each edge
    waiting = ~corner[ahead]
    while waiting.any():
        ahead[waiting] = ahead[ahead[waiting]]
        waiting = ~corner[ahead]
    corners = np.flatnonzero(corner)
    position = np.full(len(after), -1, dtype=np.int64)
    position[corners] = np.arange(len(corners))
    order, lengths = _cycles(position[ahead[corners]])  # corner -> the next corner
    return order, lengths, corners


def _cycles(following: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The cycles of a permutation, each from its smallest member and in the order of
    those: the members one cycle after another, and each cycle's length."""
    count = len(following)
    every = np.arange(count)
    lowest, step = every.copy(), following.copy()  # each member's cycle: its smallest member
    while True:
        lower = np.minimum(lowest, lowest[step])
        if np.array_equal(lower, lowest):  # no smaller member 2^k further: none at all
            break
        lowest, step = lower, step[step]
    tail = following == lowest  # the member before the smallest one ends the cycle
    ahead = np.where(tail, every, following)
    to_tail = (~tail).astype(np.int64)  # list ranking: steps to the cycle's end
    while True:
        further = ahead[ahead]
        if np.array_equal(further, ahead):
            break
        to_tail += to_tail[ahead]
        ahead = further
    heads = np.flatnonzero(lowest == every)
    lengths = to_tail[heads] + 1
    begins = np.zeros(count, dtype=np.int64)
    begins[heads] = np.cumsum(lengths) - lengths
    order = np.empty(count, dtype=np.int64)
    order[begins[lowest] + to_tail[lowest] - to_tail] = every
    return order, lengths


def inset(polygon: NDArray[Any], distance: float) -> NDArray[np.float64]:
    """A voxel-edge polygon moved ``distance`` (pixels, < 0.5) towards its inside: every
    corner along the bisector of its two edges (inside on the right, y down).

    With any ``distance`` between 0 and 0.5 every corner lies nearer to the centre of a
    pixel of the mask than to any other: a reader that rounds points to whole pixels and
    fills the polygon's boundary in (rt-utils) gets exactly the mask, and so does one
    that takes the centres inside (each lies ``0.5 - distance`` inside).

    Examples
    --------
    >>> inset(np.array([[1, 1], [2, 1], [2, 2], [1, 2]]), 0.25).tolist()
    [[1.25, 1.25], [1.75, 1.25], [1.75, 1.75], [1.25, 1.75]]
    """
    points = np.asarray(polygon)
    return inset_polygons(points, np.array([len(points)]), distance)


def inset_polygons(
    points: NDArray[Any], lengths: NDArray[np.int64], distance: float
) -> NDArray[np.float64]:
    """:func:`inset` of several polygons at once: their points one after the other,
    ``lengths`` points each."""
    points = np.asarray(points, dtype=np.float64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    following = np.arange(1, len(points) + 1)
    following[ends - 1] = starts  # each polygon closes on its first point
    preceding = np.arange(-1, len(points) - 1)
    preceding[starts] = ends - 1
    outgoing = points[following] - points
    incoming = points - points[preceding]

    def inward(step: NDArray[np.float64]) -> NDArray[np.float64]:
        unit = np.sign(step)  # axis-parallel: one non-zero coordinate
        return np.stack([-unit[:, 1], unit[:, 0]], axis=1)  # right of the direction, y down

    return points + distance * (inward(incoming) + inward(outgoing))


def fill_even_odd(
    polygons: list[NDArray[Any]], shape: tuple[int, int], *, boundary: bool = True
) -> NDArray[np.bool_]:
    """The pixels of a ``shape`` slice whose centre lies inside an odd number of
    ``polygons`` (each ``(n, 2)`` points ``(x, y)`` on the corner grid, closed
    implicitly; any real coordinates), and, with ``boundary``, whose centre lies on one
    of their edges (within 1/100 of a pixel: writers that draw through centres write
    them in float32, rt-utils among them).

    Voxel-edge polygons pass through no pixel centre, so the boundary rule changes
    nothing for them; contours drawn through the boundary pixels' centres (OpenCV's
    ``findContours``, rt-utils, many planning systems) keep those pixels. Without it a
    centre on an edge counts as inside only when the edge is to its left (half-open).

    Examples
    --------
    >>> square = np.array([[1, 1], [3, 1], [3, 3], [1, 3]])
    >>> fill_even_odd([square], (4, 4)).astype(int).tolist()
    [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    """
    out = np.zeros(shape, dtype=bool)
    r0, c0, window = fill_window(polygons, shape, boundary=boundary)
    out[r0 : r0 + window.shape[0], c0 : c0 + window.shape[1]] = window
    return out


def fill_window(
    polygons: list[NDArray[Any]], shape: tuple[int, int], *, boundary: bool = True
) -> tuple[int, int, NDArray[np.bool_]]:
    """:func:`fill_even_odd` of only the window the polygons span: ``(first row, first
    column, window)``; the rest of the slice is outside."""
    given = [np.asarray(p, dtype=np.float64) for p in polygons if len(p) >= 3]
    if not given:
        return 0, 0, np.zeros((0, 0), dtype=bool)
    counts = np.array([len(p) for p in given])
    _, r0, c0, window = fill_stack(
        np.concatenate(given), counts, np.zeros(len(given), np.int64), shape, boundary=boundary
    )
    return r0, c0, window[0] if len(window) else np.zeros((0, 0), dtype=bool)


def fill_stack(
    points: NDArray[np.float64],
    counts: NDArray[Any],
    levels: NDArray[Any],
    shape: tuple[int, int],
    *,
    boundary: bool = True,
) -> tuple[NDArray[np.int64], int, int, NDArray[np.bool_]]:
    """:func:`fill_even_odd` of many polygons on many planes at once (one ROI's contours).

    Parameters
    ----------
    points : numpy.ndarray
        ``(n, 2)`` corner-grid points of every polygon, one after the other.
    counts : numpy.ndarray
        Points per polygon (>= 3 each).
    levels : numpy.ndarray
        The plane of each polygon (any integers).
    shape : tuple of int
        ``(rows, columns)`` of a plane.

    Returns
    -------
    planes, first_row, first_column, window
        The distinct planes (sorted), and for each a filled window of the rows and
        columns every polygon spans (``window[i]`` is plane ``planes[i]``).
    """
    rows, columns = shape
    planes, plane_of = np.unique(np.asarray(levels, dtype=np.int64), return_inverse=True)
    counts = np.asarray(counts, dtype=np.int64)
    low, high = points.min(axis=0), points.max(axis=0)
    c0 = int(np.clip(np.floor(low[0] - 1), 0, columns))
    r0 = int(np.clip(np.floor(low[1] - 1), 0, rows))
    c1 = int(np.clip(np.ceil(high[0] + 1), 0, columns))
    r1 = int(np.clip(np.ceil(high[1] + 1), 0, rows))
    height, width = max(r1 - r0, 0), max(c1 - c0, 0)
    if not height or not width:
        return planes, r0, c0, np.zeros((len(planes), height, width), dtype=bool)
    x0 = points[:, 0] - c0
    y0 = points[:, 1] - r0
    starts = np.cumsum(counts) - counts
    after = np.arange(len(points)) + 1
    after[starts + counts - 1] = starts  # each polygon closes on its first point
    x1, y1 = x0[after], y0[after]
    plane = np.repeat(plane_of, counts)  # per point: the index of its plane
    toggles = np.zeros((len(planes), height, width + 1), dtype=np.uint8)  # parity is all
    on_edge = np.zeros((len(planes), height, width), dtype=bool)
    bottom, top = np.minimum(y0, y1), np.maximum(y0, y1)
    # pixel rows whose centre y = r + 0.5 satisfies bottom <= y < top
    first = np.maximum(np.ceil(bottom - 0.5), 0).astype(np.int64)
    last = np.minimum(np.ceil(top - 0.5), height).astype(np.int64)  # exclusive
    crossings = np.maximum(last - first, 0)
    edge = np.repeat(np.arange(len(points)), crossings)
    step = np.arange(int(crossings.sum())) - np.repeat(np.cumsum(crossings) - crossings, crossings)
    row = first[edge] + step
    t = (row + 0.5 - y0[edge]) / (y1[edge] - y0[edge])
    x = x0[edge] + t * (x1[edge] - x0[edge])
    # centres c + 0.5 >= x are right of the crossing: toggle from that column on
    column = np.clip(np.ceil(x - 0.5), 0, width).astype(np.int64)
    np.add.at(toggles, (plane[edge], row, column), 1)
    inside = (np.bitwise_xor.accumulate(toggles, axis=2)[:, :, :width] & 1).astype(bool)
    if boundary:
        _mark_centres_on_edges(on_edge, plane, plane[edge], row, x, x0, y0, x1, y1)
        inside |= on_edge
    return planes, r0, c0, inside


_ON: float = 0.01  # of a pixel: a contour this close to a centre passes through it


def _near_centre(value: NDArray[np.float64]) -> NDArray[np.bool_]:
    centre = value - 0.5
    return np.asarray(np.abs(centre - np.round(centre)) <= _ON)


def _mark_centres_on_edges(
    on_edge: NDArray[np.bool_],
    plane: NDArray[np.int64],
    crossing_plane: NDArray[np.int64],
    row: NDArray[np.int64],
    x: NDArray[np.float64],
    x0: NDArray[np.float64],
    y0: NDArray[np.float64],
    x1: NDArray[np.float64],
    y1: NDArray[np.float64],
) -> None:
    """Mark the pixel centres that polygon edges pass through: where an edge crosses a
    centre row at a centre, the edges' end points, and horizontal edges on a centre row."""
    _, rows, columns = on_edge.shape

    def mark(p: NDArray[np.int64], r: NDArray[np.int64], c: NDArray[np.int64]) -> None:
        keep = (r >= 0) & (r < rows) & (c >= 0) & (c < columns)
        on_edge[p[keep], r[keep], c[keep]] = True

    hit = _near_centre(x)
    mark(crossing_plane[hit], row[hit], np.round(x[hit] - 0.5).astype(np.int64))
    ends = _near_centre(x0) & _near_centre(y0)
    mark(plane[ends], np.round(y0[ends] - 0.5).astype(np.int64),
         np.round(x0[ends] - 0.5).astype(np.int64))  # fmt: skip
    flat = np.flatnonzero((np.abs(y0 - y1) <= _ON) & _near_centre(y0))
    if flat.size:
        left, right = np.minimum(x0[flat], x1[flat]), np.maximum(x0[flat], x1[flat])
        start = np.ceil(left - 0.5 - _ON).astype(np.int64)
        count = np.maximum(np.floor(right - 0.5 + _ON).astype(np.int64) - start + 1, 0)
        which = np.repeat(np.arange(flat.size), count)
        offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        r = np.round(y0[flat] - 0.5).astype(np.int64)
        mark(plane[flat][which], r[which], start[which] + offset)
