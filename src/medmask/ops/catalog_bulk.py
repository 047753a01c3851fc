"""The catalog rows of many archives at once: their index blocks parsed together by
pyarrow's JSON reader (C++), every check and every number computed on whole columns.

Reading each archive through :class:`~medmask.MaskArchive` validates every entry in
Python, ~1 ms an archive of 117 masks; the catalog must read thousands a second. This
path takes the archives whose index holds only what it understands - no ``mapping``
or ``meaning`` keys (one-label masks whose concept comes from the name: what packing
NIfTI folders writes) - and gives the others back to the validated path, as it does any
archive whose entries break a rule of docs/mask-format.md (that path then names the
fault). Its rows equal the validated path's; tests/medmask/test_catalog.py compares them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..files.names import readable
from ..files.opened import CommitText

__all__ = ["CONCEPT_COLUMNS", "Head", "box_extent_mm", "bulk_table", "index_to_mm", "takes"]

_PREFIX = b'{"entries":['


@dataclass(frozen=True)
class Head:
    """One archive as the bulk path reads it: where it is and its newest commit."""

    key: str  # path relative to the catalogued folder
    path: Path
    size: int
    mtime_ns: int
    commit: CommitText


def takes(commit: CommitText) -> bool:
    """Whether the bulk path reads this commit (else the validated path does)."""
    text = commit.index
    return (
        commit.geometry is not None
        and text.startswith(_PREFIX)
        and b"\n" not in text
        and b'"mapping"' not in text
        and b'"meaning"' not in text
    )


def index_to_mm(
    points: NDArray[np.float64], matrix: NDArray[np.float64], origin: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Voxel indices ``(n, 3)`` to LPS mm, each point by its own ``(n, 3, 3)`` matrix
    (columns: the axes' steps in mm) and origin; written out term by term, so that both
    catalog paths give the same bits."""
    return (
        origin
        + points[:, 0:1] * matrix[:, :, 0]
        + points[:, 1:2] * matrix[:, :, 1]
        + points[:, 2:3] * matrix[:, :, 2]
    )


def box_extent_mm(
    boxes: NDArray[np.int64], matrix: NDArray[np.float64], origin: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The LPS extent of each half-open voxel box's centres, ``(n, 6)``: min x y z, max
    x y z over its 8 corner voxels - on each world axis the sum, over the voxel axes, of
    the lower and the higher end's contribution (the corners are all their choices)."""
    low = boxes[:, [0, 2, 4]].astype(np.float64)
    high = boxes[:, [1, 3, 5]].astype(np.float64) - 1
    out = np.empty((len(boxes), 6))
    for world in range(3):
        ends = (low * matrix[:, world, :], high * matrix[:, world, :])
        out[:, world] = origin[:, world] + np.minimum(*ends).sum(axis=1)
        out[:, 3 + world] = origin[:, world] + np.maximum(*ends).sum(axis=1)
    return out


def _schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    entry = pa.struct(
        [
            ("name", pa.string()),
            ("kind", pa.string()),
            ("count", pa.int64()),
            ("bbox", pa.list_(pa.list_(pa.int64()))),
            ("voxel_sums", pa.list_(pa.int64())),
            ("members", pa.list_(pa.string())),
        ]
    )
    series = pa.struct([("SeriesInstanceUID", pa.string()), ("FrameOfReferenceUID", pa.string())])
    return pa.schema([("a", pa.int64()), ("entries", pa.list_(entry)), ("image_series", series)])


def bulk_table(heads: list[Head], schema: Any, concept: Any) -> tuple[Any, list[Head]]:
    """The catalog rows of ``heads`` (a table of ``schema``), and the heads left to the
    validated path: their entries break a rule, or predate ``voxel_sums``.

    ``concept(name)`` gives the concept columns of a mask name.
    """
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.json as pj  # noqa: PLC0415

    from .arrow_columns import as_numpy, empty_table  # noqa: PLC0415 - imports pyarrow

    if not heads:
        return empty_table(schema), []
    lines = b"".join(
        b'{"a":%d,' % i + head.commit.index[1:] + b"\n" for i, head in enumerate(heads)
    )
    try:
        parsed = pj.read_json(
            io.BytesIO(lines),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(lines) + 1),
            parse_options=pj.ParseOptions(
                explicit_schema=_schema(), unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a value of the wrong type somewhere
        return empty_table(schema), heads
    entries = parsed.column("entries").combine_chunks()
    order = parsed.column("a").combine_chunks()
    if (
        entries.null_count
        or order.null_count
        or not np.array_equal(as_numpy(order), np.arange(len(heads)))
    ):
        return empty_table(schema), heads
    columns = _Columns.of(entries)
    series = parsed.column("image_series").combine_chunks()
    bad = columns.faults(heads) | (  # an image_series without its SeriesInstanceUID
        as_numpy(series.is_valid()) & as_numpy(series.field("SeriesInstanceUID").is_null())
    )
    if bad.any():
        keep = ~bad
        taken = [h for h, ok in zip(heads, keep.tolist(), strict=True) if ok]
        table, more = bulk_table(taken, schema, concept)
        return table, [h for h, ok in zip(heads, keep.tolist(), strict=True) if not ok] + more
    uids = {
        name: series.field(name).to_pylist()
        for name in ("SeriesInstanceUID", "FrameOfReferenceUID")
    }
    return columns.table(heads, schema, concept, uids), []


@dataclass
class _Columns:
    """The entries of every archive, flattened: one item per mask."""

    parent: NDArray[np.int64]  # the archive of each mask (index into heads)
    per_archive: NDArray[np.int64]  # masks per archive
    names: Any  # pyarrow StringArray
    kinds: Any
    counts: NDArray[np.int64]
    boxes: NDArray[np.int64]  # (n, 6), -1 where there is none
    box_ok: NDArray[np.bool_]  # the box has 3 pairs (or is absent)
    sums: NDArray[np.float64]  # (n, 3), nan where there are none
    members: Any  # pyarrow ListArray

    @classmethod
    def of(cls, entries: Any) -> _Columns:
        import pyarrow.compute as pc  # noqa: PLC0415

        from .arrow_columns import as_numpy  # noqa: PLC0415 - imports pyarrow

        def lengths(lists: Any, default: int) -> NDArray[Any]:
            return as_numpy(pc.list_value_length(lists), null=default)

        flat = entries.flatten()
        n = len(flat)
        parent = as_numpy(pc.list_parent_indices(entries)).astype(np.int64)
        per_archive = lengths(entries, 0)
        counts = as_numpy(flat.field("count"), null=0)
        bbox = flat.field("bbox")
        outer = lengths(bbox, 3)
        pairs = bbox.flatten()
        inner = lengths(pairs, 0)
        boxes = np.full((n, 6), -1, dtype=np.int64)
        has_box = as_numpy(bbox.is_valid())
        box_ok = outer == 3
        if box_ok.all() and (inner == 2).all() and pairs.null_count == 0:
            values = as_numpy(pairs.flatten())
            if values.size == 6 * int(has_box.sum()) and not pairs.flatten().null_count:
                boxes[has_box] = values.reshape(-1, 6)
            else:
                box_ok = np.zeros(n, dtype=bool)
        else:  # the owner of a malformed box goes to the validated path
            box_ok = box_ok & ~has_box
        sums = np.full((n, 3), np.nan)
        voxel_sums = flat.field("voxel_sums")
        has_sums = as_numpy(voxel_sums.is_valid())
        three = lengths(voxel_sums, 3)
        if (three == 3).all() and not voxel_sums.flatten().null_count:
            sums[has_sums] = as_numpy(voxel_sums.flatten()).reshape(-1, 3)
        else:
            box_ok = box_ok & (three == 3)
        return cls(
            parent, per_archive, flat.field("name"), flat.field("kind"),
            counts.astype(np.int64), boxes, box_ok, sums, flat.field("members"),
        )  # fmt: skip

    def faults(self, heads: list[Head]) -> NDArray[np.bool_]:
        """Per archive: whether an entry breaks a rule the bulk path checks (the
        validated path then reads it and names the fault), or predates voxel_sums."""
        import pyarrow.compute as pc  # noqa: PLC0415

        from .arrow_columns import as_numpy, strings  # noqa: PLC0415 - imports pyarrow

        mask, group, nothing = strings(["mask", "group", ""])
        shapes = np.array([h.commit.geometry["shape"] for h in heads], dtype=np.int64)  # type: ignore[index]
        shape = shapes[self.parent]
        has_box = self.boxes[:, 0] >= 0
        low, high = self.boxes[:, [0, 2, 4]], self.boxes[:, [1, 3, 5]]
        kinds = self.kinds.fill_null(mask)
        wrong = (
            ~self.box_ok
            | (self.counts < 0)
            | (has_box != (self.counts > 0))
            | (has_box & ((low < 0) | (low >= high) | (high > shape)).any(axis=1))
            | ((self.counts > 0) & np.isnan(self.sums[:, 0]))  # before voxel_sums: decode
            | as_numpy(self.names.is_null())
            | ~as_numpy(pc.is_in(kinds, value_set=strings(["mask", "group"])))
        )
        names = self.names.fill_null(nothing)
        wrong |= as_numpy(pc.equal(names, nothing))
        codes = as_numpy(pc.dictionary_encode(names).indices)
        pairs = self.parent * (int(codes.max(initial=0)) + 1) + codes
        unique, seen = np.unique(pairs, return_counts=True)
        bad = np.zeros(len(heads), dtype=bool)
        bad[np.unique(self.parent[wrong])] = True
        if (seen > 1).any():  # a name twice in one archive
            bad[np.unique(unique[seen > 1] // (int(codes.max(initial=0)) + 1))] = True
        groups = np.flatnonzero(as_numpy(pc.equal(kinds, group)))
        for row in groups.tolist():  # members must be masks of the same archive
            archive = int(self.parent[row])
            members = self.members[row].as_py() or []
            start = int(np.searchsorted(self.parent, archive))
            own = names[start : start + int(self.per_archive[archive])].to_pylist()
            own_kinds = kinds[start : start + int(self.per_archive[archive])].to_pylist()
            masks = {n for n, k in zip(own, own_kinds, strict=True) if k == "mask"}
            if not members or any(m not in masks for m in members):
                bad[archive] = True
        return bad

    def table(
        self, heads: list[Head], schema: Any, concept: Any, uids: dict[str, list[Any]]
    ) -> Any:
        """The catalog rows, one per mask."""
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.compute as pc  # noqa: PLC0415

        from .arrow_columns import number_lists, numbers, string_lists, strings  # noqa: PLC0415

        n = len(self.parent)
        take = numbers(self.parent)
        geometry = [h.commit.geometry for h in heads]
        spacing = np.array([g["spacing"] for g in geometry], dtype=np.float64)  # type: ignore[index]
        origin = np.array([g["origin"] for g in geometry], dtype=np.float64)  # type: ignore[index]
        axes = np.array(
            [[g["x_orientation"], g["y_orientation"], g["z_orientation"]] for g in geometry],  # type: ignore[index]
            dtype=np.float64,
        )  # (archives, axis, xyz)
        matrix = np.transpose(axes, (0, 2, 1)) * spacing[:, None, :]  # index -> mm
        shapes = np.array([g["shape"] for g in geometry], dtype=np.int64)  # type: ignore[index]
        own: dict[str, Any] = {
            "case_id": strings([readable(h.path.name[: -len(".mska")]) for h in heads]),
            "archive": strings([h.key for h in heads]),
            "generation": numbers(
                np.array([h.commit.superblock.generation for h in heads], dtype=np.int64)
            ),
            "archive_bytes": numbers(np.array([h.size for h in heads], dtype=np.int64)),
            "archive_mtime_ns": numbers(np.array([h.mtime_ns for h in heads], dtype=np.int64)),
            "direction": number_lists(axes.reshape(len(heads), 9)),
            "SeriesInstanceUID": strings(uids["SeriesInstanceUID"]),
            "FrameOfReferenceUID": strings(uids["FrameOfReferenceUID"]),
        }
        for axis, letter in enumerate("ijk"):
            own[f"shape_{letter}"] = numbers(shapes[:, axis])
            own[f"spacing_{letter}"] = numbers(spacing[:, axis])
        for axis, letter in enumerate("xyz"):
            own[f"origin_{letter}"] = numbers(origin[:, axis])
        arrays: dict[str, Any] = {name: values.take(take) for name, values in own.items()}
        arrays["mask"] = self.names
        arrays["kind"] = self.kinds.fill_null(strings(["mask"])[0])
        arrays["labels"] = pa.ListArray.from_arrays(
            numbers(np.arange(n + 1, dtype=np.int32)), numbers(np.ones(n, dtype=np.int64))
        )
        arrays["voxel_count"] = numbers(self.counts)
        voxel_ml = np.prod(spacing, axis=1) / 1000.0
        arrays["volume_ml"] = numbers(self.counts * voxel_ml[self.parent])
        arrays["empty"] = numbers(self.counts == 0)
        absent = self.boxes[:, 0] < 0
        for i, letter in enumerate("ijk"):
            arrays[f"bbox_{letter}0"] = numbers(self.boxes[:, 2 * i], mask=absent)
            arrays[f"bbox_{letter}1"] = numbers(self.boxes[:, 2 * i + 1], mask=absent)
        located = self.counts > 0  # the masks with voxels: boxes, centroids, mm
        rows = self.parent[located]
        each, at = matrix[rows], origin[rows]
        extent = np.full((n, 6), np.nan)
        extent[located] = box_extent_mm(self.boxes[located], each, at)
        for i, letter in enumerate("xyz"):
            arrays[f"bbox_min_{letter}"] = numbers(extent[:, i], mask=absent)
            arrays[f"bbox_max_{letter}"] = numbers(extent[:, 3 + i], mask=absent)
        centroid = np.full((n, 3), np.nan)
        centroid[located] = self.sums[located] / self.counts[located, None]
        centroid_mm = np.full((n, 3), np.nan)
        centroid_mm[located] = index_to_mm(centroid[located], each, at)
        for i, letter in enumerate("ijk"):
            arrays[f"centroid_{letter}"] = numbers(centroid[:, i], mask=~located)
        for i, letter in enumerate("xyz"):
            arrays[f"centroid_{letter}"] = numbers(centroid_mm[:, i], mask=~located)
        members = self.members.to_pylist() if self.members.null_count < n else None
        arrays["members"] = (
            string_lists([m or [] for m in members]) if members is not None else _empty_lists(n)
        )
        arrays["groups"] = self._groups(members, n)
        unique = pc.unique(self.names)
        found = [concept(name) for name in unique.to_pylist()]
        where = pc.index_in(self.names, value_set=unique)
        for i, name in enumerate(CONCEPT_COLUMNS):
            arrays[name] = strings([c[i] for c in found]).take(where)
        return pa.table([arrays[name] for name in schema.names], schema=schema)

    def _groups(self, members: list[Any] | None, n: int) -> Any:
        """Per mask, the groups of its archive that hold it."""
        from .arrow_columns import string_lists  # noqa: PLC0415 - imports pyarrow

        if members is None:
            return _empty_lists(n)
        names = self.names.to_pylist()
        holding: dict[tuple[int, str], list[str]] = {}
        for row, listed in enumerate(members):
            for member in listed or ():
                holding.setdefault((int(self.parent[row]), member), []).append(names[row])
        parents = self.parent.tolist()
        return string_lists(
            [holding.get((p, name), []) for p, name in zip(parents, names, strict=True)]
        )


def _empty_lists(n: int) -> Any:
    from .arrow_columns import string_lists  # noqa: PLC0415 - imports pyarrow

    return string_lists([[]] * n)


CONCEPT_COLUMNS = (  # the catalog's concept columns, in the order of a concept tuple
    "concept_source",
    "category_code",
    "category_meaning",
    "type_code",
    "type_scheme",
    "type_meaning",
    "modifier_meaning",
)
