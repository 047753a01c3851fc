"""The readers and writers behind the model's file methods, handed in by the package.

:class:`~medmask.model.mask.SegmentationMask` keeps MedMask's file methods (``save``,
``load``, ``from_nifti``, ``from_nifti_folder``, ``from_dicom_seg``, ``to_nifti``), but
the model imports no file or exchange module: those layers sit above it and import it.
``medmask/__init__`` hands their functions in with :func:`wire` once they are imported
(importing any ``medmask.*`` module runs it first), and the methods call them through
:func:`wired`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import MedmaskError

__all__ = ["MaskIO", "wire", "wired"]


@dataclass(frozen=True)
class MaskIO:
    """The functions the model's file methods call (each documented where it lives)."""

    read_nifti: Callable[..., Any]  # medmask.exchange.nifti.read_nifti
    read_nifti_folder: Callable[..., Any]  # medmask.exchange.nifti.read_nifti_folder
    write_nifti: Callable[..., Any]  # medmask.exchange.nifti.write_nifti
    read_dicom_seg: Callable[..., Any]  # medmask.exchange.dicom.exchange.read_dicom_seg
    save_mask: Callable[..., Any]  # medmask.files.maskfile.save_mask
    load_mask: Callable[..., Any]  # medmask.files.maskfile.load_mask


_WIRED: list[MaskIO] = []


def wire(io: MaskIO) -> None:
    """Hand in the readers and writers (``medmask/__init__`` does, once)."""
    _WIRED[:] = [io]


def wired() -> MaskIO:
    """The readers and writers handed in.

    Raises
    ------
    MedmaskError
        None were (only possible while ``medmask/__init__`` itself is still running).
    """
    if not _WIRED:
        raise MedmaskError("medmask's file and exchange layers are not wired in yet")
    return _WIRED[0]
