"""Single-mask ``.msk`` files: :func:`save_mask` writes format 2, :func:`load_mask` reads it
and medmask 0.1.3's files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from spacetransformer import Space

from ..codecs import DEFAULT_LEVEL, CodecId, EncodedMask, decode_mask, encode_mask
from ..codecs.legacy import decode_legacy_blob
from ..deprecation import check_legacy_codec, warn_deprecated
from ..errors import FormatError
from ..format.legacy_msk import LEGACY_MSK_MAGIC, legacy_msk_header, unpack_legacy_msk
from ..format.msk import msk_header, pack_msk, unpack_msk
from ..model.mapping import LabelMapping
from ..model.mask import SegmentationMask
from ..model.space import space_from_dict, space_to_dict
from .atomic import write_atomic

__all__ = ["MaskFile", "load_mask", "save_mask"]


def save_mask(
    mask: SegmentationMask,
    path: str | os.PathLike[str],
    *,
    level: int | None = None,
    codec: str | None = None,
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
    codec : {"zstd"}, optional
        medmask 0.1.3's argument, accepted with a deprecation warning: medmask picks the
        codec of every mask itself.

    Examples
    --------
    >>> save_mask(mask, "liver.msk")  # doctest: +SKIP
    >>> load_mask("liver.msk") == mask  # doctest: +SKIP
    True
    """
    check_legacy_codec(codec, "save_mask")
    encoded = encode_mask(np.asarray(mask.data), level=DEFAULT_LEVEL if level is None else level)
    meta = {
        "space": space_to_dict(mask.space),
        "mapping": mask.mapping.to_dict(),
        "dtype": encoded.dtype,
        "codec": int(encoded.codec),
        "bbox": [list(axis) for axis in encoded.bbox] if encoded.bbox else None,
    }
    write_atomic(path, pack_msk(meta, encoded.blob))


def load_mask(path: str | os.PathLike[str], *, codec: str | None = None) -> SegmentationMask:
    """Read a ``.msk`` file written by this medmask or by medmask 0.1.3.

    ``codec`` is medmask 0.1.3's argument, accepted ("zstd") with a deprecation warning.

    Raises
    ------
    FormatError
        The file is not a ``.msk`` file, is truncated, or holds inconsistent data; the
        message names the file and the problem.
    ChecksumError
        Stored bytes do not match their checksum.
    """
    check_legacy_codec(codec, "load_mask")
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


class MaskFile:
    """medmask 0.1.3's single-mask file object: ``MaskFile(path, mode).write(mask)`` / ``.read()``.

    Kept so 0.1.3 code runs; it warns once and delegates to :func:`save_mask` and
    :func:`load_mask` (so it writes format 2 and reads both formats).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.msk`` file.
    mode : {"r", "w", "a"}
        "r" needs an existing file (FileNotFoundError otherwise); "w" replaces it when
        :meth:`write` runs.
    codec : {"zstd"}, optional
        As 0.1.3: only its one codec name is accepted.
    """

    def __init__(
        self, path: str | os.PathLike[str], mode: str = "r", *, codec: str | None = None
    ) -> None:
        warn_deprecated("MaskFile", "use medmask.save_mask(mask, path) / medmask.load_mask(path)")
        if mode not in ("r", "w", "a"):
            raise ValueError(f"unsupported mode: {mode!r} (use 'r', 'w' or 'a')")
        check_legacy_codec(codec, "MaskFile")
        self.path, self.mode = os.fspath(path), mode
        if mode == "r" and not Path(path).exists():
            raise FileNotFoundError(self.path)

    def write(self, segmask: SegmentationMask) -> None:
        """Write ``segmask`` to the file (atomically, format 2)."""
        if self.mode == "r":
            raise OSError(f"{self.path}: file opened read-only")
        save_mask(segmask, self.path)

    def read(self) -> SegmentationMask:
        """The mask in the file."""
        return load_mask(self.path)

    @property
    def header(self) -> dict[str, int]:
        """The file's header fields: 0.1.3's section offsets for its files, else format 2's."""
        data = Path(self.path).read_bytes()
        if data.startswith(LEGACY_MSK_MAGIC):
            return legacy_msk_header(data)
        return msk_header(data, self.path)

    def __enter__(self) -> MaskFile:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


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
