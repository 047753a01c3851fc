"""A cartoon anatomy with TotalSegmentator's 117 structure names.

Coordinates are fractions of the volume: x from the patient's right (0) to left (1),
y from anterior (0) to posterior (1), z from inferior (0, pelvis) to superior (1,
upper chest). Structures placed outside [0, 1] in z lie beyond the field of view
and come out empty, as they do in a real abdominal CT (brain, skull, neck).

Order matters: it is the label order, and a structure loses voxels that an earlier
one already owns unless the pair is listed in :data:`DECLARED_OVERLAPS`. Small
structures that sit inside large ones therefore come first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DECLARED_OVERLAPS", "ORGANS", "Blob", "Tube"]

Point = tuple[float, float, float]


@dataclass(frozen=True)
class Blob:
    """A smooth, lumpy ellipsoid: organs, bones, muscles."""

    name: str
    center: Point
    radii: Point


@dataclass(frozen=True)
class Tube:
    """A thin tube along a polyline: vessels, airways, ribs. ``radius`` is a fraction of x."""

    name: str
    points: tuple[Point, ...]
    radius: float


def _mirror(point: Point) -> Point:
    return (1.0 - point[0], point[1], point[2])


def _pair(name: str, left_center: Point, radii: Point) -> list[Blob]:
    return [
        Blob(f"{name}_left", left_center, radii),
        Blob(f"{name}_right", _mirror(left_center), radii),
    ]


def _tube_pair(name: str, left_points: tuple[Point, ...], radius: float) -> list[Tube]:
    right = tuple(_mirror(p) for p in left_points)
    return [Tube(f"{name}_left", left_points, radius), Tube(f"{name}_right", right, radius)]


def _ribs() -> list[Tube]:
    """24 ribs: arcs from beside the spine round to the front, each lower than the last."""
    ribs: list[Tube] = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        for k in range(1, 13):
            z0 = 0.98 - (k - 1) * 0.05
            sweep = 0.85 * math.pi if k <= 10 else 0.45 * math.pi
            points = tuple(
                (
                    0.5 + sign * (0.06 + 0.30 * math.sin(t)),
                    0.5 + 0.32 * math.cos(t),
                    z0 - 0.08 * t / math.pi,
                )
                for t in (sweep * i / 12 for i in range(13))
            )
            ribs.append(Tube(f"rib_{side}_{k}", points, 0.007))
    return ribs


def _vertebrae() -> list[Blob]:
    """C1-C7, T1-T12, L1-L5, S1 stacked behind the body; the neck lies above the view."""
    levels = ["S1", *(f"L{i}" for i in range(5, 0, -1)), *(f"T{i}" for i in range(12, 0, -1))]
    levels += [f"C{i}" for i in range(7, 0, -1)]
    return [
        Blob(f"vertebrae_{level}", (0.5, 0.78, 0.18 + 0.06 * i), (0.04, 0.05, 0.022))
        for i, level in enumerate(levels)
    ]


ORGANS: tuple[Blob | Tube, ...] = (
    # small structures inside or against big ones come first
    Blob("gallbladder", (0.40, 0.36, 0.55), (0.025, 0.025, 0.04)),
    Blob("kidney_cyst_right", (0.30, 0.66, 0.47), (0.015, 0.015, 0.015)),
    Blob("kidney_cyst_left", (0.70, 0.66, 3.0), (0.015, 0.015, 0.015)),  # absent
    Blob("adrenal_gland_right", (0.37, 0.68, 0.61), (0.015, 0.015, 0.02)),
    Blob("adrenal_gland_left", (0.64, 0.69, 0.60), (0.015, 0.015, 0.02)),
    Blob("atrial_appendage_left", (0.62, 0.30, 0.92), (0.015, 0.015, 0.015)),
    Blob("prostate", (0.50, 0.42, 0.01), (0.02, 0.02, 0.02)),
    Blob("thyroid_gland", (0.50, 0.30, 1.08), (0.03, 0.02, 0.02)),  # neck: out of view
    # large smooth organs
    Blob("liver", (0.35, 0.42, 0.63), (0.17, 0.16, 0.09)),
    Blob("spleen", (0.72, 0.62, 0.66), (0.06, 0.07, 0.06)),
    Blob("kidney_right", (0.34, 0.70, 0.52), (0.045, 0.05, 0.07)),
    Blob("kidney_left", (0.66, 0.70, 0.54), (0.045, 0.05, 0.07)),
    Blob("stomach", (0.62, 0.36, 0.66), (0.08, 0.07, 0.07)),
    Blob("pancreas", (0.52, 0.55, 0.57), (0.10, 0.025, 0.025)),
    Blob("duodenum", (0.46, 0.45, 0.52), (0.04, 0.03, 0.03)),
    Blob("colon", (0.50, 0.28, 0.36), (0.25, 0.05, 0.05)),
    Blob("small_bowel", (0.50, 0.30, 0.24), (0.15, 0.08, 0.08)),
    Blob("urinary_bladder", (0.50, 0.35, 0.08), (0.07, 0.06, 0.05)),
    Blob("heart", (0.55, 0.35, 0.88), (0.11, 0.10, 0.08)),
    Blob("lung_upper_lobe_left", (0.72, 0.50, 0.98), (0.12, 0.20, 0.06)),
    Blob("lung_lower_lobe_left", (0.72, 0.55, 0.84), (0.12, 0.20, 0.08)),
    Blob("lung_upper_lobe_right", (0.28, 0.50, 0.99), (0.12, 0.20, 0.05)),
    Blob("lung_middle_lobe_right", (0.28, 0.35, 0.90), (0.10, 0.10, 0.04)),
    Blob("lung_lower_lobe_right", (0.28, 0.55, 0.84), (0.12, 0.20, 0.08)),
    Blob("brain", (0.50, 0.50, 1.60), (0.10, 0.12, 0.10)),
    Blob("skull", (0.50, 0.50, 1.55), (0.12, 0.14, 0.12)),
    # vessels and airways: thin tubes
    Tube(
        "aorta",
        (
            (0.50, 0.62, 1.05),
            (0.53, 0.52, 0.96),
            (0.52, 0.64, 0.85),
            (0.51, 0.66, 0.6),
            (0.50, 0.66, 0.3),
        ),
        0.018,
    ),
    Tube("inferior_vena_cava", ((0.42, 0.62, 0.90), (0.44, 0.62, 0.60), (0.46, 0.62, 0.30)), 0.016),
    Tube("superior_vena_cava", ((0.44, 0.45, 1.02), (0.44, 0.45, 0.92)), 0.012),
    Tube(
        "portal_vein_and_splenic_vein",
        ((0.42, 0.50, 0.58), (0.55, 0.58, 0.60), (0.68, 0.60, 0.64)),
        0.008,
    ),
    Tube("pulmonary_vein", ((0.58, 0.45, 0.86), (0.70, 0.50, 0.88)), 0.006),
    Tube("brachiocephalic_trunk", ((0.50, 0.55, 0.98), (0.47, 0.45, 1.05)), 0.008),
    *_tube_pair("brachiocephalic_vein", ((0.60, 0.40, 1.02), (0.52, 0.42, 0.96)), 0.008),
    *_tube_pair("common_carotid_artery", ((0.54, 0.50, 1.00), (0.56, 0.45, 1.10)), 0.006),
    *_tube_pair("subclavian_artery", ((0.55, 0.55, 1.00), (0.75, 0.50, 1.02)), 0.006),
    *_tube_pair(
        "iliac_artery", ((0.50, 0.66, 0.30), (0.60, 0.62, 0.15), (0.66, 0.50, 0.02)), 0.010
    ),
    *_tube_pair("iliac_vena", ((0.46, 0.62, 0.30), (0.58, 0.66, 0.15), (0.63, 0.56, 0.02)), 0.011),
    Tube("esophagus", ((0.52, 0.70, 1.05), (0.53, 0.62, 0.75), (0.60, 0.45, 0.68)), 0.010),
    Tube("trachea", ((0.50, 0.40, 1.10), (0.50, 0.45, 0.95)), 0.015),
    Tube("spinal_cord", ((0.50, 0.82, 1.10), (0.50, 0.82, 0.25)), 0.008),
    # bones
    *_vertebrae(),
    *_ribs(),
    Blob("sternum", (0.50, 0.18, 0.86), (0.03, 0.015, 0.09)),
    Blob("costal_cartilages", (0.50, 0.16, 0.76), (0.20, 0.02, 0.05)),
    Blob("sacrum", (0.50, 0.85, 0.10), (0.05, 0.05, 0.07)),
    *_pair("clavicula", (0.62, 0.30, 1.06), (0.10, 0.02, 0.02)),  # above the view
    *_pair("scapula", (0.80, 0.88, 0.95), (0.08, 0.03, 0.08)),
    *_pair("humerus", (0.95, 0.55, 1.00), (0.03, 0.03, 0.15)),
    *_pair("hip", (0.68, 0.60, 0.12), (0.08, 0.10, 0.08)),
    *_pair("femur", (0.70, 0.55, -0.10), (0.04, 0.04, 0.15)),
    # muscles
    *_pair("autochthon", (0.58, 0.90, 0.55), (0.04, 0.04, 0.40)),
    *_pair("iliopsoas", (0.61, 0.65, 0.25), (0.03, 0.03, 0.15)),
    *_pair("gluteus_maximus", (0.62, 0.92, 0.10), (0.10, 0.05, 0.10)),
    *_pair("gluteus_medius", (0.74, 0.82, 0.16), (0.05, 0.05, 0.07)),
    *_pair("gluteus_minimus", (0.76, 0.74, 0.12), (0.04, 0.03, 0.05)),
)

# Pairs whose voxels may be shared: each mask keeps them, so a single multi-label
# array cannot hold both (the later label wins there).
DECLARED_OVERLAPS: tuple[tuple[str, str], ...] = (
    ("gallbladder", "liver"),
    ("adrenal_gland_left", "kidney_left"),
    ("hip_left", "iliopsoas_left"),
)
