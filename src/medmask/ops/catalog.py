"""A catalog of every mask of many archives, from their indexes alone (SQL over it:
:mod:`medmask.ops.query`).

One Parquet row per mask (docs/catalog.md has every column): the case, the archive and
its generation, the mask's labels, voxel count, volume, box in voxels and mm, centroid
in voxels and mm, the groups it is in, its coded concept, and the archive's geometry.
Nothing is decoded: the index holds counts, boxes and index sums (docs/mask-format.md);
only masks of archives written before ``voxel_sums`` are decoded for their centroid.

The catalog is incremental: archives whose size and modification time match the rows of
the catalog being replaced keep those rows without being opened.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import MedmaskError
from ..files.archive import MaskArchive
from ..files.atomic import atomic_path
from ..files.names import readable
from ..files.opened import read_commit
from .catalog_bulk import CONCEPT_COLUMNS, Head, box_extent_mm, bulk_table, index_to_mm, takes
from .cluster import dask_client, worker_threads

__all__ = [
    "CATALOG_COLUMNS",
    "ArchiveRows",
    "CatalogResult",
    "archive_rows",
    "build_catalog",
    "find_archives",
]

ARCHIVE_SUFFIX = ".mska"

# name -> pyarrow type name, in column order (docs/catalog.md says what each holds)
CATALOG_COLUMNS: dict[str, str] = {
    "case_id": "string",
    "archive": "string",
    "generation": "int64",
    "archive_bytes": "int64",
    "archive_mtime_ns": "int64",
    "mask": "string",
    "kind": "string",
    "labels": "list<int64>",
    "voxel_count": "int64",
    "volume_ml": "float64",
    "empty": "bool",
    "bbox_i0": "int64",
    "bbox_i1": "int64",
    "bbox_j0": "int64",
    "bbox_j1": "int64",
    "bbox_k0": "int64",
    "bbox_k1": "int64",
    "bbox_min_x": "float64",
    "bbox_min_y": "float64",
    "bbox_min_z": "float64",
    "bbox_max_x": "float64",
    "bbox_max_y": "float64",
    "bbox_max_z": "float64",
    "centroid_i": "float64",
    "centroid_j": "float64",
    "centroid_k": "float64",
    "centroid_x": "float64",
    "centroid_y": "float64",
    "centroid_z": "float64",
    "groups": "list<string>",
    "members": "list<string>",
    "concept_source": "string",
    "category_code": "string",
    "category_meaning": "string",
    "type_code": "string",
    "type_scheme": "string",
    "type_meaning": "string",
    "modifier_meaning": "string",
    "shape_i": "int64",
    "shape_j": "int64",
    "shape_k": "int64",
    "spacing_i": "float64",
    "spacing_j": "float64",
    "spacing_k": "float64",
    "origin_x": "float64",
    "origin_y": "float64",
    "origin_z": "float64",
    "direction": "list<float64>",
    "SeriesInstanceUID": "string",
    "FrameOfReferenceUID": "string",
}
_BOX = ("bbox_i0", "bbox_i1", "bbox_j0", "bbox_j1", "bbox_k0", "bbox_k1")
_BOX_MM = ("bbox_min_x", "bbox_min_y", "bbox_min_z", "bbox_max_x", "bbox_max_y", "bbox_max_z")
_CENTROID = ("centroid_i", "centroid_j", "centroid_k", "centroid_x", "centroid_y", "centroid_z")


@dataclass
class CatalogResult:
    """What :func:`build_catalog` did."""

    output: Path
    archives: int = 0  # archives in the catalog
    read: int = 0  # opened and read (new or changed)
    kept: int = 0  # rows kept from the catalog replaced (unchanged archives)
    dropped: int = 0  # archives of the old catalog that are gone
    rows: int = 0
    decoded: int = 0  # masks decoded for a centroid (indexes from before voxel_sums)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (archive, reason)
    seconds: float = 0.0


def find_archives(
    root: str | os.PathLike[str], unlisted: list[tuple[Path, str]] | None = None
) -> list[Path]:
    """Every ``.mska`` file under ``root`` (or ``root`` itself), in a stable order;
    files being written (``.<name>.new``) are left out. A folder that cannot be listed
    (another account's) goes to ``unlisted`` with the system's reason; without
    ``unlisted`` it is an error, never passed over in silence.

    Raises
    ------
    MedmaskError
        ``root`` is no folder or file; or a folder cannot be listed and ``unlisted`` is None.
    """
    base = Path(root)
    if base.is_file():
        return [base]
    if not base.is_dir():
        raise MedmaskError(f"{base}: no such folder or archive")
    missed: list[tuple[Path, str]] = []

    def missing(err: OSError) -> None:
        missed.append((Path(err.filename or base), err.strerror or str(err)))

    found = [
        Path(folder) / name
        for folder, _, names in os.walk(base, onerror=missing)
        for name in names
        if name.endswith(ARCHIVE_SUFFIX) and not name.startswith(".")
    ]
    if unlisted is None and missed:
        folder, why = missed[0]
        raise MedmaskError(f"{readable(str(folder))}: cannot be listed: {why}")
    if unlisted is not None:
        unlisted += missed
    return sorted(found)


def _archives(base: Path, result: CatalogResult) -> list[Path]:
    """:func:`find_archives`; each folder it cannot list one of ``result``'s failures."""
    unlisted: list[tuple[Path, str]] = []
    archives = find_archives(base, unlisted)
    for folder, why in unlisted:  # (another account's folder: its archives are not read)
        key = readable(folder.relative_to(base).as_posix()) + "/"
        result.failures.append((key, f"cannot be listed: {why}: its archives not read"))
    return archives


def build_catalog(
    root: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    incremental: bool = True,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
) -> CatalogResult:
    """Write the catalog of every archive under ``root`` to ``output`` (Parquet).

    Parameters
    ----------
    root : str or os.PathLike
        A folder of archives (searched recursively) or one archive.
    output : str or os.PathLike
        The Parquet file, replaced whole when complete.
    incremental : bool
        Keep the rows of archives whose size and modification time are those the
        existing ``output`` recorded, without opening them.
    scheduler, scheduler_file : str, optional
        A Dask scheduler's address or JSON file: the archives are read on its workers
        (which must see them at the same paths), in parts of up to 2,000; the rows are
        the same as read here.

    Returns
    -------
    CatalogResult
        Counts, and the archives that could not be read with the reason (they have no
        rows; the others are catalogued all the same).
    """
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    start = time.perf_counter()
    base = Path(root)
    out = Path(output)
    result = CatalogResult(out)
    archives = _archives(base, result)
    top = base if base.is_dir() else base.parent
    old, stamps = _previous(out) if incremental and out.exists() else (None, {})
    keep: list[str] = []
    todo: list[Todo] = []
    for path in archives:
        key = readable(path.relative_to(top).as_posix())  # (a GBK name: as text)
        try:
            stat = path.stat()
        except OSError as err:  # (one archive's problem, not the catalog's)
            why = f"a link to nothing ({path.readlink()})" if path.is_symlink() else err.strerror
            result.failures.append((key, f"{readable(str(path))}: {why}: not read"))
            continue
        if stamps.pop(key, None) == (stat.st_size, stat.st_mtime_ns):
            keep.append(key)
        else:
            todo.append((path, key, stat.st_size, stat.st_mtime_ns))
    if scheduler is not None or scheduler_file is not None:
        part = _read_on_cluster(todo, scheduler, scheduler_file)
    else:
        part = read_archives(todo)
    result.failures.extend(part.failures)
    result.dropped = len(stamps)
    unchanged = not todo and not result.dropped
    if old is not None and unchanged:  # the catalog on disk is already this one
        table = old
    else:
        tables = [part.table]
        if old is not None and keep:
            tables.append(_rows_of(old, keep))
        table = pa.concat_tables(tables)
        if part.slow or keep:  # rows of the validated path and kept rows come after the bulk's
            order = [readable(p.relative_to(top).as_posix()) for p in archives]
            table = _in_archive_order(table, order)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as partial, Path(partial).open("wb") as stream:
            pq.write_table(table, stream, compression="zstd")  # (a file: pyarrow takes no
            # path that is not UTF-8, such as a Windows copy's GBK folder name)
    result.read, result.kept = part.bulk + part.slow, len(keep)
    result.decoded = part.decoded
    result.failures.sort()
    result.rows = table.num_rows
    result.archives = result.read + result.kept
    result.seconds = time.perf_counter() - start
    return result


_BATCH = 2000  # archives whose index texts are parsed together (memory stays bounded)

# an archive to read: (path, its key in the catalog, size, modification time in ns)
Todo = tuple[Path, str, int, int]


@dataclass
class CatalogPart:
    """The rows of some archives (:func:`read_archives`), and how they were read."""

    table: Any  # pyarrow.Table of catalog_schema(): the bulk path's rows, then the others'
    bulk: int = 0  # archives read by the bulk path
    slow: int = 0  # by the validated path
    decoded: int = 0  # masks decoded for a centroid (indexes from before voxel_sums)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (archive, reason)


def read_archives(todo: list[Todo]) -> CatalogPart:
    """The catalog rows of the archives ``todo``, in their order (the bulk path's first,
    then those the validated path read); archives that cannot be read are failures."""
    import pyarrow as pa  # noqa: PLC0415

    failures: list[tuple[str, str]] = []
    reading = _Reading(catalog_schema())
    with _no_cycle_collection():  # millions of small objects, none in a cycle
        for path, key, size, mtime_ns in todo:
            reading.add(path, key, size, mtime_ns)
        tables, read = reading.finish(failures)
    return CatalogPart(
        pa.concat_tables(tables), reading.bulk, len(read), sum(r.decoded for r in read),
        failures,
    )  # fmt: skip


def _read_on_cluster(
    todo: list[Todo], address: str | None, scheduler_file: str | None
) -> CatalogPart:
    """:func:`read_archives` on a Dask cluster's workers, in parts; the parts in order."""
    import pyarrow as pa  # noqa: PLC0415

    with dask_client(address, scheduler_file, [[item[0] for item in todo]]) as client:
        size = max(1, min(_BATCH, -(-len(todo) // (4 * worker_threads(client)))))
        chunks = [
            [(p.absolute(), key, n, t) for p, key, n, t in todo[i : i + size]]
            for i in range(0, len(todo), size)
        ]
        futures = [client.submit(read_archives, chunk, pure=False) for chunk in chunks]
        parts: list[list[CatalogPart]] = []
        suspects: list[tuple[int, Todo]] = []
        for chunk, future in zip(chunks, futures, strict=True):
            try:
                parts.append([future.result()])
            except Exception as err:
                if type(err).__name__ != "KilledWorker":
                    raise
                # its workers died (out of memory?) as often as the scheduler allows: one
                # of its archives may be the cause, or it ran beside the cause; each once
                # more at the end, alone on the cluster, its rows in the part's place
                suspects += [(len(parts), item) for item in chunk]
                parts.append([])
        for place, item in suspects:
            parts[place].append(_alone(client, item))
    done_parts = [part for place in parts for part in place]
    if not done_parts:
        return read_archives([])
    done = CatalogPart(pa.concat_tables([part.table for part in done_parts]))
    for part in done_parts:
        done.bulk += part.bulk
        done.slow += part.slow
        done.decoded += part.decoded
        done.failures.extend(part.failures)
    return done  # each part's validated rows after its bulk rows: the caller orders them


def _alone(client: Any, item: Todo) -> CatalogPart:
    """One archive read in a task of its own; a failure when its worker dies again."""
    try:
        found: CatalogPart = client.submit(read_archives, [item], pure=False).result()
    except Exception as err:
        if type(err).__name__ != "KilledWorker":
            raise
        why = (
            f"{readable(str(item[0]))}: its Dask worker died reading it (out of memory?), "
            f"also alone ({type(err).__name__}): not read"
        )
        return CatalogPart(catalog_schema().empty_table(), failures=[(item[1], why)])
    return found


def _rows_of(table: Any, keys: list[str]) -> Any:
    """``table``'s rows of the archives ``keys``: runs of rows as slices (the archives
    kept are most of them, in long runs), not a filter through every column."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    from .arrow_columns import as_numpy, strings  # noqa: PLC0415 - imports pyarrow

    wanted = as_numpy(pc.is_in(table["archive"], value_set=strings(keys)))
    edges = np.flatnonzero(np.diff(np.concatenate(([False], wanted, [False])).astype(np.int8)))
    runs = list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
    if not runs:
        return table.slice(0, 0)
    return pa.concat_tables([table.slice(a, b - a) for a, b in runs])


def _in_archive_order(table: Any, keys: list[str]) -> Any:
    """``table``'s rows by archive in the order of ``keys``, each archive's in their order."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    from .arrow_columns import as_numpy, numbers, strings  # noqa: PLC0415 - imports pyarrow

    place = as_numpy(pc.index_in(table["archive"], value_set=strings(keys)), null=-1)
    order = np.argsort(place, kind="stable")
    # the parts come in long sorted runs (kept rows, then new ones): put the runs in
    # order as slices, not every row through a gather
    breaks = np.flatnonzero(np.diff(order) != 1) + 1
    starts = np.concatenate(([0], breaks)).tolist()
    stops = np.concatenate((breaks, [len(order)])).tolist()
    if len(starts) > len(order) // 64:  # many short runs: one gather is cheaper
        return table.take(numbers(order.astype(np.int64)))
    return pa.concat_tables(
        [table.slice(int(order[a]), b - a) for a, b in zip(starts, stops, strict=True)]
    )


class _Reading:
    """The archives to read: most by the bulk path, in batches; the rest, and what it
    declines, by the validated path."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.heads: list[Head] = []
        self.slow: list[tuple[Path, str, int, int]] = []
        self.tables: list[Any] = []
        self.bulk = 0

    def add(self, path: Path, key: str, size: int, mtime_ns: int) -> None:
        try:
            commit = read_commit(path)
        except (MedmaskError, OSError):  # 0.1.3's, or damaged: the validated path says
            self.slow.append((path, key, size, mtime_ns))
            return
        if not takes(commit):
            self.slow.append((path, key, size, mtime_ns))
            return
        self.heads.append(Head(key, path, size, mtime_ns, commit))
        if len(self.heads) >= _BATCH:
            self._bulk()

    def _bulk(self) -> None:
        table, declined = bulk_table(self.heads, self.schema, _named_concept)
        self.tables.append(table)
        self.slow.extend((h.path, h.key, h.size, h.mtime_ns) for h in declined)
        self.bulk += len(self.heads) - len(declined)
        self.heads = []

    def finish(self, failures: list[tuple[str, str]]) -> tuple[list[Any], list[ArchiveRows]]:
        """The tables read, and the archives the validated path read (for their counts);
        archives it cannot read go to ``failures``."""
        self._bulk()
        read: list[ArchiveRows] = []
        for path, key, size, mtime in self.slow:
            try:
                read.append(archive_rows(path, key, size, mtime))
            except OSError as err:  # (the key names the archive: the reason only)
                failures.append((key, err.strerror or str(err)))
            except (MedmaskError, ValueError) as err:
                failures.append((key, str(err)))
        return [*self.tables, _table(read)], read


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def catalog_schema() -> Any:
    """The catalog's pyarrow schema (:data:`CATALOG_COLUMNS`)."""
    import pyarrow as pa  # noqa: PLC0415

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "list<int64>": pa.list_(pa.int64()),
        "list<string>": pa.list_(pa.string()),
        "list<float64>": pa.list_(pa.float64()),
    }
    return pa.schema([(name, types[kind]) for name, kind in CATALOG_COLUMNS.items()])


def _previous(path: Path) -> tuple[Any, dict[str, tuple[int, int]]]:
    """An existing catalog's rows, and the size and time it records of each archive."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    from .arrow_columns import as_numpy, first_rows, numbers  # noqa: PLC0415 - imports pyarrow

    try:
        with Path(path).open("rb") as stream:  # (read_table imports pyarrow.dataset: 0.4 s)
            table = pq.ParquetFile(stream).read()
    except Exception as err:  # not a Parquet file
        raise MedmaskError(
            f"{path}: not a catalog medmask can update ({type(err).__name__}); "
            "remove it or write to another file"
        ) from err
    if table.schema != catalog_schema():
        raise MedmaskError(
            f"{path}: its columns are not this medmask's catalog columns; remove it to "
            "build the catalog afresh"
        )
    keys, first = first_rows(table["archive"])  # an archive's rows all record its stamp
    sizes = as_numpy(table["archive_bytes"].take(numbers(first)), null=-1).tolist()
    times = as_numpy(table["archive_mtime_ns"].take(numbers(first)), null=-1).tolist()
    stamps = {key: (size, mtime) for key, size, mtime in zip(keys, sizes, times, strict=True)}
    return table, stamps


@dataclass
class _Masks:
    """What one archive's index says of its masks, one item per mask, in index order."""

    names: list[str]
    kinds: list[str]
    members: list[list[str]]
    labels: list[list[int]]
    counts: NDArray[np.int64]
    boxes: NDArray[np.int64]  # (n, 6): i0 i1 j0 j1 k0 k1, -1 when empty
    centroids: NDArray[np.float64]  # (n, 3) voxel index, nan when empty
    concepts: list[tuple[str | None, ...]]
    decoded: int = 0


@dataclass
class ArchiveRows:
    """One archive's catalog rows: its own values (the same on each of its rows) and
    each mask's."""

    archive: dict[str, Any]
    masks: _Masks
    volumes: NDArray[np.float64]
    box_mm: NDArray[np.float64]  # (n, 6): min x y z, max x y z
    centroid_mm: NDArray[np.float64]  # (n, 3)

    @property
    def decoded(self) -> int:
        return self.masks.decoded


def archive_rows(path: Path, key: str, size: int, mtime_ns: int) -> ArchiveRows:
    """One archive's catalog rows.

    Raises
    ------
    FormatError
        The archive is damaged (its index or geometry), or not an archive.
    """
    with MaskArchive(path) as archive:
        space = archive.space
        generation = archive.commit.generation if archive.commit is not None else 0
        series = archive.image_series or {}
        masks = None
        if space is not None and archive.format_version == "2.0":
            masks = _index_masks(archive, space)
        if masks is None:  # 0.1.3's archives, or an index the fast reading doubts
            masks = _read_masks(archive)
    if space is None:  # an archive without masks
        empty = np.zeros((0, 3))
        return ArchiveRows({"archive": key}, masks, np.zeros(0), np.zeros((0, 6)), empty)
    matrix = np.column_stack(
        [space.x_orientation, space.y_orientation, space.z_orientation]
    ) * np.asarray(space.spacing, dtype=np.float64)
    origin = np.asarray(space.origin, dtype=np.float64)
    axes = (space.x_orientation, space.y_orientation, space.z_orientation)
    own: dict[str, Any] = {
        "case_id": readable(path.name[: -len(ARCHIVE_SUFFIX)]),
        "archive": key,
        "generation": generation,
        "archive_bytes": size,
        "archive_mtime_ns": mtime_ns,
        "direction": [float(v) for axis in axes for v in axis],
        "SeriesInstanceUID": series.get("SeriesInstanceUID"),
        "FrameOfReferenceUID": series.get("FrameOfReferenceUID"),
    }
    for axis, letter in enumerate("ijk"):
        own[f"shape_{letter}"] = int(space.shape[axis])
        own[f"spacing_{letter}"] = float(space.spacing[axis])
    for axis, letter in enumerate("xyz"):
        own[f"origin_{letter}"] = float(origin[axis])
    voxel_ml = np.prod(np.asarray(space.spacing, dtype=np.float64)) / 1000.0
    n = len(masks.names)
    each, at = np.broadcast_to(matrix, (n, 3, 3)), np.broadcast_to(origin, (n, 3))
    return ArchiveRows(
        own,
        masks,
        (masks.counts * voxel_ml).astype(np.float64),
        box_extent_mm(masks.boxes, each, at),
        index_to_mm(masks.centroids, each, at),
    )


_OWN = (
    "case_id", "archive", "generation", "archive_bytes", "archive_mtime_ns", "shape_i",
    "shape_j", "shape_k", "spacing_i", "spacing_j", "spacing_k", "origin_x", "origin_y",
    "origin_z", "direction", "SeriesInstanceUID", "FrameOfReferenceUID",
)  # fmt: skip


def _table(read: list[ArchiveRows]) -> Any:
    """The rows of the archives read, as one Arrow table of the catalog's schema."""
    import pyarrow as pa  # noqa: PLC0415

    from .arrow_columns import empty_table  # noqa: PLC0415 - imports pyarrow

    schema = catalog_schema()
    if not read:
        return empty_table(schema)
    counts = np.array([len(r.masks.names) for r in read], dtype=np.int64)
    arrays: dict[str, Any] = {}
    indices = pa.array(np.repeat(np.arange(len(read)), counts))
    for name in _OWN:  # each archive's value, repeated on its rows
        own = [r.archive.get(name) for r in read]
        arrays[name] = pa.array(own, type=schema.field(name).type).take(indices)

    def joined(attribute: str) -> list[Any]:
        return [v for r in read for v in getattr(r.masks, attribute)]

    def stacked(get: Any, width: int, dtype: Any) -> NDArray[Any]:
        parts = [get(r) for r in read]
        return np.concatenate(parts) if parts else np.zeros((0, width), dtype)

    arrays["mask"] = pa.array(joined("names"), pa.string())
    arrays["kind"] = pa.array(joined("kinds"), pa.string())
    arrays["labels"] = pa.array(joined("labels"), pa.list_(pa.int64()))
    voxels = stacked(lambda r: r.masks.counts, 0, np.int64).reshape(-1)
    arrays["voxel_count"] = pa.array(voxels, pa.int64())
    arrays["volume_ml"] = pa.array(stacked(lambda r: r.volumes, 0, np.float64).reshape(-1))
    arrays["empty"] = pa.array(voxels == 0)
    boxes = stacked(lambda r: r.masks.boxes, 6, np.int64)
    absent = boxes[:, 0] < 0
    for i, name in enumerate(_BOX):
        arrays[name] = pa.array(boxes[:, i], pa.int64(), mask=absent)
    box_mm = stacked(lambda r: r.box_mm, 6, np.float64)
    for i, name in enumerate(_BOX_MM):
        arrays[name] = pa.array(box_mm[:, i], pa.float64(), mask=absent)
    centroids = stacked(lambda r: r.masks.centroids, 3, np.float64)
    centroid_mm = stacked(lambda r: r.centroid_mm, 3, np.float64)
    unknown = np.isnan(centroids[:, 0])
    for i, name in enumerate(_CENTROID):
        values = (centroids if i < 3 else centroid_mm)[:, i % 3]
        arrays[name] = pa.array(values, pa.float64(), mask=unknown)
    groups: list[list[str]] = []
    for r in read:
        of: dict[str, list[str]] = {}
        for group, members in zip(r.masks.names, r.masks.members, strict=True):
            for member in members:
                of.setdefault(member, []).append(group)
        groups.extend(of.get(name, []) for name in r.masks.names)
    arrays["groups"] = pa.array(groups, pa.list_(pa.string()))
    arrays["members"] = pa.array(joined("members"), pa.list_(pa.string()))
    concepts = joined("concepts")
    for i, name in enumerate(CONCEPT_COLUMNS):
        arrays[name] = pa.array([c[i] for c in concepts], pa.string())
    return pa.table([arrays[name] for name in CATALOG_COLUMNS], schema=schema)


def _index_masks(archive: MaskArchive, space: Any) -> _Masks | None:
    """The masks from the index records as stored, the spec's defaults applied here
    (docs/mask-format.md): several times faster than validating every entry. None when
    a value is not what the spec says; the caller then reads through the validated path,
    which names the fault."""
    records = archive.index_records()
    try:
        names = [r["name"] for r in records]
        counts = np.array([r.get("count", 0) for r in records], dtype=np.int64)
        boxes = np.full((len(records), 6), -1, dtype=np.int64)
        sums = np.zeros((len(records), 3), dtype=np.int64)
        located = np.flatnonzero(counts)
        if len(located):
            found = [records[i].get("bbox") for i in located.tolist()]
            boxes[located] = np.array(found, dtype=np.int64).reshape(len(located), 6)
            totals = [records[i].get("voxel_sums") for i in located.tolist()]
            if any(t is None for t in totals):
                return None  # an index from before voxel_sums: the validated path decodes
            sums[located] = np.array(totals, dtype=np.int64).reshape(len(located), 3)
        mappings = [r.get("mapping") for r in records]
        masks = _Masks(
            names,
            [r.get("kind", "mask") for r in records],
            [list(r.get("members", ())) for r in records],
            [[1] if m is None else sorted(v for v in m.values() if v) for m in mappings],
            counts,
            boxes,
            np.full((len(records), 3), np.nan),
            [
                _named_concept(n) if m is None else _stored_concept(m, n)
                for n, m in zip(names, (r.get("meaning") for r in records), strict=True)
            ],
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return None
    if (counts < 0).any() or not _boxes_fit(boxes, space.shape):
        return None
    if any(r.get("bbox") is not None for r in records if not r.get("count", 0)):
        return None  # a box on an empty mask: not what the spec says
    masks.centroids[located] = sums[located] / counts[located, None]
    return masks


def _boxes_fit(boxes: NDArray[np.int64], shape: Any) -> bool:
    present = boxes[boxes[:, 0] >= 0]
    stops = np.asarray([int(v) for v in shape])
    return bool(
        (present[:, [0, 2, 4]] >= 0).all()
        and (present[:, [0, 2, 4]] < present[:, [1, 3, 5]]).all()
        and (present[:, [1, 3, 5]] <= stops).all()
    )


def _stored_concept(meaning: dict[str, Any], name: str) -> tuple[str | None, ...]:
    category, kind = meaning.get("category"), meaning.get("type")
    if category is None or kind is None:
        return _named_concept(name)
    modifier = meaning.get("type_modifier")
    return ("archive", str(category[0]), str(category[2]), str(kind[0]), str(kind[1]),
            str(kind[2]), None if modifier is None else str(modifier[2]))  # fmt: skip


def _read_masks(archive: MaskArchive) -> _Masks:
    """The masks through the validated reading (statistics()); centroids of indexes from
    before voxel_sums by decoding."""
    stats = archive.statistics()
    groups = archive.groups()
    mappings = archive.read_all_mapping()
    names = list(stats)
    boxes = np.full((len(names), 6), -1, dtype=np.int64)
    centroids = np.full((len(names), 3), np.nan)
    counts = np.array([stats[n].voxel_count for n in names], dtype=np.int64)
    masks = _Masks(names, [], [], [], counts, boxes, centroids, [])
    for row, name in enumerate(names):
        stat = stats[name]
        masks.kinds.append("group" if name in groups else "mask")
        masks.members.append(list(groups.get(name, ())))
        masks.labels.append(sorted(v for v in mappings[name].labels() if v))  # not background
        if stat.bbox is not None:
            boxes[row] = [v for axis in stat.bbox for v in axis]
        if stat.centroid is not None:
            centroids[row] = stat.centroid
        elif stat.voxel_count:
            crop, offset = archive.load_crop(name)
            centroids[row] = np.argwhere(crop != 0).mean(axis=0) + np.asarray(offset)
            masks.decoded += 1
        meaning = archive.meaning(name)
        masks.concepts.append(
            _named_concept(name) if meaning is None else _stored_concept(meaning.to_dict(), name)
        )
    return masks


_NO_CONCEPT: tuple[str | None, ...] = (None,) * len(CONCEPT_COLUMNS)


@functools.lru_cache(maxsize=4096)
def _named_concept(name: str) -> tuple[str | None, ...]:
    from ..exchange.dicom.concepts import concept_for  # noqa: PLC0415

    concept = concept_for(name)
    if not concept.known:
        return _NO_CONCEPT
    modifier = concept.modifier.meaning if concept.modifier else None
    return ("name", concept.category.value, concept.category.meaning, concept.type.value,
            concept.type.scheme, concept.type.meaning, modifier)  # fmt: skip
