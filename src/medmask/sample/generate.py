"""Write generated organ masks the way TotalSegmentator lays them out, with ground truth."""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import MedmaskError
from ..exchange.nifti_labels import TOTALSEG_ECODE, encode_label_table
from ..lazy import lazy_module
from ..model.space import space_from_affine
from .anatomy import DECLARED_OVERLAPS, ORGANS, Blob
from .shapes import Crop, Shape3, rasterize

if TYPE_CHECKING:
    import nibabel as nib
else:  # on first use: most commands never read NIfTI
    nib = lazy_module("nibabel")

__all__ = ["SCALES", "MaskSample", "generate_masks", "sample_affine"]

# name -> (shape, spacing in mm); every scale is anisotropic on purpose.
SCALES: dict[str, tuple[Shape3, tuple[float, float, float]]] = {
    "small": ((96, 80, 64), (4.0, 4.0, 10.0)),
    "medium": ((256, 192, 160), (1.5, 1.5, 4.0)),
    "full": ((512, 512, 600), (0.8, 0.8, 1.0)),
}
MASKS_DIRNAME = "segmentations"
MULTILABEL_FILENAME = "multilabel.nii.gz"
CT_FILENAME = "ct.nii.gz"
CT_SERIES_DIRNAME = "ct_dicom"
TRUTH_FILENAME = "ground_truth.json"


@dataclass(frozen=True)
class MaskSample:
    """Where a generated mask set lives and what it holds.

    Attributes
    ----------
    masks_dir : Path
        One ``<organ>.nii.gz`` (uint8 0/1) per structure.
    multilabel_path : Path
        The same content as one label image, names in a header extension and a
        ``.json`` sidecar; on declared overlaps the higher label wins.
    ct_path : Path
        A synthetic CT (int16 HU) on the same grid, for previews.
    truth_path : Path
        Ground truth: labels, voxel counts, overlaps, geometry.
    names : tuple[str, ...]
        Structure names in label order (label = position + 1).
    ct_series_dir : Path or None
        The synthetic CT as a DICOM series (one file per slice), when asked for: the
        source series to export the masks onto as a DICOM SEG.
    """

    masks_dir: Path
    multilabel_path: Path
    ct_path: Path
    truth_path: Path
    names: tuple[str, ...]
    ct_series_dir: Path | None = None


def sample_affine(shape: Shape3, spacing: tuple[float, float, float]) -> NDArray[np.float64]:
    """A realistic voxel-to-world affine: anisotropic, rotated 15 deg in-plane and tilted 4 deg.

    Voxel axes run to the patient's left, posterior and superior (LPS, the DICOM order
    the anatomy is drawn in); NIfTI world coordinates are RAS, hence the sign flips.
    """
    yaw, tilt = math.radians(15.0), math.radians(4.0)
    rz = np.array(
        [[math.cos(yaw), -math.sin(yaw), 0.0], [math.sin(yaw), math.cos(yaw), 0.0], [0, 0, 1]]
    )
    rx = np.array(
        [[1.0, 0, 0], [0, math.cos(tilt), -math.sin(tilt)], [0, math.sin(tilt), math.cos(tilt)]]
    )
    linear = np.diag([-1.0, -1.0, 1.0]) @ rz @ rx @ np.diag(spacing)
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = -linear @ (np.array(shape, dtype=float) / 2.0)  # volume centred on the origin
    return affine


def generate_masks(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    scale: str = "small",
    shape: Shape3 | None = None,
    spacing: tuple[float, float, float] | None = None,
    overwrite: bool = False,
    ct_series: bool = False,
) -> MaskSample:
    """Generate 117 per-organ masks, their multi-label image, a CT and ground truth.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Folder to write into; created if missing.
    seed : int
        Same seed and size: the same voxels.
    scale : {"small", "medium", "full"}
        Preset grid: 96x80x64, 256x192x160, or full-body 512x512x600.
    shape, spacing : tuple, optional
        Override the preset's grid size (voxels) or spacing (mm).
    overwrite : bool
        Replace earlier output in ``out_dir`` instead of refusing.
    ct_series : bool
        Also write the CT as a DICOM series in ``out_dir/ct_dicom`` (the masks' grid).

    Returns
    -------
    MaskSample
        Paths of everything written and the structure names in label order.

    Raises
    ------
    MedmaskError
        When ``out_dir`` already holds generated masks and ``overwrite`` is False.
    ValueError
        For an unknown scale or a grid smaller than 8 voxels along an axis.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    grid, mm = SCALES[scale]
    grid = shape if shape is not None else grid
    mm = spacing if spacing is not None else mm
    if len(grid) != 3 or min(grid) < 8:
        raise ValueError(f"shape must be 3 sizes of at least 8 voxels, got {grid}")
    out = Path(out_dir)
    masks_dir = out / MASKS_DIRNAME
    if masks_dir.exists():
        if not overwrite:
            raise MedmaskError(
                f"{masks_dir} already exists; --overwrite (overwrite=True) replaces it"
            )
        shutil.rmtree(masks_dir)
    masks_dir.mkdir(parents=True)

    rng = np.random.default_rng(seed)
    names = tuple(organ.name for organ in ORGANS)
    labels = {name: index + 1 for index, name in enumerate(names)}
    crops, label_image = _carve(grid, rng, labels)
    affine = sample_affine(grid, mm)

    for name, crop in zip(names, crops, strict=True):
        volume = np.zeros(grid, dtype=np.uint8)
        volume[crop.slices] = crop.voxels
        _save(volume, affine, masks_dir / f"{name}.nii.gz")

    multilabel = _save(label_image, affine, out / MULTILABEL_FILENAME, labels)
    sidecar = out / MULTILABEL_FILENAME.replace(".nii.gz", ".json")
    sidecar.write_text(
        json.dumps({str(v): k for k, v in labels.items()}, indent=1) + "\n", encoding="utf-8"
    )
    ct = _synthetic_ct(label_image, rng)
    ct_path = _save(ct, affine, out / CT_FILENAME)
    series_dir = None
    if ct_series:
        from .ct_series import write_ct_series  # noqa: PLC0415 - pydicom only when asked

        series_dir = out / CT_SERIES_DIRNAME
        if series_dir.exists():
            shutil.rmtree(series_dir)
        write_ct_series(
            ct, space_from_affine(affine, grid), series_dir, seed=f"medmask-sample-{seed}"
        )

    truth = _truth(seed, grid, mm, affine, names, crops, labels)
    truth_path = out / TRUTH_FILENAME
    truth_path.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    return MaskSample(masks_dir, multilabel, ct_path, truth_path, names, series_dir)


def _carve(
    grid: Shape3, rng: np.random.Generator, labels: dict[str, int]
) -> tuple[list[Crop], NDArray[np.uint8]]:
    """Rasterize in label order; a structure gives up voxels already taken, except declared ones."""
    partners: dict[str, set[int]] = {}
    for a, b in DECLARED_OVERLAPS:
        partners.setdefault(a, set()).add(labels[b])
        partners.setdefault(b, set()).add(labels[a])
    label_image = np.zeros(grid, dtype=np.uint8)
    crops = []
    for organ in ORGANS:
        crop = rasterize(organ, grid, rng)
        if crop.voxels.size:
            owner = label_image[crop.slices]
            shared_ok = np.isin(owner, list(partners.get(organ.name, ())))
            crop.voxels &= (owner == 0) | shared_ok
            owner[crop.voxels] = labels[organ.name]  # later label wins, as MedMask's add_label
        crops.append(crop)
    return crops, label_image


def _save(
    data: NDArray[Any],
    affine: NDArray[np.float64],
    path: Path,
    labels: dict[str, int] | None = None,
) -> Path:
    image = nib.Nifti1Image(data, affine)
    image.header.set_data_dtype(data.dtype)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    if labels is not None:
        table = encode_label_table({v: k for k, v in labels.items()})
        image.header.extensions.append(nib.nifti1.Nifti1Extension(TOTALSEG_ECODE, table))
    nib.save(image, path)
    return path


def _synthetic_ct(label_image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.int16]:
    """Air outside an elliptic body, soft tissue inside, organs brighter or darker by kind."""
    nx, ny, _ = label_image.shape
    x, y = np.ogrid[0:nx, 0:ny]
    body = ((x - nx / 2) / (0.48 * nx)) ** 2 + ((y - ny / 2) / (0.46 * ny)) ** 2 <= 1.0
    ct = np.where(body[:, :, None], 40.0, -1000.0)
    lookup = np.zeros(len(ORGANS) + 1)
    for index, organ in enumerate(ORGANS, start=1):
        bone = organ.name.startswith(("rib_", "vertebrae_", "hip_", "femur_", "sacrum", "skull"))
        lung = organ.name.startswith("lung_")
        lookup[index] = 700.0 if bone else -850.0 if lung else 60.0 + 5.0 * (index % 7)
    ct = np.where(label_image > 0, lookup[label_image], ct)
    ct += rng.normal(0.0, 15.0, size=ct.shape)
    return np.clip(ct, -1024, 3071).astype(np.int16)


def _truth(
    seed: int,
    grid: Shape3,
    spacing: tuple[float, float, float],
    affine: NDArray[np.float64],
    names: tuple[str, ...],
    crops: list[Crop],
    labels: dict[str, int],
) -> dict[str, Any]:
    by_name = dict(zip(names, crops, strict=True))
    overlaps = []
    for a, b in DECLARED_OVERLAPS:
        shared = _intersection(by_name[a], by_name[b])
        winner = a if labels[a] > labels[b] else b
        overlaps.append({"names": [a, b], "voxels": shared, "winner": winner})
    return {
        "format": "medkit-mask-sample-truth/1",
        "seed": seed,
        "shape": list(grid),
        "spacing": list(spacing),
        "affine": affine.tolist(),
        "labels": labels,
        "kinds": {o.name: "blob" if isinstance(o, Blob) else "tube" for o in ORGANS},
        "voxel_counts": {name: crop.count() for name, crop in by_name.items()},
        "empty": [name for name, crop in by_name.items() if crop.count() == 0],
        "overlaps": overlaps,
    }


def _intersection(a: Crop, b: Crop) -> int:
    """Voxels two crops share (only their boxes' common part is materialized)."""
    if not a.voxels.size or not b.voxels.size:
        return 0
    lo = [max(sa.start, sb.start) for sa, sb in zip(a.slices, b.slices, strict=True)]
    hi = [min(sa.stop, sb.stop) for sa, sb in zip(a.slices, b.slices, strict=True)]
    if any(h <= low for low, h in zip(lo, hi, strict=True)):
        return 0

    def part(crop: Crop) -> NDArray[np.bool_]:
        return crop.voxels[
            tuple(slice(low - o, h - o) for low, h, o in zip(lo, hi, crop.offset, strict=True))
        ]

    return int(np.count_nonzero(part(a) & part(b)))
