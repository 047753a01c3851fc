"""Single-mask ``.msk`` files: :func:`save_mask` writes format 2, :func:`load_mask` reads it
and medmask 0.1.3's files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from spacetransformer import Space

from .codecs import DEFAULT_LEVEL, CodecId, EncodedMask, decode_mask, encode_mask
from .codecs.legacy import decode_legacy_blob
from .errors import FormatError
from .format.legacy_msk import LEGACY_MSK_MAGIC, unpack_legacy_msk
from .format.msk import pack_msk, unpack_msk
from .mapping import LabelMapping
from .mask import SegmentationMask
from .space import space_from_dict, space_to_dict

__all__ = ["load_mask", "save_mask", "write_atomic"]


def save_mask(
    mask: SegmentationMask, path: str | os.PathLike[str], *, level: int | None = None
) -> None:
    """Write ``mask`` to a ``.msk`` file (format 2), atomically.

    Parameters
    ----------
    mask : SegmentationMask
        The mask to store: array (cropped to its bounding box), names and Space.
    path : str or os.PathLike
        Destination; an existing file is replaced only once the new one is complete.
    level : int, optional
        compression level; default :data:`medmask.codecs.DEFAULT_LEVEL` (small files).

    Examples
    --------
    >>> save_mask(mask, "liver.msk")  # doctest: +SKIP
    >>> load_mask("liver.msk") == mask  # doctest: +SKIP
    True
    """
    encoded = encode_mask(mask.data, level=DEFAULT_LEVEL if level is None else level)
    meta = {
        "space": space_to_dict(mask.space),
        "mapping": mask.mapping.to_dict(),
        "dtype": encoded.dtype,
        "codec": int(encoded.codec),
        "bbox": [list(axis) for axis in encoded.bbox] if encoded.bbox else None,
    }
    write_atomic(path, pack_msk(meta, encoded.blob))


def load_mask(path: str | os.PathLike[str]) -> SegmentationMask:
    """Read a ``.msk`` file written by this medmask or by medmask 0.1.3.

    Raises
    ------
    FormatError
        The file is not a ``.msk`` file, is truncated, or holds inconsistent data; the
        message names the file and the problem.
    ChecksumError
        Stored bytes do not match their checksum.
    """
    source = os.fspath(path)
    data = Path(path).read_bytes()
    if data.startswith(LEGACY_MSK_MAGIC):
        return _load_legacy(data, source)
    parts = unpack_msk(data, source)
    meta = parts.meta
    try:
        space = space_from_dict(meta["space"])
        shape = (int(space.shape[0]), int(space.shape[1]), int(space.shape[2]))
        bbox = _bbox(meta["bbox"])
        encoded = EncodedMask(
            CodecId(int(meta["codec"])), str(meta["dtype"]), shape, bbox, parts.blob
        )
        mapping = LabelMapping(meta["mapping"])
        array = decode_mask(encoded)
        return SegmentationMask(array, mapping, space)
    except FormatError as err:
        raise FormatError(f"{source}: {err}") from err
    except (KeyError, TypeError, ValueError) as err:  # fields missing or of the wrong kind
        raise FormatError(f"{source}: metadata is inconsistent: {err!r}") from err


def _bbox(value: Any) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
    if value is None:
        return None
    (a, b), (c, d), (e, f) = value
    return ((int(a), int(b)), (int(c), int(d)), (int(e), int(f)))


def _load_legacy(data: bytes, source: str) -> SegmentationMask:
    parts = unpack_legacy_msk(data, source)
    try:
        # 0.1.3 wrote the Space with its axes reversed and reversed it back on reading.
        space = Space.from_json(parts.space_json.decode("utf-8")).reverse_axis_order()
        mapping = LabelMapping.from_json(parts.mapping_json)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise FormatError(
            f"{source}: medmask 0.1.3 geometry or names are damaged: {err!r}"
        ) from err
    array = decode_legacy_blob(parts.blob, source)
    try:
        return SegmentationMask(array, mapping, space)
    except ValueError as err:
        raise FormatError(f"{source}: {err}") from err


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync, then rename over it."""
    target = Path(path)
    handle, temp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or "."
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temp).replace(target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
