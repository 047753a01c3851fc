"""What a mask *is*, beyond its name: coded concepts, display colour, the algorithm that made it.

A DICOM SEG describes each segment with coded concepts (Segmented Property Category and
Type, with modifiers and an anatomic region), a recommended display colour and, for
automatic segmentations, the algorithm; 3D Slicer's ``.seg.nrrd`` carries a colour and a
terminology entry of the same codes. medmask keeps them with the mask (the index entry's
``meaning``, docs/mask-format.md) so that ``pack`` followed by ``export-seg`` or
``export-slicer`` writes them back instead of re-deriving them from the name.

Values only: no I/O (the readers and writers live in ``medmask.exchange.dicom`` and
``medmask.exchange.slicer``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["ALGORITHM_TYPES", "Code", "SegmentMeaning"]

ALGORITHM_TYPES = ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")
"""DICOM's Segment Algorithm Type values."""


@dataclass(frozen=True)
class Code:
    """One coded concept: value, coding scheme designator, meaning (DICOM's triplet)."""

    value: str
    scheme: str
    meaning: str

    def __post_init__(self) -> None:
        for field in ("value", "scheme", "meaning"):
            if not isinstance(getattr(self, field), str):
                raise TypeError(f"Code.{field} must be a string, got {getattr(self, field)!r}")
        if not self.value or not self.scheme:
            raise ValueError(f"a code needs a value and a scheme, got {self!r}")

    def to_list(self) -> list[str]:
        """``[value, scheme, meaning]`` (the JSON form)."""
        return [self.value, self.scheme, self.meaning]

    @classmethod
    def from_list(cls, data: Any) -> Code:
        """Inverse of :meth:`to_list`; ValueError unless three strings."""
        if not isinstance(data, list | tuple) or len(data) != 3:
            raise ValueError(f"a code is [value, scheme, meaning], got {data!r}")
        return cls(*(str(v) for v in data))


_CODE_FIELDS = ("category", "type", "type_modifier", "region", "region_modifier")


@dataclass(frozen=True)
class SegmentMeaning:
    """What one segment is, as a SEG or a Slicer segmentation said it.

    Attributes
    ----------
    category, type : Code, optional
        Segmented Property Category and Type (CID 7150 / 7151 ...).
    type_modifier : Code, optional
        e.g. Left / Right.
    region, region_modifier : Code, optional
        Anatomic Region (and its modifier), when the type needs one (a cyst *of* a kidney).
    colour : tuple of int, optional
        sRGB display colour, 0-255 each.
    algorithm_type : {"AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"}, optional
    algorithm_name, algorithm_version : str, optional
    algorithm_family : Code, optional
        Segmentation Algorithm Identification (e.g. Artificial Intelligence).
    slicer_terminology : str, optional
        3D Slicer's TerminologyEntry string as read, kept verbatim (it names the
        terminology contexts too).
    """

    category: Code | None = None
    type: Code | None = None
    type_modifier: Code | None = None
    region: Code | None = None
    region_modifier: Code | None = None
    colour: tuple[int, int, int] | None = None
    algorithm_type: str | None = None
    algorithm_name: str | None = None
    algorithm_version: str | None = None
    algorithm_family: Code | None = None
    slicer_terminology: str | None = None

    def __post_init__(self) -> None:
        if self.colour is not None:
            colour = tuple(self.colour)
            if len(colour) != 3 or not all(
                isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in colour
            ):
                raise ValueError(f"colour must be three integers 0-255, got {self.colour!r}")
            object.__setattr__(self, "colour", colour)
        if self.algorithm_type is not None and self.algorithm_type not in ALGORITHM_TYPES:
            raise ValueError(
                f"algorithm_type must be one of {ALGORITHM_TYPES}, got {self.algorithm_type!r}"
            )
        if (self.category is None) != (self.type is None):
            raise ValueError("category and type come together (a SEG needs both)")

    @property
    def coded(self) -> bool:
        """Whether it says what the segment is (category and type)."""
        return self.type is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, fields that are None left out."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            out[field.name] = (
                value.to_list()
                if isinstance(value, Code)
                else (list(value) if isinstance(value, tuple) else value)
            )
        return out

    @classmethod
    def from_dict(cls, data: Any) -> SegmentMeaning:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (a newer writer's).

        Raises
        ------
        ValueError
            A known field of the wrong form.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a segment meaning is a JSON object, got {type(data).__name__}")
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name not in data or data[field.name] is None:
                continue
            raw = data[field.name]
            if field.name in (*_CODE_FIELDS, "algorithm_family"):
                values[field.name] = Code.from_list(raw)
            elif field.name == "colour":
                values[field.name] = tuple(int(c) for c in raw)
            else:
                values[field.name] = str(raw)
        return cls(**values)
