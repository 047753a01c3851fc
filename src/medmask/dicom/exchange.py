"""The earlier path of :mod:`medmask.exchange.dicom.exchange` (SEG export and import)."""

from ..exchange.dicom.exchange import (
    check_seg_source,
    export_seg,
    read_dicom_seg,
    seg_files,
    seg_masks,
    seg_segments,
)

__all__ = [
    "check_seg_source",
    "export_seg",
    "read_dicom_seg",
    "seg_files",
    "seg_masks",
    "seg_segments",
]
