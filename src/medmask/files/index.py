"""The archive index: one validated entry per stored mask, parsed when first used.

Entries are stored as JSON objects (docs/mask-format.md, "Index block"); values equal to
their defaults are omitted by writers and restored by readers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import FormatError
from ..format import mska as fmt
from ..model.bbox import BBox
from ..model.meaning import SegmentMeaning

__all__ = ["Entry", "Index", "Sums", "replace_location"]

Sums = tuple[int, int, int]
"""Sums of the i, j and k indices over a mask's non-zero voxels: centroid = sums / count."""


@dataclass(frozen=True)
class Entry:
    """One index entry, validated."""

    name: str
    kind: Literal["mask", "group", "legacy"]
    mapping: dict[str, int]
    dtype: str
    codec: int
    bbox: BBox | None
    offset: int
    length: int
    crc: int
    count: int
    label_counts: dict[int, int]
    members: tuple[str, ...] = ()
    residual_bbox: BBox | None = None  # groups: extent of the stored residual
    file_label: int | None = None  # its label in the multi-label file it was packed from
    nifti_codes: tuple[int, int] | None = None  # (qform, sform) codes of its NIfTI file
    label_bboxes: dict[int, BBox] | None = None  # masks of several labels: each one's box
    meaning: SegmentMeaning | None = None  # coded concepts, colour, algorithm (SEG, Slicer)
    voxel_sums: Sums | None = None  # sum of each index over the non-zero voxels (centroid)
    label_voxel_sums: dict[int, Sums] | None = None  # masks of several labels: each one's

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "mapping": self.mapping,
            "dtype": self.dtype,
            "codec": self.codec,
            "bbox": _box_list(self.bbox),
            "offset": self.offset,
            "length": self.length,
            "crc": self.crc,
            "count": self.count,
            "label_counts": {str(k): v for k, v in self.label_counts.items()},
        }
        if self.kind == "group":
            out["members"] = list(self.members)
            out["residual_bbox"] = _box_list(self.residual_bbox)
        if self.file_label is not None:
            out["file_label"] = self.file_label
        if self.nifti_codes is not None and self.nifti_codes != (1, 1):
            out["nifti_codes"] = list(self.nifti_codes)
        if self.label_bboxes is not None:
            out["label_bboxes"] = {str(k): _box_list(v) for k, v in self.label_bboxes.items()}
        if self.meaning is not None:
            out["meaning"] = self.meaning.to_dict()
        if self.voxel_sums is not None:
            out["voxel_sums"] = list(self.voxel_sums)
        if self.label_voxel_sums is not None:
            out["label_voxel_sums"] = {str(k): list(v) for k, v in self.label_voxel_sums.items()}
        defaults = _defaults(self.name, self.mapping, self.count)
        return {k: v for k, v in out.items() if k == "name" or defaults.get(k, _NO_DEFAULT) != v}

    @classmethod
    def from_dict(cls, stored: dict[str, Any], data_end: int, source: str) -> Entry:
        try:
            name = str(stored["name"])
            mapping = stored.get("mapping", {name: 1})
            raw = {**_defaults(name, mapping, int(stored.get("count", 0))), **stored}
            entry = cls(
                name=str(raw["name"]),
                kind=raw["kind"],
                mapping={str(k): int(v) for k, v in raw["mapping"].items()},
                dtype=str(raw["dtype"]),
                codec=int(raw["codec"]),
                bbox=_box_tuple(raw["bbox"]),
                offset=int(raw["offset"]),
                length=int(raw["length"]),
                crc=int(raw["crc"]),
                count=int(raw["count"]),
                label_counts={int(k): int(v) for k, v in raw["label_counts"].items()},
                members=tuple(str(m) for m in raw.get("members", ())),
                residual_bbox=_box_tuple(raw.get("residual_bbox")),
                file_label=None if raw.get("file_label") is None else int(raw["file_label"]),
                nifti_codes=_codes(raw.get("nifti_codes")),
                label_bboxes=_label_boxes(raw.get("label_bboxes")),
                meaning=None
                if raw.get("meaning") is None
                else SegmentMeaning.from_dict(raw["meaning"]),
                voxel_sums=_sums(raw.get("voxel_sums")),
                label_voxel_sums=_label_sums(raw.get("label_voxel_sums")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise FormatError(f"{source}: index entry is malformed: {err!r}") from err
        if entry.kind not in ("mask", "group"):
            raise FormatError(f"{source}: entry {entry.name!r} has unknown kind {entry.kind!r}")
        if entry.length and (
            entry.offset < fmt.DATA_START or entry.offset + entry.length > data_end
        ):
            raise FormatError(
                f"{source}: blob of {entry.name!r} at {entry.offset}+{entry.length} lies outside "
                f"the committed {data_end} bytes"
            )
        return entry


_NO_DEFAULT = object()


def _defaults(name: str, mapping: dict[str, int], count: int) -> dict[str, Any]:
    """Index values an entry may omit (docs/mask-format.md): most masks are plain binary."""
    labels = list(mapping.values())
    return {
        "kind": "mask",
        "mapping": {name: 1},
        "dtype": "uint8",
        "codec": 0,
        "bbox": None,
        "offset": 0,
        "length": 0,
        "crc": 0,
        "count": 0,
        "label_counts": {str(labels[0]): count} if len(labels) == 1 and count else {},
        "members": [],
        "residual_bbox": None,
    }


class Index:
    """Entries by name, in index order; each parsed and checked when first used.

    Opening an archive then costs one JSON parse, not one validation per mask.
    """

    def __init__(self, data_end: int = 0, source: str = "") -> None:
        self._items: dict[str, Entry | dict[str, Any]] = {}
        self._json: dict[str, str] = {}  # each entry's index text, made once: adds commit often
        self._data_end, self._source = data_end, source

    def add_raw(self, name: str, raw: dict[str, Any]) -> None:
        if name in self._items:
            raise FormatError(f"{self._source}: name {name!r} appears twice in the index")
        self._items[name] = raw

    def __getitem__(self, name: str) -> Entry:
        item = self._items[name]
        if isinstance(item, dict):
            item = Entry.from_dict(item, self._data_end, self._source)
            self._items[name] = item
        return item

    def get(self, name: str) -> Entry | None:
        return self[name] if name in self._items else None

    def __setitem__(self, name: str, entry: Entry) -> None:
        self._items[name] = entry
        self._json.pop(name, None)

    def __delitem__(self, name: str) -> None:
        del self._items[name]
        self._json.pop(name, None)

    def pop(self, name: str) -> None:
        self._items.pop(name, None)
        self._json.pop(name, None)

    def stored_json(self) -> list[str]:
        """Every entry as the JSON text of the index block, in order."""
        out = []
        for name, item in self._items.items():
            text = self._json.get(name)
            if text is None:
                text = fmt.entry_json(item if isinstance(item, dict) else item.to_dict())
                self._json[name] = text
            out.append(text)
        return out

    def records(self) -> list[dict[str, Any]]:
        """Every entry as the index holds it (defaults omitted), without validation."""
        return [item if isinstance(item, dict) else item.to_dict() for item in self._items.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> list[Entry]:
        return [self[name] for name in self._items]

    def items(self) -> list[tuple[str, Entry]]:
        return [(name, self[name]) for name in self._items]


def replace_location(entry: Entry, offset: int) -> Entry:
    return dataclasses.replace(entry, offset=offset)


def _box_list(box: BBox | None) -> list[list[int]] | None:
    return [list(axis) for axis in box] if box else None


def _meaning(value: Any) -> SegmentMeaning | None:
    return None if value is None else SegmentMeaning.from_dict(value)


def _sums(value: Any) -> Sums | None:
    if value is None:
        return None
    i, j, k = value
    return (int(i), int(j), int(k))


def _label_sums(value: Any) -> dict[int, Sums] | None:
    if value is None:
        return None
    out = {int(k): _sums(v) for k, v in value.items()}
    if any(sums is None for sums in out.values()):
        raise ValueError("label_voxel_sums holds a null")
    return out  # type: ignore[return-value]


def _codes(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    qform, sform = value
    return (int(qform), int(sform))


def _label_boxes(value: Any) -> dict[int, BBox] | None:
    if value is None:
        return None
    boxes = {int(k): _box_tuple(v) for k, v in value.items()}
    if any(box is None for box in boxes.values()):
        raise ValueError("label_bboxes holds a null box")
    return boxes  # type: ignore[return-value]


def _box_tuple(value: Any) -> BBox | None:
    if value is None:
        return None
    (a, b), (c, d), (e, f) = value
    return ((int(a), int(b)), (int(c), int(d)), (int(e), int(f)))
