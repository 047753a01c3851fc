"""NIfTI in and out, with nibabel: geometry, axis order and dtype kept exactly.

* Axis order: the array is nibabel's (``np.asarray(img.dataobj)``), the Space is built
  from the same affine, so ``space.shape == array.shape``.
* Geometry: the Space comes from the affine nibabel reports (the sform when set), and
  the affine written back is the Space's; both headers' float32 values agree exactly.
  A file with both codes 0 records no place: nibabel's is kept, with a warning
  (:func:`unplaced_note`), and the codes go back with it. A file whose qform and sform
  disagree is warned of (:func:`forms_apart`): other readers take its qform.
* Label names, first found wins: the ``mapping`` argument; a TotalSegmentator label
  table in a header extension; a JSON sidecar ``<stem>.json`` (``{"1": "liver"}`` or
  ``{"liver": 1}``); the labels of an nnU-Net ``dataset.json`` beside it; for a file
  holding one non-zero value (1, or 255 as some editors store a mask), the file's stem
  (``liver.nii.gz`` -> ``liver``); otherwise ``idx_<label>``.
"""

from __future__ import annotations

import codecs
import contextlib
import copy
import functools
import gzip
import hashlib
import json
import logging
import math
import os
import re
import sys
import threading
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

import numpy as np
from numpy.typing import NDArray
from spacetransformer import Space

from ..errors import FormatError, MedmaskError, MedmaskWarning
from ..files.atomic import atomic_path
from ..files.names import readable
from ..lazy import lazy_module
from ..model.geometry import grid_turn, nifti_affine
from ..model.label_values import MASK_DTYPES, labels_present
from ..model.mapping import LabelMapping
from ..model.mask import SegmentationMask
from ..model.space import GEOMETRY_TOLERANCE, geometry_difference, space_from_affine
from .nifti_labels import CARET_ECODE, TOTALSEG_ECODE, decode_label_table, encode_label_table

if TYPE_CHECKING:
    import nibabel as nib
else:  # on first use: most commands never read NIfTI
    nib = lazy_module("nibabel")

__all__ = [
    "DATASET_JSON",
    "NIFTI_SUFFIXES",
    "as_label_array",
    "dataset_json",
    "dataset_labels",
    "file_label_names",
    "forms_apart",
    "forms_note",
    "holds_label_map",
    "is_nifti",
    "mask_file_name",
    "mask_file_names",
    "nifti_space",
    "nifti_stem",
    "read_nifti",
    "read_nifti_folder",
    "read_voxels",
    "unplaced_note",
    "write_nifti",
]

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def read_nifti(
    source: str | os.PathLike[str] | nib.Nifti1Image,
    mapping: Mapping[str, int] | LabelMapping | None = None,
) -> SegmentationMask:
    """Read a binary or multi-label NIfTI mask.

    Parameters
    ----------
    source : str, os.PathLike or nibabel.Nifti1Image
        A ``.nii``/``.nii.gz`` path or an image already loaded.
    mapping : Mapping[str, int], optional
        Names of the labels; default: read from the file (see the module docstring).

    Returns
    -------
    SegmentationMask
        The voxels in the type the file stores them in (uint8, int16, float32, ...),
        not copied; a file of one volume in 4 or more dimensions gives its 3-D volume,
        a 2-D file a volume of one slice.

    Raises
    ------
    FormatError
        The file is not a mask: not 3-D, values that are negative, fractions or
        beyond 32 bits, a sheared affine, or it cannot be read at all.
    """
    return _read_nifti(source, mapping, None)


def _one_volume(shape: tuple[int, ...]) -> bool:
    """Whether every dimension after the third has size 1 (one volume of a 4-D or 5-D file)."""
    return all(n == 1 for n in shape[3:])


# the Space of the affine a folder's files share, worked out once: (affine bytes, shape) ->
# Space (each mask gets its own copy)
_Spaces = dict[tuple[bytes, tuple[int, ...]], Space]


def _read_nifti(
    source: str | os.PathLike[str] | nib.Nifti1Image,
    mapping: Mapping[str, int] | LabelMapping | None,
    spaces: _Spaces | None,
    forms: list[tuple[str, float]] | None = None,
    fixes: _Fixes | None = None,
) -> SegmentationMask:
    """:func:`read_nifti`; files whose qform and sform disagree (:func:`forms_apart`) go
    into ``forms`` as ``(file name, mm)`` when it is given, and what nibabel fixed in the
    header into ``fixes``; else both are warned of."""
    image, name = _open(source, fixes)
    shape = tuple(image.shape)
    if not (len(shape) in (2, 3) or (len(shape) > 3 and _one_volume(shape))):
        volumes = " x ".join(str(n) for n in shape[3:])
        raise FormatError(
            f"{name}: a mask must be 3-D (or 2-D: one slice; or more dimensions of size 1 "
            f"after the third), got {shape}: {volumes} volumes (time points or channels; "
            "a one-hot file: save each channel, or their argmax, as a file of its own)"
        )
    try:
        raw = read_voxels(image)
    except (OSError, ValueError, EOFError) as err:
        raise FormatError(f"{name}: cannot read the voxel data: {err}") from err
    if raw.ndim > 3:  # (X, Y, Z, 1): a time series of one, (X, Y, Z, 1, 1): one component
        raw = raw.reshape(raw.shape[:3])
    elif raw.ndim == 2:  # a 2-D file (ITK writes one slice so) is a volume of one slice
        raw = raw[..., None]
    array = as_label_array(raw, name)
    try:
        space = _space(image.affine, array.shape, spaces)
    except ValueError as err:
        raise FormatError(f"{name}: {err}") from err
    apart = forms_apart(image, array.shape)
    if apart:
        if forms is None:
            warnings.warn(MedmaskWarning(forms_note([name], apart)), stacklevel=3)
        else:
            forms.append((Path(name).name, apart))
    names = _label_names(image, source, array, mapping)
    try:
        mask = SegmentationMask._named_in(name, array, names, space)
    except ValueError as err:  # values that are not labels (negative, fractions, ...)
        sample = array.ravel()[:: array.size // 65536 + 1]  # (many values: an image's)
        scan = " (a scan's image rather than a mask? only masks are packed)" if (
            np.unique(sample).size > 256
        ) else ""  # fmt: skip
        raise FormatError(f"{name}: not a mask: {err}{scan}") from err
    header = image.header
    mask.nifti_codes = (int(header["qform_code"]), int(header["sform_code"]))
    return mask


def _space(affine: NDArray[Any], shape: tuple[int, ...], spaces: _Spaces | None) -> Space:
    """The Space of ``affine``, from ``spaces`` when an earlier file had the same affine
    bit for bit (a TotalSegmentator folder's 117 files mostly do: 0.4 ms a file saved)."""
    if spaces is None:
        return space_from_affine(affine, shape)
    key = (np.asarray(affine, dtype=np.float64).tobytes(), tuple(int(n) for n in shape))
    known = spaces.get(key)
    if known is None:
        if len(spaces) > 8:
            spaces.clear()
        known = spaces[key] = space_from_affine(affine, shape)
    return copy.copy(known)


def nifti_space(source: str | os.PathLike[str]) -> Space:
    """The voxel grid of a NIfTI file - a scan's as well as a mask's - from its header
    alone (the voxels are not read).

    A scan of several volumes (a 4-D fMRI, DWI or dynamic PET series) has the grid of each.

    Raises
    ------
    FormatError
        Not a readable NIfTI file, not of 2 dimensions or more, or a grid no Space
        describes (sheared).
    """
    image, name = _open(source)
    shape = tuple(int(n) for n in image.shape)
    if len(shape) == 2:
        shape = (*shape, 1)
    shape = shape[:3]
    if len(shape) != 3:
        raise FormatError(f"{name}: not a 3-D image ({image.shape}): no grid of voxels")
    apart = forms_apart(image, shape)
    if apart:
        warnings.warn(MedmaskWarning(forms_note([name], apart)), stacklevel=2)
    try:
        return space_from_affine(image.affine, shape)
    except ValueError as err:
        raise FormatError(f"{name}: {err}") from err


def read_nifti_folder(folder: str | os.PathLike[str]) -> dict[str, SegmentationMask]:
    """Every ``<name>.nii.gz`` / ``<name>.nii`` in ``folder`` as ``{name: mask}``, sorted by name.

    Each mask keeps its own voxels, so overlapping structures stay intact. All files
    must share one geometry (FormatError naming the first that differs).
    """
    root = Path(folder)
    if not root.is_dir():
        raise MedmaskError(f"{root}: not a folder of NIfTI masks")
    files = sorted(p for p in root.iterdir() if p.is_file() and is_nifti(p))
    if not files:
        raise MedmaskError(f"{root}: no .nii or .nii.gz files found")
    return dict(sorted(iter_nifti_masks(files)))


def iter_nifti_masks(
    files: Iterable[str | os.PathLike[str]],
    *,
    strict: bool = False,
    drift: list[tuple[str, float]] | None = None,
    notes: list[str] | None = None,
) -> Iterator[tuple[str, SegmentationMask]]:
    """``(name, mask)`` of each file in turn (one in memory at a time), named by its stem.

    An archive keeps the first file's geometry. Files whose geometry differs from it by
    float noise (at most :data:`medmask.model.space.GEOMETRY_TOLERANCE`; TotalSegmentator's
    s0000 has 25 such files, 1.5e-4 mm) are appended to ``drift`` as ``(file name,
    largest difference)``; with ``strict`` any difference is an error. When ``notes`` is
    given (a list), a file on the first file's grid in another axis order (the same voxel
    centres, axes permuted or reversed: a tool's RAS array beside another's LPS one) is
    turned onto the first file's grid (:func:`medmask.model.geometry.grid_turn`), and a
    note saying so is appended to ``notes``; else it is an error like any other geometry.
    Files that record no place in space (:func:`unplaced_note`) get one note in ``notes``.

    Raises
    ------
    FormatError
        A file is not a mask, or its geometry differs from the first file's, or two files
        give one name (``liver.nii`` beside ``liver.nii.gz``): an archive holds one mask
        per name, and keeping either would lose the other silently.
    """
    first: tuple[Path, SegmentationMask] | None = None
    spaces: _Spaces = {}
    named: dict[str, Path] = {}
    unplaced: list[str] = []
    forms: list[tuple[str, float]] = []
    fixes: _Fixes = {}
    for item in files:
        path = Path(item)
        mask = _read_nifti(path, None, spaces, forms, fixes)
        if mask.nifti_codes == (0, 0):
            unplaced.append(path.name)
        name = _mask_name(path, mask)
        earlier = named.setdefault(name, path)
        if earlier != path:
            raise FormatError(
                f"{path}: its mask name {name!r} is {earlier.name}'s too; an archive holds "
                "one mask per name: rename or move one of the two files"
            )
        if first is None:
            first = (path, mask)
        else:
            difference = geometry_difference(mask.space, first[1].space)
            if difference > GEOMETRY_TOLERANCE and notes is not None and not strict:
                mask, difference = _turned(mask, first, path, notes)
            if difference > (0.0 if strict else GEOMETRY_TOLERANCE):
                shapes = f"shape {mask.shape} vs {first[1].shape}"
                detail = shapes if math.isinf(difference) else f"by up to {difference:.3g} mm"
                raise FormatError(
                    f"{path}: geometry differs from {first[0].name} ({detail}); one archive "
                    "holds one scan's masks" + (" (strict geometry)" if strict else "")
                )
            if difference and drift is not None:
                drift.append((path.name, difference))
        yield name, mask
    if unplaced and notes is not None:
        notes.append(unplaced_note(unplaced))
    _say_once(notes, forms, fixes)


def _say_once(notes: list[str] | None, forms: list[tuple[str, float]], fixes: _Fixes) -> None:
    """What a folder's files share (their headers often are one header): one line for all
    of them, into ``notes`` or warned of."""
    said = [_fix_note(paths, message) for message, paths in fixes.items()]
    if forms:
        said.append(forms_note([file for file, _ in forms], max(mm for _, mm in forms)))
    for note in said:
        if notes is None:
            warnings.warn(MedmaskWarning(note), stacklevel=3)
        else:
            notes.append(note)


_FORMS_APART: Final = 0.1  # of the smallest voxel size: a qform's float32 rounding is far less


def forms_apart(image: nib.Nifti1Image, shape: tuple[int, ...]) -> float:
    """How far apart (mm) the qform and the sform put the grid's corner voxels, when the
    header sets both (codes above 0) and they differ by more than a tenth of a voxel;
    else 0.

    nibabel, and so medmask, takes the sform; ITK (SimpleITK, ITK-SNAP, nnU-Net's and
    MONAI's ITK readers) takes the qform unless the sform's code is 1 ("scanner"), and
    registration tools such as ANTs before 2.3.5 and greedy take the qform: a file whose
    forms disagree (a tool updated one of them: MONAI Label#211, LST-AI#44) lies in two
    places, depending on the reader.
    """
    header = image.header
    if not (int(header["qform_code"]) > 0 and int(header["sform_code"]) > 0):
        return 0.0
    qform, sform = header.get_qform(), header.get_sform()
    if not (np.all(np.isfinite(qform)) and np.all(np.isfinite(sform))):
        return 0.0  # (the affine's own error says what is wrong)
    corners = np.array(
        [
            [i, j, k, 1.0]
            for i in (0, shape[0] - 1)
            for j in (0, shape[1] - 1)
            for k in (0, shape[2] - 1)
        ]
    )
    apart = float(np.max(np.linalg.norm((corners @ qform.T - corners @ sform.T)[:, :3], axis=1)))
    sizes = np.linalg.norm(sform[:3, :3], axis=0)
    smallest = float(sizes[sizes > 0].min()) if (sizes > 0).any() else 1.0
    return apart if apart > _FORMS_APART * smallest else 0.0


def _files(files: list[str]) -> str:
    """How a note names the files it is about: the one, or how many and the first."""
    return files[0] if len(files) == 1 else f"{len(files)} files ({Path(files[0]).name}, ...)"


def forms_note(files: list[str], apart: float) -> str:
    """What to say of NIfTI files whose qform and sform disagree (:func:`forms_apart`)."""
    return (
        f"{_files(files)}: the qform and the sform place the voxels up to {apart:.3g} mm apart "
        "(a tool updated one of them); medmask takes the sform, as nibabel does, but ITK "
        "readers (SimpleITK, ITK-SNAP, nnU-Net) take the qform unless the sform's code is "
        "1, and the NIfTI files unpack writes carry the sform's place in both: check which "
        "one the scan's other files follow"
    )


def unplaced_note(files: list[str]) -> str:
    """What to say of NIfTI files whose qform and sform codes are both 0: they do not
    record where they lie. nibabel then places the voxels by Analyze's convention (the
    first axis flipped, the volume centred on the origin), ITK (SimpleITK, 3D Slicer) at
    the origin without flips; the archive keeps nibabel's, and unpack writes the codes
    back, so each reader places the unpacked files as it placed these."""
    return (
        f"{_files(files)}: no qform or sform (both codes 0), so where the voxels lie is not "
        "recorded; the archive takes nibabel's placing (Analyze's: first axis flipped, "
        "centred on the origin), which ITK readers such as 3D Slicer do not share: check "
        "the geometry before exporting to DICOM or comparing with the scan"
    )


def _turned(
    mask: SegmentationMask, first: tuple[Path, SegmentationMask], path: Path, notes: list[str]
) -> tuple[SegmentationMask, float]:
    """``mask`` turned onto the first file's grid and no difference, when it is that grid
    in another axis order (a note appended to ``notes``); else itself and its difference."""
    target = first[1].space
    turn = grid_turn(mask.space, target, GEOMETRY_TOLERANCE)
    if turn is None:
        return mask, geometry_difference(mask.space, target)
    order, flips = turn
    data = np.flip(np.transpose(mask.data, order), tuple(a for a in range(3) if flips[a]))
    codes = ["".join(nib.aff2axcodes(nifti_affine(s))) for s in (mask.space, target)]
    notes.append(
        f"{path.name}: the voxels lie in another axis order ({codes[0]}) than "
        f"{first[0].name}'s ({codes[1]}) on the same grid; turned onto it, voxel for voxel "
        "(unpack writes the file in the archive's order)"
    )
    turned = SegmentationMask(np.ascontiguousarray(data), mask.mapping, copy.deepcopy(target))
    turned.nifti_codes = mask.nifti_codes
    return turned, 0.0


def _mask_name(path: Path, mask: SegmentationMask) -> str:
    """The file's stem, or the one name its label table holds when the stem is that name
    escaped by :func:`mask_file_name` or :func:`mask_file_names` (``a%2Fb.nii.gz`` holding
    ``a/b``, ``%4Civer.nii.gz`` holding ``Liver``) or cut to fit a file name (its tag)."""
    stem = readable(nifti_stem(path))  # (a Windows copy's GBK name: as text)
    names = mask.mapping.names()
    if (
        len(names) == 1
        and names[0] != stem
        and (unquote(stem) == names[0] or stem.endswith(_name_tag(names[0])))  # (_fitting)
    ):
        return names[0]
    return stem


_UNSAFE_IN_FILE_NAMES = frozenset('%/\\:*?"<>|')
_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{d}{n}" for d in ("COM", "LPT") for n in range(1, 10)]
)


def mask_file_name(name: str) -> str:
    """``name`` as a file name that is safe on Linux, macOS and Windows.

    Characters a file name cannot hold somewhere (``/ \\ : * ? " < > |``, control
    characters), those the locale's encoding of file names lacks (``Ø`` under
    ``LANG=zh_CN.GBK``) and ``%`` itself become ``%XX`` (their UTF-8 bytes in hex, as in
    a URL); so do spaces and dots at either end, a name that is all dots (``.``, ``..``)
    and the first letter of a Windows device name (``CON`` -> ``%43ON``). Every other
    character, Chinese included, stays - except, in a locale that is not UTF-8, in a name
    whose bytes there would read back as another name (:func:`~medmask.files.names.readable`
    reads UTF-8 first: 脾 in GBK reads as Ƣ). Two different names never give the same
    file name.

    Examples
    --------
    >>> mask_file_name("a/b")
    'a%2Fb'
    >>> mask_file_name("..")
    '%2E%2E'
    >>> mask_file_name("肝脏")
    '肝脏'
    """
    escape = _escape
    chars = [escape(ch) if ch in _UNSAFE_IN_FILE_NAMES or ord(ch) < 32 else ch for ch in name]
    if not _FILE_SYSTEM_UTF8:  # (a GBK locale: a character it lacks cannot be a file's)
        chars = [escape(ch) if len(ch) == 1 and _unstorable(ch) else ch for ch in chars]
        stored = "".join(chars)
        if readable(stored) != stored:  # its GBK bytes, read, say another
            # name (脾 is C6 A2 in GBK, which UTF-8 reads as Ƣ): escaped, it comes back
            chars = [escape(ch) if len(ch) == 1 and ord(ch) > 127 else ch for ch in chars]
    for order in (range(len(chars)), range(len(chars) - 1, -1, -1)):
        for i in order:  # spaces and dots at either end
            if name[i] not in " .":
                break
            chars[i] = escape(name[i])
    if chars and name.split(".", maxsplit=1)[0].upper() in _WINDOWS_DEVICES:
        chars[0] = escape(name[0])
    if not chars:
        raise ValueError("a mask name cannot be empty")
    return "".join(chars)


def mask_file_names(names: Iterable[str]) -> dict[str, str]:
    """:func:`mask_file_name` of each name, also apart on file systems that ignore case.

    Windows, macOS and the FAT and exFAT of USB drives take ``Liver.nii.gz`` and
    ``liver.nii.gz`` for one file: the second written would replace the first. Where names
    differ only in case, their capital letters become ``%XX`` too (``Liver`` ->
    ``%4Civer``, beside ``liver``); reading the file back gives the name itself.

    Raises
    ------
    FormatError
        Two names would still be one file there (names that differ only in their Unicode
        composition, ``é`` as one character or as ``e`` and an accent).

    Examples
    --------
    >>> mask_file_names(["Liver", "liver", "spleen"])
    {'Liver': '%4Civer', 'liver': 'liver', 'spleen': 'spleen'}
    """
    files = {name: mask_file_name(name) for name in dict.fromkeys(names)}
    files = {name: _fitting(file, name) for name, file in files.items()}
    groups: dict[str, list[str]] = {}
    for name, file in files.items():
        groups.setdefault(_file_key(file), []).append(name)
    for group in groups.values():
        if len(group) > 1:
            for name in group:
                files[name] = "".join(_escape(ch) if ch != ch.lower() else ch for ch in files[name])
    seen: dict[str, str] = {}
    for name, file in files.items():
        other = seen.setdefault(_file_key(file), name)
        if other != name:
            raise FormatError(
                f"masks {other!r} and {name!r} would be one file where file names ignore "
                "case or Unicode composition; rename one of them"
            )
    return files


# File names are at most 255 bytes on Linux, macOS and Windows' file systems (NAME_MAX):
# a stem longer than this, with ".nii.gz", is cut and tagged with its name's hash.
_STEM_BYTES = 255 - len(".nii.gz")


def _fitting(file: str, name: str) -> str:
    """``file`` (the escaped ``name``), or - when it and ``.nii.gz`` would pass 255 bytes
    (a hundred Chinese letters do) - its start and ``~`` and 8 hex digits of ``name``'s
    SHA-256 (:func:`_name_tag`), which :func:`_mask_name` knows as the name again (the
    file's label table holds it)."""
    if len(file.encode("utf-8")) <= _STEM_BYTES:
        return file
    tag = _name_tag(name)
    cut = file.encode("utf-8")[: _STEM_BYTES - len(tag)].decode("utf-8", "ignore")
    return cut + tag


def _name_tag(name: str) -> str:
    return "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]


def _file_key(file: str) -> str:
    """What a case-insensitive, composition-insensitive file system compares."""
    return unicodedata.normalize("NFC", file).lower()


_FILE_SYSTEM_UTF8: Final = codecs.lookup(sys.getfilesystemencoding()).name == "utf-8"


def _unstorable(ch: str) -> bool:
    """Whether the locale's encoding of file names lacks ``ch``."""
    try:
        os.fsencode(ch)
    except UnicodeEncodeError:
        return True
    return False


def _escape(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


def write_nifti(
    mask: SegmentationMask, path: str | os.PathLike[str] | None = None
) -> nib.Nifti1Image:
    """The mask as a NIfTI-1 image (bool stored as uint8), written to ``path`` if given.

    The qform and sform codes are the ones of the file the mask came from
    (:attr:`SegmentationMask.nifti_codes`), else 1 and 1 ("scanner"). Label names that
    the file would not give back by itself go into a TotalSegmentator-style label-table
    extension, which :func:`read_nifti` (and TotalSegmentator's own reader) read: not
    for a mask named like its file (``liver.nii.gz`` holding ``{"liver": 1}``), nor for
    names that are all ``idx_<label>``.
    """
    data = mask.data
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    affine = nifti_affine(mask.space)
    # int64/uint64 are NIfTI-1 types (codes 1024, 1280) that nibabel writes only when told
    image = nib.Nifti1Image(np.asarray(data), affine, dtype=data.dtype)
    qform_code, sform_code = mask.nifti_codes or (1, 1)
    image.set_qform(affine, code=qform_code)
    image.set_sform(affine, code=sform_code)
    if _names_need_a_table(mask.mapping, path):
        table = encode_label_table({label: name for name, label in mask.mapping.to_dict().items()})
        image.header.extensions.append(nib.nifti1.Nifti1Extension(TOTALSEG_ECODE, table))
    if path is not None:
        name = Path(path).name
        suffix = next((name[-len(s) :] for s in NIFTI_SUFFIXES if name.lower().endswith(s)), "")
        with atomic_path(path, keep_suffix=suffix) as temp:
            nib.save(image, os.fspath(temp))
    return image


def _names_need_a_table(mapping: LabelMapping, path: str | os.PathLike[str] | None) -> bool:
    """Whether reading the file back would lose names without a label table."""
    if not len(mapping):
        return False
    if all(name == f"idx_{label}" for name, label in mapping.items()):
        return False  # what an unnamed label is called anyway
    return not (path is not None and mapping.to_dict() == {nifti_stem(path): 1})


_READ_CHUNK = 16 * 2**20


def read_voxels(image: nib.Nifti1Image) -> NDArray[Any]:
    """The image's voxels as stored on disk (unscaled, in the file's byte order).

    nibabel reads a compressed file's voxels in one call, which holds them twice at its
    peak (benchmarks/large_label_map.py: 2.04x a 200 MB array); read in 16 MB pieces
    into the array itself, the peak is the array. Images nibabel has in memory, scaled
    data and files it cannot name go through nibabel (the reference the tests compare
    against).
    """
    proxy: Any = image.dataobj
    plain = (
        isinstance(proxy, nib.arrayproxy.ArrayProxy)
        and isinstance(proxy.file_like, str | os.PathLike)
        and float(proxy.slope) == 1.0
        and float(proxy.inter) == 0.0
        and proxy.order in ("F", "C")
    )
    if not plain:
        loaded: NDArray[Any] = np.asanyarray(proxy)
        return loaded
    stored = np.dtype(proxy.dtype)
    array = np.empty(proxy.shape, dtype=stored, order=proxy.order)
    target = array.reshape(-1, order="A").view(np.uint8)  # the array's own bytes
    with nib.openers.ImageOpener(proxy.file_like) as stream:
        stream.seek(proxy.offset)
        done = 0
        while done < target.size:
            got = stream.readinto(target[done : done + _READ_CHUNK].data)
            if not got:
                raise EOFError(f"the file ends after {done} of {target.size} voxel bytes")
            done += got
    return array


def _open(
    source: str | os.PathLike[str] | nib.Nifti1Image, fixes: _Fixes | None = None
) -> tuple[nib.Nifti1Image, str]:
    """The image and its name; what nibabel fixes in its header into ``fixes`` when given,
    else warned of (:func:`_nibabel_says`)."""
    if isinstance(source, nib.Nifti1Image | nib.Nifti2Image):
        return source, getattr(source, "get_filename", lambda: None)() or "<NIfTI image>"
    name = os.fspath(source)
    try:
        try:
            with _nibabel_says(name, fixes):
                image = nib.load(name)
        except FileNotFoundError:
            if not Path(name).is_file():
                raise
            image = _from_bytes(Path(name))  # (nibabel looked for "x.nii.Gz" beside "x.Nii.Gz")
    except FileNotFoundError:
        raise
    except Exception as err:  # nibabel raises many kinds for a file that is not NIfTI
        try:  # (compressed or not as its bytes say, not as its name: ITK reads it so)
            image = _from_bytes(Path(name))
        except OSError as denied:  # (no permission, an I/O error: not a format's fault)
            raise OSError(denied.errno, denied.strerror or str(denied), name) from err
        except Exception:
            raise FormatError(f"{name}: not a readable NIfTI file: {err}") from err
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise FormatError(f"{name}: not a NIfTI image ({type(image).__name__})")
    return image, name


_NIBABEL_LOG = threading.Lock()  # (its logger is one for every thread)


# what nibabel fixed in the headers of a folder's files: its message -> the files' paths
_Fixes = dict[str, list[str]]


@contextlib.contextmanager
def _nibabel_says(name: str, fixes: _Fixes | None = None) -> Iterator[None]:
    """What nibabel fixes in a header as it loads it (it logs bare lines to stderr:
    "pixdim[1,2,3] should be non-zero; setting 0 dims to 1", a voxel size changed) as
    warnings naming the file, or into ``fixes`` (:func:`fixes_notes` says them)."""
    logger = logging.getLogger("nibabel.global")
    said: list[str] = []

    class _Heard(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    with _NIBABEL_LOG:
        kept = logger.handlers[:]
        logger.handlers = [_Heard()]
        try:
            yield
        finally:
            logger.handlers = kept
    for message in dict.fromkeys(said):
        if fixes is not None:
            fixes.setdefault(message, []).append(name)
            continue
        warnings.warn(MedmaskWarning(_fix_note([name], message)), stacklevel=4)


def _fix_note(files: list[str], message: str) -> str:
    headers = "its header is" if len(files) == 1 else "their headers are"
    return f"{_files(files)}: {headers} not valid NIfTI: {message} (nibabel's fix)"


def _from_bytes(path: Path) -> Any:
    """A NIfTI file nibabel will not open by its name, read from its bytes: a suffix in
    mixed case, from Windows (nibabel then looks for a file of another name), or a
    ``.nii.gz`` that is not compressed or a ``.nii`` that is (nibabel goes by the name)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip
        data = gzip.decompress(data)
    size = int.from_bytes(data[:4], "little")
    if size not in (348, 540):
        size = int.from_bytes(data[:4], "big")
    kind = nib.Nifti2Image if size == 540 else nib.Nifti1Image
    return kind.from_bytes(data)


def as_label_array(raw: NDArray[Any], name: str) -> NDArray[Any]:
    """The stored voxels as they are (no copy; big-endian ones in native order), refusing
    types that cannot be labels (``name``, the file's, begins the error).

    The values are checked by the mask (whole numbers >= 0, see medmask.model.label_values).
    """
    array = np.asarray(raw)
    if array.dtype.byteorder == ">":  # big-endian files: the same values, native order
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype.kind not in "biuf" or str(array.dtype) not in MASK_DTYPES:
        raise FormatError(f"{name}: voxel type {array.dtype} is not a mask type")
    return array


def _label_names(
    image: nib.Nifti1Image,
    source: str | os.PathLike[str] | nib.Nifti1Image,
    array: NDArray[Any],
    mapping: Mapping[str, int] | LabelMapping | None,
) -> LabelMapping:
    if mapping is not None:
        return mapping if isinstance(mapping, LabelMapping) else LabelMapping(mapping)
    for extension in image.header.extensions:
        if extension.get_code() in (TOTALSEG_ECODE, CARET_ECODE):
            content = extension.get_content()
            if b"LabelTable" in content:
                table = decode_label_table(content)
                return LabelMapping({n: k for k, n in sorted(table.items())})
    if isinstance(source, nib.Nifti1Image):
        return LabelMapping()  # the mask names unnamed labels idx_<label>, with a warning
    path = Path(source)
    return file_label_names(path, nifti_stem(path), array)


def file_label_names(path: Path, stem: str, array: NDArray[Any]) -> LabelMapping:
    """The names of a mask file's labels that its format does not name: its JSON sidecar
    ``<stem>.json``; the ``labels`` of a ``dataset.json`` beside it (nnU-Net writes its
    own into every prediction folder; :func:`dataset_labels`); for a file holding one
    non-zero value (1, or 255 as some editors store a mask), the file's ``stem``; else
    none (the mask names them ``idx_<label>``, with a warning)."""
    sidecar = path.with_name(stem + ".json")
    named = _sidecar_names(sidecar) if sidecar.is_file() else None
    if named is not None:
        return named
    dataset = dataset_labels(path.parent)
    if dataset is not None:
        return dataset
    top = array.max(initial=0)
    if bool(top <= 1):  # (NaN compares False; the mask refuses it)
        return LabelMapping({readable(stem): 1})
    described = label_table_labels(path.parent, stem)
    if described is not None:
        try:
            present = set(labels_present(array))
        except ValueError:  # (not labels: the mask says what is wrong)
            present = set()
        return LabelMapping({n: v for n, v in described.items() if v in present})
    if float(top).is_integer() and np.count_nonzero(array) == np.count_nonzero(array == top):
        return LabelMapping({readable(stem): int(top)})  # one mask stored as 255 (or 2)
    return LabelMapping()


ITKSNAP_HEADER = "ITK-SnAP Label Description File"
# one label of an ITK-SNAP label description file: IDX R G B A VIS MSH "LABEL"
_ITKSNAP_LINE = re.compile(
    r'\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9.eE+-]+)\s+(\d+)\s+(\d+)\s+"(.*)"\s*'
)
# one entry of a 3D Slicer colour table (.ctbl): index name R G B A, spaces in names as _
_CTBL_LINE = re.compile(r"\s*(\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*")


def label_table_labels(folder: Path, stem: str) -> LabelMapping | None:
    """The label names of the label table beside a label map (:func:`label_table_file`),
    or None when there is none. Two kinds are read:

    * an ITK-SNAP label description file (Segmentation > Export Label Descriptions: text
      whose first lines say "ITK-SnAP Label Description File", then ``IDX R G B A VIS MSH
      "LABEL"`` a line);
    * a 3D Slicer colour table (``.ctbl``, what Slicer writes as ``<name>_ColorTable.ctbl``
      beside a label map it exports: ``index name R G B A`` a line, spaces in names
      written as ``_``), or a FreeSurfer colour lookup table in that form
      (``FreeSurferColorLUT.txt``: SynthSeg's and FastSurfer's label maps are numbered by
      it).

    Label 0 (ITK-SNAP's "Clear Label", Slicer's "Background") is no mask; text that is not
    UTF-8 is read as GB18030 (a Chinese Windows), with a warning.

    Raises
    ------
    FormatError
        A line of the file that is not a label entry.
    """
    file = label_table_file(folder, stem)
    if file is None:
        return None
    named, _, utf8 = _read_label_table(file)
    if not utf8:
        warnings.warn(
            MedmaskWarning(f"{file}: not UTF-8: its label names read as GB18030"), stacklevel=5
        )
    try:
        return LabelMapping(named)
    except ValueError as err:  # (two names for one label)
        raise FormatError(f"{file}: its labels are not one name each: {err}") from err


def label_table_colours(folder: Path, stem: str) -> dict[int, tuple[int, int, int]]:
    """The display colour of each label of the label table beside a label map
    (:func:`label_table_labels`): what the annotator saw, kept in the archive (and so
    in a SEG or Slicer file written from it). Empty when there is no table."""
    file = label_table_file(folder, stem)
    return {} if file is None else _read_label_table(file)[1]


def _read_label_table(path: Path) -> tuple[dict[str, int], dict[int, tuple[int, int, int]], bool]:
    """(label of each name, colour of each label, whether the text was UTF-8) of a label
    table (:func:`label_table_labels`); label 0 left out. Parsed once while the file stays
    the same (its names and its colours are asked for apart, for every map beside it)."""
    stat = path.stat()
    return _parsed_label_table(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _parsed_label_table(
    name: str, changed: int, size: int
) -> tuple[dict[str, int], dict[int, tuple[int, int, int]], bool]:
    """:func:`_read_label_table` of the file ``name`` as it is at ``changed`` and ``size``
    (the callers only read what it returns)."""
    path = Path(name)
    raw = path.read_bytes()
    try:
        text, utf8 = raw.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        text, utf8 = raw.decode("gb18030", errors="replace"), False
    pattern, name_group = (
        (_CTBL_LINE, 2) if path.suffix.lower() == ".ctbl" or _is_lut(path) else (_ITKSNAP_LINE, 8)
    )
    named: dict[str, int] = {}
    colours: dict[int, tuple[int, int, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        found = pattern.fullmatch(line)
        if found is None:
            raise FormatError(f"{path}: line {number} is not a label entry: {line!r}")
        value, name = int(found.group(1)), found.group(name_group)
        if value != 0 and name:
            named.setdefault(name, value)
            red = 2 if name_group == 8 else 3  # (ITK-SNAP: IDX R G B; Slicer: index name R G B)
            r, g, b = (min(int(found.group(red + i)), 255) for i in range(3))
            colours.setdefault(value, (r, g, b))
    return named, colours, utf8


def label_table_file(folder: Path, stem: str) -> Path | None:
    """The label table of the label map ``<folder>/<stem>.*``: Slicer's
    ``<stem>_ColorTable.ctbl``, else the one label table in ``folder`` (an ITK-SNAP label
    description ``.txt``/``.label``, a ``.ctbl`` or a FreeSurfer ``*LUT.txt``: one shared by
    the folder's maps); None when there is none, or several. Which file the folder holds
    is remembered while its entries stay the same (its modification time), so that the
    thousands of label maps of one folder do not each list it."""
    own = folder / f"{stem}_ColorTable.ctbl"
    if own.is_file():
        return own
    try:
        changed = folder.stat().st_mtime_ns
    except OSError:
        return None
    key = (str(folder), changed)
    known = _LABEL_TABLES.get(key, folder)  # (one look: another thread may clear it)
    if known is not folder:
        return known
    try:
        found = sorted(p for p in folder.iterdir() if p.is_file() and _is_label_table(p))
    except OSError:
        found = []
    table = found[0] if len(found) == 1 else None
    if len(_LABEL_TABLES) > 256:
        _LABEL_TABLES.clear()
    _LABEL_TABLES[key] = table
    return table


def is_label_table(path: Path) -> bool:
    """Whether ``path`` is a label table :func:`label_table_labels` reads."""
    return path.is_file() and _is_label_table(path)


_LABEL_TABLES: dict[tuple[str, int], Path | None] = {}


def _is_lut(path: Path) -> bool:
    """A FreeSurfer colour lookup table (``FreeSurferColorLUT.txt``, what SynthSeg and
    FastSurfer label maps are numbered by): ``index name R G B A`` a line, as a ``.ctbl``."""
    return path.name.lower().endswith("lut.txt")


def _is_label_table(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".ctbl" or _is_lut(path):
        return True
    if suffix not in (".txt", ".label"):
        return False
    try:
        with path.open("rb") as stream:
            head = stream.read(300)
    except OSError:
        return False
    return ITKSNAP_HEADER.encode() in head


def _sidecar_names(path: Path) -> LabelMapping | None:
    """The label names of a JSON sidecar; None, with a warning, for a JSON object none of
    whose entries is a name and a label (a tool's metadata: a BIDS sidecar's ``Type``,
    ``RawSources`` ...)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # (Notepad's BOM too)
    except UnicodeDecodeError as err:  # (Notepad's "ANSI" on Chinese Windows: GBK)
        raise FormatError(
            f"{path}: label sidecar is not UTF-8 text (byte {err.start}); JSON is UTF-8: "
            "save it as UTF-8"
        ) from err
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        pairs = list(data.items())
        if pairs and not any(_label_like(k, v) for k, v in pairs):
            warnings.warn(
                MedmaskWarning(
                    f"{path}: holds no label names ({', '.join(map(str, data)) or 'nothing'}: "
                    "a tool's metadata?); the mask's labels are named without it"
                ),
                stacklevel=5,
            )
            return None
        if pairs and all(str(k).isdigit() for k, _ in pairs):  # {"1": "liver"}
            return LabelMapping({str(v): int(k) for k, v in pairs})
        return LabelMapping({str(k): int(v) for k, v in pairs})  # {"liver": 1}
    except (ValueError, TypeError) as err:
        raise FormatError(f"{path}: label sidecar is not a name/label JSON object: {err}") from err


def _names_labels(sidecar: Path) -> bool:
    """Whether ``sidecar`` is a JSON object naming labels (a damaged one counts: reading
    it says what is wrong)."""
    if not sidecar.is_file():
        return False
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError):
        return True
    return not isinstance(data, dict) or not data or any(_label_like(*p) for p in data.items())


def _label_like(key: object, value: object) -> bool:
    """Whether a JSON entry names a label: ``"1": "liver"`` or ``"liver": 1``."""
    if isinstance(value, bool):
        return False
    if str(key).isdigit() and isinstance(value, str):
        return True
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit())


DATASET_JSON = "dataset.json"


def dataset_json(folder: Path) -> Path | None:
    """The ``dataset.json`` describing the label files of ``folder``: in it (nnU-Net's
    predictions), or above it for nnU-Net's and the Decathlon's raw data sets
    (``Dataset001_Liver/labelsTr/``, ``labelsTs/``); None when there is none."""
    for place in (folder, folder.parent) if folder.name in _LABEL_FOLDERS else (folder,):
        if (place / DATASET_JSON).is_file():
            return place / DATASET_JSON
    return None


_LABEL_FOLDERS = frozenset({"labelsTr", "labelsTs"})


def dataset_labels(folder: Path) -> LabelMapping | None:
    """The label names of the ``dataset.json`` of ``folder`` (:func:`dataset_json`), or
    None when there is none or it names no labels.

    nnU-Net (v2: ``"labels": {"background": 0, "liver": 1}``) and the Medical
    Segmentation Decathlon and nnU-Net v1 (``"labels": {"0": "background", "1": "liver"}``)
    describe a data set so, and ``nnUNetv2_predict`` copies it into its output folder
    beside the predictions. Label 0 (the background) is no mask. Region-based data sets
    (a name for a list of labels) name regions, not the values of a prediction: None.

    Raises
    ------
    FormatError
        The file is not UTF-8 JSON.
    """
    file = dataset_json(folder)
    if file is None:
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as err:
        raise FormatError(f"{file}: not a readable dataset.json ({err})") from err
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, dict) or not labels:
        return None
    pairs = list(labels.items())
    if all(str(key).isdigit() for key, _ in pairs):  # {"1": "liver"}: MSD, nnU-Net v1
        named = {str(name): int(key) for key, name in pairs}
    elif all(isinstance(value, int) and not isinstance(value, bool) for _, value in pairs):
        named = {str(name): int(value) for name, value in pairs}  # nnU-Net v2
    else:  # (regions: lists of labels)
        return None
    try:
        return LabelMapping({name: value for name, value in named.items() if value != 0})
    except ValueError as err:  # (two names for one label, a negative label ...)
        raise FormatError(f"{file}: its labels are not one name each: {err}") from err


def holds_label_map(path: str | os.PathLike[str]) -> bool:
    """Whether a NIfTI file is a multi-label map rather than one mask: it names its labels
    (a label table in its header, a ``<stem>.json`` sidecar) or holds two or more
    different non-zero values. A file that cannot be read is not one (reading it as a
    mask then says what is wrong)."""
    file = Path(path)
    if _names_labels(file.with_name(nifti_stem(file) + ".json")):
        return True
    try:
        if dataset_labels(file.parent) is not None:  # (nnU-Net's predictions)
            return True
    except FormatError:
        pass
    try:
        image: Any = nib.load(file)
        if any(
            extension.get_code() in (TOTALSEG_ECODE, CARET_ECODE)
            and b"LabelTable" in extension.get_content()
            for extension in image.header.extensions
        ):
            return True
        values = np.asarray(image.dataobj)
        found = values[values != 0]
        return bool(found.size and (found != found.flat[0]).any())
    except Exception:  # any damage, or voxels that are not numbers (RGB): not a label map
        return False  # we can tell (reading it as a mask then says what is wrong)


def is_nifti(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like a NIfTI file (``.nii`` or ``.nii.gz``, in any case:
    ``LIVER.NII.GZ`` from Windows too)."""
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def nifti_stem(path: str | os.PathLike[str]) -> str:
    """The file name without ``.nii.gz``/``.nii`` (in any case): a TotalSegmentator mask's
    organ name."""
    path = Path(path)
    for suffix in NIFTI_SUFFIXES:
        if path.name.lower().endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem
