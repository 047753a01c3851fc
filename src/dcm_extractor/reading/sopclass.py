"""Which DICOM objects are images: SOP classes known not to be images.

ImageCount counts instances of image storage classes and of classes not known to be
something else; everything listed here is reported instead. RT Dose is listed: it has
pixel data, but a dose grid computed by a planning system is not an image of the patient,
and counting it would make a CT series look one image longer. UIDs are from DICOM PS3.4
Annex B (storage SOP classes) and PS3.10 (media storage directory).
"""

from __future__ import annotations

from typing import Final

__all__ = ["DICOMDIR_CLASS", "non_image_kind"]

DICOMDIR_CLASS: Final = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage

_STORAGE: Final = "1.2.840.10008.5.1.4.1.1."

# Exact UIDs (relative to _STORAGE) and what they are.
_NON_IMAGE: Final[dict[str, str]] = {
    "11.1": "presentation state",  # grayscale softcopy presentation state
    "11.2": "presentation state",  # color
    "11.3": "presentation state",  # pseudo-color
    "11.4": "presentation state",  # blending
    "66": "raw data",
    "66.1": "spatial registration",
    "66.2": "spatial fiducials",
    "66.3": "deformable registration",
    "66.4": "segmentation (DICOM SEG)",
    "66.5": "surface segmentation",
    "67": "real world value mapping",
    "88.59": "key object selection",
    "104.1": "encapsulated PDF",
    "104.2": "encapsulated CDA",
    "104.3": "encapsulated STL",
    "104.4": "encapsulated OBJ",
    "104.5": "encapsulated MTL",
    "481.2": "RT dose grid",  # pixel data, but a computed dose, not an image of the patient
    "481.3": "RT structure set",
    "481.4": "RT beams treatment record",
    "481.5": "RT plan",
    "481.6": "RT brachy treatment record",
    "481.7": "RT treatment summary record",
    "481.8": "RT ion plan",
    "481.9": "RT ion beams treatment record",
    "9.1.1": "waveform",  # 12-lead ECG
    "9.1.2": "waveform",
    "9.1.3": "waveform",
    "9.2.1": "waveform",
    "9.3.1": "waveform",
    "9.4.1": "waveform",
    "9.4.2": "waveform",
    "9.5.1": "waveform",
    "9.6.1": "waveform",
}
# Families: every UID under these prefixes (relative to _STORAGE).
_NON_IMAGE_FAMILIES: Final[dict[str, str]] = {
    "88.": "structured report",  # 88.11 basic text SR, 88.22 enhanced SR, 88.33 ...
    "11.": "presentation state",
    "9.": "waveform",
}


def non_image_kind(sop_class_uid: str) -> str | None:
    """What a SOP class is when it is known not to be an image, else None.

    Examples
    --------
    >>> non_image_kind("1.2.840.10008.5.1.4.1.1.88.11")
    'structured report'
    >>> non_image_kind("1.2.840.10008.5.1.4.1.1.2") is None  # CT Image Storage
    True
    """
    uid = sop_class_uid.strip()
    if uid == DICOMDIR_CLASS:
        return "DICOMDIR"
    if not uid.startswith(_STORAGE):
        return None
    tail = uid[len(_STORAGE) :]
    if tail in _NON_IMAGE:
        return _NON_IMAGE[tail]
    for prefix, kind in _NON_IMAGE_FAMILIES.items():
        if tail.startswith(prefix):
            return kind
    return None
