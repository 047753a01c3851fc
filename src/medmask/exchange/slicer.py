"""3D Slicer's segmentation files (``.seg.nrrd``): masks in and out, overlaps kept as layers;
plain NRRD label maps in (:func:`read_nrrd_label_map`).

Slicer stores a segmentation as a NRRD volume of label values and one set of
``SegmentN_*`` key/value fields per segment (Name, Color, LabelValue, Layer, Extent,
ID ...; see Slicer's vtkMRMLSegmentationStorageNode). Segments that overlap cannot share
a label volume, so Slicer keeps them in separate *layers*: a 4-D volume whose first
axis is the layer. Export puts each mask in the first layer where it overlaps nothing
(as few layers as that greedy pass needs); import reads any layer count, in LPS or RAS.
pynrrd reads and writes the NRRD itself.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nrrd
import numpy as np
from numpy.typing import NDArray
from spacetransformer import Space

from ..errors import FormatError, MedmaskError, MedmaskWarning
from ..files.archive import MaskArchive, select_masks
from ..files.atomic import check_writable, write_atomic
from ..model.geometry import nrrd_geometry, space_from_nrrd
from ..model.mapping import LabelMapping
from ..model.mask import SegmentationMask
from ..model.meaning import Code, SegmentMeaning
from .dicom.concepts import concept_for, meaning_of_concept, segment_colour

__all__ = [
    "SlicerExport",
    "export_seg_nrrd",
    "is_seg_nrrd",
    "nrrd_bytes",
    "parse_terminology",
    "read_nrrd",
    "read_nrrd_label_map",
    "read_seg_nrrd",
    "read_seg_nrrd_segments",
    "terminology_of",
]

SUFFIX = ".seg.nrrd"
MAX_LABELS_PER_LAYER = 255  # uint8 label values
_LPS = "left-posterior-superior"
_RAS = "right-anterior-superior"


@dataclass(frozen=True)
class SlicerExport:
    """What :func:`export_seg_nrrd` wrote."""

    path: Path
    segments: tuple[str, ...]
    layers: int
    file_bytes: int


def is_seg_nrrd(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like a Slicer segmentation file."""
    return str(path).lower().endswith(SUFFIX)


def export_seg_nrrd(
    archive: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    groups: bool = False,
    overwrite: bool = False,
) -> SlicerExport:
    """Write the masks of ``archive`` as one Slicer ``.seg.nrrd`` (gzip, LPS).

    Empty masks are segments too (Slicer keeps empty segments; their extent is empty).

    Raises
    ------
    MaskNotFoundError
        A name in ``names`` is not in the archive.
    MedmaskError
        The archive holds no masks.
    """
    out = Path(output)
    check_writable(out, overwrite)
    with MaskArchive(archive) as opened:
        space = opened.space
        if space is None or not len(opened):
            raise MedmaskError(f"{archive}: the archive has no masks")
        chosen = select_masks(opened, names, groups=groups)
        shape = tuple(int(n) for n in space.shape)
        layers: list[NDArray[np.uint8]] = []
        counts: list[int] = []
        header: dict[str, Any] = {}
        for index, name in enumerate(chosen):
            crop, offset = opened.load_crop(name)
            box = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))
            inside = crop != 0
            layer = _free_layer(layers, counts, box, inside, shape)
            counts[layer] += 1
            if inside.any():
                layers[layer][box][inside] = counts[layer]
            meaning = opened.meaning(name) if name in opened else None
            _segment_fields(
                header, index, name, layer, counts[layer], offset, inside, len(chosen), meaning
            )
    data = np.stack(layers) if len(layers) > 1 else layers[0]
    header.update(_geometry_fields(space, four_d=len(layers) > 1))
    header["Segmentation_MasterRepresentation"] = "Binary labelmap"
    header["Segmentation_ContainedRepresentationNames"] = "Binary labelmap|"
    header["Segmentation_ReferenceImageExtentOffset"] = "0 0 0"
    try:
        content = nrrd_bytes(data, header)
    except ValueError as err:  # a name with a line break
        raise MedmaskError(f"{out}: cannot be written: {err}") from err
    write_atomic(out, content)
    return SlicerExport(out, tuple(chosen), len(layers), out.stat().st_size)


def _free_layer(
    layers: list[NDArray[np.uint8]],
    counts: list[int],
    box: tuple[slice, ...],
    inside: NDArray[np.bool_],
    shape: tuple[int, ...],
) -> int:
    """The first layer where the mask overlaps nothing (a new one when there is none)."""
    for i, layer in enumerate(layers):
        if counts[i] < MAX_LABELS_PER_LAYER and not (layer[box][inside] != 0).any():
            return i
    layers.append(np.zeros(shape, dtype=np.uint8))
    counts.append(0)
    return len(layers) - 1


def _segment_fields(
    header: dict[str, Any],
    index: int,
    name: str,
    layer: int,
    label: int,
    offset: tuple[int, int, int],
    inside: NDArray[np.bool_],
    count: int,
    meaning: SegmentMeaning | None,
) -> None:
    """A segment's fields; colour and terminology from ``meaning`` (what the file the mask
    was packed from said), else a distinct colour and the name table's codes."""
    red, green, blue = (
        meaning.colour if meaning and meaning.colour else segment_colour(index, count)
    )
    key = f"Segment{index}_"
    header[key + "Color"] = f"{red / 255:.6g} {green / 255:.6g} {blue / 255:.6g}"
    header[key + "ColorAutoGenerated"] = "0"
    if meaning is None or not (meaning.coded or meaning.slicer_terminology):
        concept = concept_for(name)
        meaning = meaning_of_concept(concept) if concept.known else None
    terminology = terminology_of(meaning) if meaning is not None else None
    if terminology:
        header[key + "Tags"] = f"TerminologyEntry:{terminology}|"
    if inside.any():
        where = np.nonzero(inside)
        extent = " ".join(
            f"{o + int(w.min())} {o + int(w.max())}" for o, w in zip(offset, where, strict=True)
        )
    else:
        extent = "0 -1 0 -1 0 -1"  # Slicer's empty extent
    header[key + "Extent"] = extent
    header[key + "ID"] = name
    header[key + "LabelValue"] = str(label)
    header[key + "Layer"] = str(layer)
    header[key + "Name"] = name
    header[key + "NameAutoGenerated"] = "0"


def _geometry_fields(space: Space, *, four_d: bool) -> dict[str, Any]:
    directions, origin = nrrd_geometry(space)
    if four_d:
        directions = np.vstack([np.full(3, np.nan), directions])
    return {
        "space": _LPS,
        "space directions": directions,
        "space origin": origin,
        "kinds": ["list", "domain", "domain", "domain"] if four_d else ["domain"] * 3,
        "encoding": "gzip",
    }


def read_seg_nrrd(path: str | os.PathLike[str]) -> Iterator[tuple[str, SegmentationMask]]:
    """Each segment of a ``.seg.nrrd`` as a 0/1 uint8 mask, in segment order.

    Raises
    ------
    FormatError
        Not a readable NRRD, no segment fields, or geometry it cannot describe.
    """
    for name, mask, _ in read_seg_nrrd_segments(path):
        yield name, mask


def read_seg_nrrd_segments(
    path: str | os.PathLike[str],
) -> Iterator[tuple[str, SegmentationMask, SegmentMeaning]]:
    """As :func:`read_seg_nrrd`, each with its colour and terminology (Slicer's codes).

    Raises
    ------
    FormatError
        As :func:`read_seg_nrrd`.
    """
    source = Path(path)
    data, header = read_nrrd(source)
    space = _space_of(header, data, source)
    segments = sorted(
        int(k[len("Segment") : -len("_Name")])
        for k in header
        if k.startswith("Segment") and k.endswith("_Name") and k[7:-5].isdigit()
    )
    if not segments:
        raise FormatError(f"{source}: no SegmentN_Name fields: not a Slicer segmentation")
    volumes = data if data.ndim == 4 else data[None]
    taken: set[str] = set()
    for n in segments:
        key = f"Segment{n}_"
        given = str(header[key + "Name"]) or f"segment_{n}"
        name, number = given, 2
        while name in taken:  # Slicer allows two segments one name (their IDs differ)
            name, number = f"{given}_{number}", number + 1
        if name != given:
            warnings.warn(
                MedmaskWarning(
                    f"{source}: two segments are named {given!r}; segment {n} is stored as {name!r}"
                ),
                stacklevel=2,
            )
        taken.add(name)
        try:
            layer = int(header.get(key + "Layer", 0))
            label = int(header.get(key + "LabelValue", 1))
        except ValueError as err:
            raise FormatError(f"{source}: segment {name!r} has a bad layer or label") from err
        if not 0 <= layer < volumes.shape[0]:
            raise FormatError(
                f"{source}: segment {name!r} is in layer {layer} of {volumes.shape[0]}"
            )
        voxels = np.ascontiguousarray(volumes[layer] == label).view(np.uint8)
        meaning = _meaning_of(header, key, source, name)
        yield name, SegmentationMask._trusted(voxels, LabelMapping({name: 1}), space), meaning


def read_nrrd_label_map(path: str | os.PathLike[str]) -> SegmentationMask:
    """A plain NRRD label map (``.nrrd``, not ``.seg.nrrd``): what 3D Slicer saves for a
    label map volume, and MITK and ITK-SNAP for a segmentation. Its labels are named as a
    NIfTI file's are (:func:`medmask.exchange.nifti.file_label_names`: a JSON sidecar
    ``<stem>.json``, the file's stem for one value, else ``idx_<label>``).

    Raises
    ------
    FormatError
        Not a readable NRRD, not 3-D, voxels that are not labels, or geometry no Space
        describes; the message names the file.
    """
    from .nifti import as_label_array, file_label_names  # noqa: PLC0415 - (nibabel lazily)

    source = Path(path)
    data, header = read_nrrd(source)
    if data.ndim != 3:
        raise FormatError(f"{source}: a label map must be 3-D, got {data.shape}")
    array = as_label_array(data, str(source))
    space = _space_of(header, array, source)
    stem = source.name[: -len(".nrrd")]
    try:
        return SegmentationMask(
            np.ascontiguousarray(array), file_label_names(source, stem, array), space
        )
    except ValueError as err:  # values that are not labels (negative, fractions, ...)
        raise FormatError(f"{source}: not a mask: {err}") from err


def _meaning_of(header: dict[str, Any], key: str, source: Path, name: str) -> SegmentMeaning:
    """A segment's ``Color`` and ``Tags``' TerminologyEntry as a SegmentMeaning."""
    colour = None
    text = str(header.get(key + "Color", "")).split()
    if len(text) == 3:
        try:
            colour = tuple(round(255 * min(1.0, max(0.0, float(v)))) for v in text)
        except ValueError as err:
            raise FormatError(f"{source}: segment {name!r} has a bad Color {text}") from err
    terminology = None
    for tag in str(header.get(key + "Tags", "")).split("|"):
        field_name, _, value = tag.partition(":")
        if field_name.strip() == "TerminologyEntry" and value.strip():
            terminology = value.strip()
    codes = parse_terminology(terminology) if terminology else {}
    return SegmentMeaning(colour=colour, slicer_terminology=terminology, **codes)  # type: ignore[arg-type]


_TERMINOLOGY_FIELDS = (
    None, "category", "type", "type_modifier", None, "region", "region_modifier"
)  # fmt: skip


def parse_terminology(entry: str) -> dict[str, Code]:
    """The codes of a Slicer TerminologyEntry (``context~SCT^123^Category~SCT^456^Type~...``).

    Seven ``~``-separated fields: terminology context, category, type, type modifier,
    anatomic context, anatomic region, region modifier; each code ``scheme^value^meaning``
    (empty: ``^^``). A category without a type (or the reverse) gives neither.
    """
    out: dict[str, Code] = {}
    for field_name, part in zip(_TERMINOLOGY_FIELDS, entry.split("~"), strict=False):
        if field_name is None:
            continue
        pieces = part.split("^")
        if len(pieces) >= 3 and pieces[0] and pieces[1]:
            out[field_name] = Code(pieces[1], pieces[0], "^".join(pieces[2:]))
    if ("category" in out) != ("type" in out):
        out.pop("category", None)
        out.pop("type", None)
    return out


def terminology_of(meaning: SegmentMeaning) -> str | None:
    """A Slicer TerminologyEntry for ``meaning`` (the one read, verbatim, when there is one)."""
    if meaning.slicer_terminology:
        return meaning.slicer_terminology
    if not meaning.coded:
        return None

    def code(value: Code | None) -> str:
        return "^^" if value is None else f"{value.scheme}^{value.value}^{value.meaning}"

    return "~".join(
        [
            "Segmentation category and type - DICOM master list",
            code(meaning.category),
            code(meaning.type),
            code(meaning.type_modifier),
            "Anatomic codes - DICOM master list",
            code(meaning.region),
            code(meaning.region_modifier),
        ]
    )


def nrrd_bytes(data: NDArray[Any], header: dict[str, Any]) -> bytes:
    """A whole NRRD file (data attached) whose key/value text may be any Unicode, as UTF-8.

    3D Slicer keeps every string as UTF-8 (Slicer PR #1319, 2020) and teem writes header
    bytes as given, so a segment named 肝脏 is UTF-8 in the header Slicer writes. pynrrd
    encodes its header as ASCII; non-ASCII values go through it as ASCII placeholders
    that are replaced by their UTF-8 bytes in the header afterwards.

    Raises
    ------
    ValueError
        A value holds a line break (a NRRD header line cannot).
    """
    placeholders: dict[bytes, bytes] = {}
    ascii_header: dict[str, Any] = {}
    for key, value in header.items():
        ascii_header[key] = value
        if isinstance(value, str):
            if "\n" in value or "\r" in value:
                raise ValueError(f"{key} holds a line break, which a NRRD header cannot: {value!r}")
            if not value.isascii():
                token = f"@medmask-utf8-{len(placeholders)}@"
                placeholders[token.encode("ascii")] = value.encode("utf-8")
                ascii_header[key] = token
    buffer = io.BytesIO()
    nrrd.write(buffer, data, ascii_header, compression_level=6, index_order="F")
    raw = buffer.getvalue()
    end = raw.index(b"\n\n") + 2  # the blank line between header and data
    head = raw[:end]
    for placeholder, utf8 in placeholders.items():
        head = head.replace(placeholder, utf8)
    return head + raw[end:]


_MAX_HEADER_BYTES = 64 * 2**20


def read_nrrd(source: Path) -> tuple[NDArray[Any], dict[str, Any]]:
    """A NRRD file's data and header, the header's text decoded as UTF-8 (what Slicer writes).

    A header that is not UTF-8 is read as GB18030, else Latin-1, with a warning naming
    the file (pynrrd alone drops every non-ASCII byte without a word).

    Raises
    ------
    FormatError
        Not a NRRD file, a header without its end, or data pynrrd cannot read; the message
        names the file.
    """
    try:
        with source.open("rb") as handle:
            magic = handle.readline(64)
            if not magic.startswith(b"NRRD"):
                raise FormatError(
                    f"{source}: not a NRRD file (it begins {magic[:8]!r}, expected b'NRRD000x')"
                )
            lines, size = [], 0
            while True:
                line = handle.readline(_MAX_HEADER_BYTES)
                size += len(line)
                if not line or size >= _MAX_HEADER_BYTES:
                    raise FormatError(
                        f"{source}: the NRRD header has no end (no blank line before the data)"
                    )
                if not line.strip():
                    break
                lines.append(line)
            text = _decode_header(b"".join(lines), source)
            header = nrrd.read_header([magic.decode("ascii"), *text.splitlines(keepends=True)])
            data = nrrd.read_data(header, handle, str(source))
    except FormatError:
        raise
    except OSError as err:
        raise FormatError(f"{source}: cannot read the file ({err.strerror or err})") from err
    except Exception as err:  # pynrrd's parser: NRRDError, ValueError, zlib.error, KeyError ...
        raise FormatError(
            f"{source}: not a readable NRRD file ({type(err).__name__}: {err})"
        ) from err
    return data, dict(header)


def _decode_header(raw: bytes, source: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for codec in ("gb18030", "latin-1"):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        warnings.warn(
            MedmaskWarning(
                f"{source}: the NRRD header is not UTF-8 (what 3D Slicer writes); read its "
                f"text as {codec.upper()}: check the segment names"
            ),
            stacklevel=3,
        )
        return text
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _space_of(header: dict[str, Any], data: NDArray[Any], source: Path) -> Space:
    """The Space of a NRRD file's geometry; a file that does not record it all is read
    as ITK (3D Slicer, SimpleITK) reads it, with a warning: no ``space directions``: at
    the origin, axes along LPS, ``spacings`` (or 1 mm) apart; no ``space``: LPS."""
    shape = data.shape[1:] if data.ndim == 4 else data.shape
    missing = []
    if header.get("space directions") is None:
        try:
            spacings = np.asarray(header.get("spacings", np.ones(3)), dtype=np.float64)
            directions = np.diag(spacings[-3:]) if spacings.size >= 3 else np.eye(3)
        except (TypeError, ValueError) as err:
            raise FormatError(f"{source}: its spacings are not numbers ({err})") from err
        missing.append("no space directions: placed at the origin, axes along LPS")
    else:
        try:
            directions = np.asarray(header.get("space directions"), dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise FormatError(f"{source}: its space directions are not numbers ({err})") from err
        if data.ndim == 4:
            directions = directions[1:]
    if "space" not in header:
        missing.append("no space named: read as left-posterior-superior")
    if missing:
        warnings.warn(
            MedmaskWarning(
                f"{source}: the NRRD header does not say where the voxels lie "
                f"({'; '.join(missing)}, as ITK and 3D Slicer read it): check the geometry "
                "before exporting to DICOM or comparing with the scan"
            ),
            stacklevel=3,
        )
    try:
        origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=np.float64)
        return space_from_nrrd(directions, origin, str(header.get("space", _LPS)), shape)
    except ValueError as err:
        raise FormatError(f"{source}: {err}") from err
