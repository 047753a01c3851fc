"""Voxel-edge contours of mask slices and even-odd filling: exact both ways, on any mask."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from medmask.exchange.dicom.contours import (
    fill_even_odd,
    inset,
    stack_polygons,
    voxel_edge_polygons,
)


def corners_only(polygon: np.ndarray) -> bool:
    """Axis-parallel unit-grid steps, turning at every point (no collinear points)."""
    steps = np.diff(np.vstack([polygon, polygon[:1]]), axis=0)
    vertical = steps[:, 0] == 0
    return bool(
        ((steps[:, 0] == 0) ^ (steps[:, 1] == 0)).all() and (vertical != np.roll(vertical, 1)).all()
    )


@settings(max_examples=300, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 14), st.integers(1, 14))))
def test_filling_the_contours_gives_the_mask_back(mask: np.ndarray) -> None:
    polygons = voxel_edge_polygons(mask)
    assert np.array_equal(fill_even_odd(polygons, mask.shape), mask)
    assert np.array_equal(fill_even_odd(polygons, mask.shape, boundary=False), mask)
    assert all(len(p) >= 4 and corners_only(p) for p in polygons)
    # the polygons' signed areas add up to the pixel count: outer boundaries count +,
    # holes - (inside on the right, y down)
    area = 0.0
    for p in polygons:
        x, y = p[:, 0], p[:, 1]
        area += 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    assert abs(area) == mask.sum()


def ring(size: int, outer: float, inner: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    radius = np.hypot(yy, xx)
    return (radius < outer) & (radius >= inner)


def test_holes_islands_and_pixels_touching_at_a_corner() -> None:
    mask = ring(40, 18, 10)
    mask |= ring(40, 5, 0)  # an island inside the hole
    mask[0, 0] = mask[1, 1] = True  # two pixels touching only at a corner
    polygons = voxel_edge_polygons(mask)
    assert len(polygons) == 5  # outer, hole, island, and two single pixels
    assert np.array_equal(fill_even_odd(polygons, mask.shape), mask)
    single = [p.tolist() for p in polygons if len(p) == 4]
    assert [[0, 0], [1, 0], [1, 1], [0, 1]] in single and [[1, 1], [2, 1], [2, 2], [1, 2]] in single


def test_a_stack_is_traced_slice_by_slice() -> None:
    rng = np.random.default_rng(0)
    stack = rng.random((6, 20, 17)) < 0.4
    found = stack_polygons(stack)
    for z in range(len(stack)):
        polygons = [p for s, p in found if s == z]
        assert np.array_equal(fill_even_odd(polygons, stack.shape[1:]), stack[z])
    assert [s for s, _ in found] == sorted(s for s, _ in found)
    assert stack_polygons(np.zeros((2, 3, 3), bool)) == []


def test_filling_other_tools_contours_uses_pixel_centres() -> None:
    """Contours through pixel centres (as rt-utils and planning systems draw them) fill
    the pixels whose centres lie inside, edges counted on one side only."""
    triangle = np.array([[0.5, 0.5], [6.5, 0.5], [0.5, 6.5]])  # centres of 3 corner pixels
    filled = fill_even_odd([triangle], (8, 8))
    # the centres on its edges are the boundary pixels the contour was drawn through
    assert np.array_equal(filled, np.add.outer(np.arange(8), np.arange(8)) <= 6)
    # half-open without the boundary rule: left and top edges count, the hypotenuse not
    strict = fill_even_odd([triangle], (8, 8), boundary=False)
    assert np.array_equal(strict, np.add.outer(np.arange(8), np.arange(8)) < 6)


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))),
    st.sampled_from([0.25, 0.01, 0.49]),  # what --contours inset uses, and near the limits
)
def test_inset_contours_fill_the_same_and_round_onto_the_masks_pixels(
    mask: np.ndarray, distance: float
) -> None:
    polygons = [inset(p, distance) for p in voxel_edge_polygons(mask)]
    assert np.array_equal(fill_even_odd(polygons, mask.shape, boundary=False), mask)
    for polygon in polygons:  # rounded to whole pixels, every point is a pixel of the mask
        column, row = np.round(polygon - 0.5).astype(int).T
        assert mask[row, column].all()
