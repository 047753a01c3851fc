"""Preview pictures: three orthogonal slices through the masks, one colour per label.

Slices are shown the way radiologists read them, whatever the archive's axis order:
axial, coronal and sagittal, patient right on the viewer's left, anterior and superior
up, pixels scaled to millimetres. Each view cuts where it shows the most masks.
Over a CT (``image=``), masks are blended at ``alpha``; alone, on black.
"""

from __future__ import annotations

import colorsys
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import FormatError, MedmaskError, MedmaskWarning
from ..files.archive import MaskArchive, select_masks
from ..files.atomic import atomic_path
from ..lazy import lazy_module
from ..model.geometry import nifti_affine
from ..model.space import space_from_affine, spaces_close
from . import fonts

if TYPE_CHECKING:
    import nibabel as nib
    from PIL import Image, ImageDraw
else:  # on first use: most commands never draw or read NIfTI
    nib = lazy_module("nibabel")
    Image = lazy_module("PIL.Image")
    ImageDraw = lazy_module("PIL.ImageDraw")

__all__ = ["PreviewResult", "display_slice", "label_colours", "render_preview"]

VIEWS = (("sagittal", 0), ("coronal", 1), ("axial", 2))  # (name, RAS axis cut)
LEGEND_FONT_SIZE = 14
PANEL_PIXELS = 360  # the longest physical side of the body is drawn this long
SOFT_TISSUE_WINDOW = (-160.0, 240.0)  # HU: level 40, width 400


@dataclass(frozen=True)
class PreviewResult:
    """The picture written and what it shows.

    ``cuts`` gives each view's RAS slice index (see :func:`display_slice`); ``shown``
    the chosen masks visible in the three slices, ``hidden`` those with voxels elsewhere,
    ``empty`` those without a voxel. ``font`` is the legend's font file (None: Pillow's
    own; :func:`~medmask.ops.fonts.legend_font`); ``numbered`` maps ``"[n]"`` to each name
    the legend shows so because no font here has its letters (a warning says so).
    """

    path: Path
    cuts: dict[str, int]
    shown: list[str]
    hidden: list[str]  # chosen, not empty, but in none of the three slices
    empty: list[str]  # chosen but without a voxel: nothing to draw
    font: str | None = None  # the legend's font file (None: Pillow's own)
    numbered: dict[str, str] = field(default_factory=dict)  # legend text -> name, for names
    # no font here can draw (drawn as "[n]", never as empty boxes)


def label_colours(count: int) -> NDArray[np.uint8]:
    """``count`` distinct RGB colours; neighbours in the list differ most in hue."""
    golden = 0.618033988749895
    rows = []
    for i in range(count):
        hue = (0.05 + i * golden) % 1.0
        value = 0.95 if i % 3 else 0.8
        rows.append([round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.75, value)])
    return np.array(rows, dtype=np.uint8).reshape(count, 3)


def render_preview(
    archive_path: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    image: str | os.PathLike[str] | None = None,
    window: tuple[float, float] = SOFT_TISSUE_WINDOW,
    alpha: float = 0.55,
    font: str | os.PathLike[str] | None = None,
) -> PreviewResult:
    """Draw three orthogonal slices through an archive's masks into a PNG with a legend.

    Parameters
    ----------
    names : Sequence[str], optional
        Masks to draw, later ones over earlier ones; default every mask that is not a
        group (groups cover their members).
    image : str or os.PathLike, optional
        The scan (e.g. the CT) drawn underneath in ``window``: a NIfTI file, or a folder
        of its DICOM series (the series the archive records when it holds several).
    font : str or os.PathLike, optional
        A TrueType/OpenType font file for the legend, tried first; else Pillow's own or a
        system font that has the names' letters (:func:`~medmask.ops.fonts.legend_font`).

    Warns
    -----
    MedmaskWarning
        No font here has the letters of some names: the legend numbers them
        (:attr:`PreviewResult.numbered`).

    Raises
    ------
    ValueError
        ``target`` is not named ``.png`` (the picture is a PNG).
    MaskNotFoundError
        A name is not in the archive.
    FormatError
        ``image`` is not a readable 3-D NIfTI or DICOM series, or its geometry differs
        from the archive's.
    """
    if Path(target).suffix.lower() != ".png":
        raise ValueError(f"{target}: a preview is a PNG picture; name it .png")
    with MaskArchive(archive_path) as archive:
        space = archive.space
        if space is None or not len(archive):
            raise MedmaskError(f"{archive_path}: the archive holds no masks to draw")
        series = (archive.image_series or {}).get("SeriesInstanceUID", "")
        chosen = select_masks(archive, names, groups=False)
        counts = {name: stat.voxel_count for name, stat in archive.statistics().items()}
        labels = np.zeros(tuple(int(n) for n in space.shape), dtype=np.uint16)
        for index, name in enumerate(chosen, start=1):
            crop, offset = archive.load_crop(name)
            if crop.size:
                region = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))
                labels[region][crop != 0] = index
    affine = nifti_affine(space)
    ornt = nib.orientations.io_orientation(affine)
    spacing = [float(s) for s in space.spacing]
    ras_spacing = [spacing[int(np.flatnonzero(ornt[:, 0] == r)[0])] for r in range(3)]
    ct = _open_image(image, space, series) if image is not None else None
    colours = label_colours(len(chosen))
    panels, cuts = [], {}
    visible: set[int] = set()
    for view, axis in VIEWS:
        cut = _busiest_cut(labels, ornt, axis)
        cuts[view] = cut
        plane = _display(_ras_plane(labels, ornt, axis, cut))
        visible.update(int(v) for v in np.unique(plane) if v)
        under = None
        if ct is not None:
            under = _window(_display(_ras_plane(ct, ornt, axis, cut)), window)
        rgb = _colour(plane, colours, under, alpha)
        shown_axes = [a for a in range(3) if a != axis]  # display columns, rows
        panels.append((view, cut, rgb, ras_spacing[shown_axes[0]], ras_spacing[shown_axes[1]]))
    shown = [name for i, name in enumerate(chosen, start=1) if i in visible]
    empty = [name for name in chosen if counts[name] == 0]
    hidden = [name for i, name in enumerate(chosen, start=1) if i not in visible and counts[name]]
    titles = [f"{view} {cut}" for view, cut in cuts.items()]
    legend_font = fonts.legend_font([*titles, *shown], LEGEND_FONT_SIZE, font)
    unknown = set(legend_font.missing)
    numbered = {f"[{i}]": name for i, name in enumerate(shown, start=1) if name in unknown}
    if numbered:
        more = ", ..." if len(numbered) > 3 else ""
        warnings.warn(
            MedmaskWarning(
                f"no font here has the letters of {len(numbered)} mask name(s) "
                f"({', '.join(list(numbered.values())[:3])}{more}): the legend numbers them; "
                "install a font with them (Debian/Ubuntu: fonts-noto-cjk) or pass a font file"
            ),
            stacklevel=2,
        )
    texts = {name: text for text, name in numbered.items()}
    legend = [(texts.get(n, n), colours[chosen.index(n)]) for n in shown]
    picture = _compose(panels, legend, hidden, legend_font.font)
    out = Path(target)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as temp:
        picture.save(temp, format="PNG", optimize=True)
    return PreviewResult(out, cuts, shown, hidden, empty, legend_font.path, numbered)


def display_slice(volume: Any, affine: NDArray[Any], view: str, cut: int) -> NDArray[Any]:
    """One view of ``volume`` as drawn: rows top to bottom, columns left to right.

    Parameters
    ----------
    volume : array-like
        A 3-D array, or nibabel's lazy ``dataobj`` (only the slice is read).
    affine : ndarray
        The voxel-to-world (RAS) affine of ``volume``.
    view : {"sagittal", "coronal", "axial"}
    cut : int
        Slice index along the view's RAS axis: 0 is the patient's far left (sagittal),
        posterior (coronal) or inferior (axial) end.
    """
    axes = dict(VIEWS)
    if view not in axes:
        raise ValueError(f"view must be one of {sorted(axes)}, got {view!r}")
    ornt = nib.orientations.io_orientation(affine)
    return _display(_ras_plane(volume, ornt, axes[view], cut))


def _open_image(path: str | os.PathLike[str], space: Any, series: str) -> Any:
    """The image to draw under the masks: a NIfTI file's voxels (read lazily: only the
    slices drawn), or a DICOM series folder's (the series the archive records, or its
    only one), on the archive's grid."""
    if Path(path).is_dir():
        from ..exchange.dicom.source import (  # noqa: PLC0415 - pydicom for DICOM only
            read_series_voxels,
            read_source_series,
        )

        source = read_source_series(path, named=(series,) if series else (), namer="the archive")
        if not spaces_close(source.grid.space(), space):
            raise FormatError(
                f"{path}: the series' grid ({source.grid.describe()}) differs from the "
                f"archive's (shape {tuple(space.shape)}); is it the same scan?"
            )
        return read_series_voxels(source)
    try:
        img = nib.load(os.fspath(path))
    except FileNotFoundError:
        raise
    except Exception as err:  # nibabel raises many kinds for a file that is not NIfTI
        raise FormatError(f"{path}: not a readable NIfTI image: {err}") from err
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise FormatError(f"{path}: not a NIfTI image ({type(img).__name__})")
    if len(img.shape) != 3:
        raise FormatError(f"{path}: the image must be 3-D, got shape {img.shape}")
    if not spaces_close(space_from_affine(img.affine, img.shape), space):
        raise FormatError(
            f"{path}: image geometry (shape {img.shape}) differs from the archive's "
            f"(shape {tuple(space.shape)}); is it the same scan?"
        )
    return img.dataobj


def _ras_plane(volume: Any, ornt: NDArray[Any], ras_axis: int, ras_index: int) -> NDArray[Any]:
    """The 2-D slice at ``ras_index`` across RAS axis ``ras_axis``, axes in RAS order.

    Works on arrays and on nibabel's lazy ``dataobj`` (only the slice is read).
    """
    array_axis = int(np.flatnonzero(ornt[:, 0] == ras_axis)[0])
    size = volume.shape[array_axis]
    index = ras_index if ornt[array_axis, 1] > 0 else size - 1 - ras_index
    key: list[Any] = [slice(None)] * 3
    key[array_axis] = index
    plane = np.asarray(volume[tuple(key)])
    rest = [a for a in range(3) if a != array_axis]  # array axes left, in array order
    order = np.argsort([ornt[a, 0] for a in rest])  # -> RAS order
    plane = plane.transpose(order)
    for position, a in enumerate(np.array(rest)[order]):
        if ornt[a, 1] < 0:
            plane = np.flip(plane, axis=position)
    return plane


def _display(plane: NDArray[Any]) -> NDArray[Any]:
    """RAS-ordered plane -> picture rows/columns: right and anterior left, superior up."""
    return np.ascontiguousarray(plane[::-1, ::-1].T)


def _busiest_cut(labels: NDArray[Any], ornt: NDArray[Any], ras_axis: int) -> int:
    """The RAS index of the slice showing the most different masks (then most voxels)."""
    array_axis = int(np.flatnonzero(ornt[:, 0] == ras_axis)[0])
    size, top = labels.shape[array_axis], int(labels.max(initial=0))
    best, best_score = size // 2, (0, 0)
    for index in range(size):
        plane = np.take(labels, index, axis=array_axis)
        counts = np.bincount(plane.ravel(), minlength=top + 1)[1:]
        score = (int(np.count_nonzero(counts)), int(counts.sum()))
        if score > best_score:
            best, best_score = index, score
    return int(best if ornt[array_axis, 1] > 0 else size - 1 - best)


def _window(plane: NDArray[Any], window: tuple[float, float]) -> NDArray[np.uint8]:
    low, high = window
    scaled = (plane.astype(np.float32) - low) / max(high - low, 1e-6)
    return np.asarray(np.clip(scaled, 0.0, 1.0) * 255, dtype=np.uint8)


def _colour(
    plane: NDArray[Any],
    colours: NDArray[np.uint8],
    under: NDArray[np.uint8] | None,
    alpha: float,
) -> NDArray[np.uint8]:
    table = np.vstack([np.zeros((1, 3), np.uint8), colours])
    painted = table[plane].astype(np.float32)
    if under is None:
        return np.asarray(painted, dtype=np.uint8)
    grey = np.repeat(under[..., None], 3, axis=2).astype(np.float32)
    inside = (plane != 0)[..., None]
    mixed = np.where(inside, (1 - alpha) * grey + alpha * painted, grey)
    return np.asarray(mixed.round(), dtype=np.uint8)


def _compose(
    panels: list[tuple[str, int, NDArray[np.uint8], float, float]],
    legend: list[tuple[str, NDArray[np.uint8]]],
    hidden: list[str],
    font: fonts.Font,
) -> Image.Image:
    longest = max(max(p.shape[1] * sx, p.shape[0] * sy) for _, _, p, sx, sy in panels)
    per_mm = PANEL_PIXELS / max(longest, 1e-6)
    tiles = []
    for view, cut, rgb, sx, sy in panels:
        size = (
            max(1, round(rgb.shape[1] * sx * per_mm)),
            max(1, round(rgb.shape[0] * sy * per_mm)),
        )
        tiles.append(
            (f"{view} {cut}", Image.fromarray(rgb, "RGB").resize(size, Image.Resampling.NEAREST))
        )
    pad, title_h = 10, 22
    width = sum(t.width for _, t in tiles) + pad * (len(tiles) + 1)
    widest = max((font.getlength(name) for name, _ in legend), default=0.0)
    columns = max(1, int((width - pad) // (widest + 34)))
    rows = -(-len(legend) // columns) if legend else 0
    legend_h = rows * 20 + (24 if hidden else 0) + (pad if legend or hidden else 0)
    height = pad + title_h + max(t.height for _, t in tiles) + pad + legend_h
    picture = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(picture)
    x = pad
    for title, tile in tiles:
        draw.text((x, pad), title, fill=(230, 230, 230), font=font)
        picture.paste(tile, (x, pad + title_h))
        x += tile.width + pad
    top = pad + title_h + max(t.height for _, t in tiles) + pad
    column_w = (width - pad) // columns
    for i, (name, colour) in enumerate(legend):
        cx, cy = pad + (i // rows) * column_w, top + (i % rows) * 20
        draw.rectangle((cx, cy + 2, cx + 14, cy + 16), fill=tuple(int(c) for c in colour))
        draw.text((cx + 20, cy), name, fill=(230, 230, 230), font=font)
    if hidden:
        note = f"{len(hidden)} more not in these slices"
        draw.text((pad, top + rows * 20 + 4), note, fill=(170, 170, 170), font=font)
    return picture
