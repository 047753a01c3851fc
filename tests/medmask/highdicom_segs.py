"""DICOM SEGs written by highdicom, the independent writer the SEG tests read from."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes


def descriptions(names: Sequence[str], kind: Any = None) -> list[hd.seg.SegmentDescription]:
    """Manual segments numbered 1, 2 ... labelled ``names``, of property type ``kind``
    (default Tissue) in category Tissue."""
    kind = codes.SCT.Tissue if kind is None else kind
    return [
        hd.seg.SegmentDescription(
            segment_number=i + 1, segment_label=name,
            segmented_property_category=codes.SCT.Tissue, segmented_property_type=kind,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for i, name in enumerate(names)
    ]  # fmt: skip


def write_seg(
    source: Sequence[Dataset],
    pixels: np.ndarray,
    segments: Sequence[hd.seg.SegmentDescription],
    path: Path,
    kind: str = "BINARY",
) -> Path:
    """highdicom's SEG of ``pixels`` (frames of ``source``, segments last) at ``path``."""
    seg = hd.seg.Segmentation(
        source_images=list(source), pixel_array=pixels,
        segmentation_type=getattr(hd.seg.SegmentationTypeValues, kind),
        segment_descriptions=list(segments), series_instance_uid=hd.UID(), series_number=5,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
        manufacturer_model_name="test", software_versions="1", device_serial_number="1",
    )  # fmt: skip
    seg.save_as(path)
    return path
