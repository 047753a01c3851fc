"""An RT Structure Set's contours judged in world space, by OpenCV, not by medmask.

For each ROI, every CLOSED_PLANAR contour is read with pydicom; its plane comes from its
own points (no grid, no medmask geometry); a world point is inside the ROI when it lies
on a contour's plane and inside an odd number of that plane's contours
(``cv2.pointPolygonTest`` in the plane's coordinates). A point exactly on a contour is
for the caller to avoid: after the change to the plane's coordinates OpenCV may see it
on either side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

cv2 = pytest.importorskip("cv2", reason="OpenCV comes with rt-utils (the test extra)")


def roi_contours(path: Path) -> dict[str, list[np.ndarray]]:
    """ROI name -> its CLOSED_PLANAR contours as (n, 3) world points (mm)."""
    ds = pydicom.dcmread(path, force=True)
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    out: dict[str, list[np.ndarray]] = {}
    for roi in ds.ROIContourSequence:
        name = names[int(roi.ReferencedROINumber)]
        out[name] = [
            np.asarray(c.ContourData, dtype=np.float64).reshape(-1, 3)
            for c in roi.get("ContourSequence", [])
            if c.ContourGeometricType == "CLOSED_PLANAR"
        ]
    return out


def inside(contours: list[np.ndarray], points: np.ndarray, tolerance: float = 0.05) -> np.ndarray:
    """Which world ``points`` (n, 3) lie inside the contours (even-odd per plane).

    ``tolerance`` (mm) decides which points lie on a contour's plane: the plane comes from
    the contour's own points (written to 0.1 um), whose short edges (a pixel's side) fix
    its normal only to ~1e-4 rad, so points 10 mm away may be 1e-3 mm off it; planes of
    the test grids lie >= 0.8 mm apart."""
    count = np.zeros(len(points), dtype=np.int64)
    for contour in contours:
        origin = contour.mean(axis=0)
        # the plane that fits the points best: its normal is the direction of least spread
        _, _, axes = np.linalg.svd(contour - origin)
        u, v, normal = axes[0], axes[1], axes[2]
        on_plane = np.abs((points - origin) @ normal) < tolerance
        if not on_plane.any():
            continue
        polygon = np.stack([(contour - origin) @ u, (contour - origin) @ v], axis=1)
        shape = polygon.astype(np.float32).reshape(-1, 1, 2)
        for index in np.flatnonzero(on_plane):
            p = points[index] - origin
            where = cv2.pointPolygonTest(shape, (float(p @ u), float(p @ v)), False)
            count[index] += where > 0
    return count % 2 == 1
