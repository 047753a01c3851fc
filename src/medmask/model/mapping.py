"""Names <-> label values of a segmentation mask, as MedMask's ``LabelMapping`` offered."""

from __future__ import annotations

import json
from collections.abc import ItemsView, Iterator, Mapping
from typing import Any

import numpy as np

from ..errors import MaskNotFoundError

__all__ = ["LabelMapping", "as_label"]


def as_label(value: Any, what: str) -> int:
    """``value`` as a Python int: ints and numpy integers (``np.unique`` gives those), not bools.

    Raises
    ------
    ValueError
        Anything else, naming ``what``.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return int(value)


class LabelMapping:
    """A one-to-one mapping between semantic names and integer labels.

    Labels of masks are positive. Label 0 may be named too (medmask 0.1.3 and nnU-Net's
    ``dataset.json`` write ``{"background": 0, ...}``): that name is the background, not
    a mask. It answers lookups (``m["background"] == 0``, ``m.inverse(0)``,
    ``"background" in m``) and is kept by :meth:`to_dict`/:meth:`to_json`, but
    iteration, :meth:`items`, :meth:`names`, :meth:`labels` and ``len`` cover the
    masks' labels only, so no code mistakes the background for a mask.

    Parameters
    ----------
    name_to_label : Mapping[str, int], optional
        Initial ``{name: label}`` pairs.

    Raises
    ------
    ValueError
        When a name is empty or not a string, a label is not a non-negative integer, or
        two names share a label.

    Examples
    --------
    >>> m = LabelMapping({"liver": 1, "spleen": 2})
    >>> m["liver"], m.spleen, m.inverse(2), m.has_label(3), len(m)
    (1, 2, 'spleen', False, 2)
    >>> LabelMapping.from_json(m.to_json()) == m
    True
    >>> nnunet = LabelMapping({"background": 0, "liver": 1})
    >>> nnunet.background, nnunet["background"], nnunet.names(), nnunet.to_dict()
    ('background', 0, ['liver'], {'background': 0, 'liver': 1})
    """

    def __init__(self, name_to_label: Mapping[str, int] | None = None) -> None:
        self._name_to_label: dict[str, int] = {}
        self._label_to_name: dict[int, str] = {}
        self._background: str | None = None
        for name, label in (name_to_label or {}).items():
            if name in self._name_to_label:  # pragma: no cover - a Mapping has unique keys
                raise ValueError(f"duplicate name {name!r}")
            self[name] = label

    # -- editing ---------------------------------------------------------------------------
    def __setitem__(self, name: str, label: int) -> None:
        """Map ``name`` to ``label``; re-mapping a name moves it, a taken label is refused."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"label names must be non-empty strings, got {name!r}")
        if isinstance(label, bool | np.bool_) or not isinstance(label, int | np.integer):
            raise ValueError(f"label for {name!r} must be a positive integer, got {label!r}")
        label = int(label)
        if label < 0:
            raise ValueError(f"label for {name!r} must be a positive integer, got {label!r}")
        if label == 0:
            if self._background not in (None, name):
                raise ValueError(
                    f"label 0 is already used by {self._background!r}, cannot give it to {name!r}"
                )
            old = self._name_to_label.pop(name, None)
            if old is not None:
                del self._label_to_name[old]
            self._background = name
            return
        if name == self._background:
            self._background = None
        owner = self._label_to_name.get(label)
        if owner is not None and owner != name:
            raise ValueError(
                f"label {label} is already used by {owner!r}, cannot give it to {name!r}"
            )
        old = self._name_to_label.get(name)
        if old is not None:
            del self._label_to_name[old]
        self._name_to_label[name] = label
        self._label_to_name[label] = name

    # -- lookup ----------------------------------------------------------------------------
    @property
    def background(self) -> str | None:
        """The name of label 0 (the background), if one is given."""
        return self._background

    def __getitem__(self, name: str) -> int:
        try:
            return self._name_to_label[name]
        except KeyError:
            if name == self._background and name is not None:
                return 0
            raise MaskNotFoundError(self._missing(name)) from None

    def __getattr__(self, name: str) -> int:
        # Only called when normal lookup fails; private names never map to labels.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.__dict__["_name_to_label"][name]  # type: ignore[no-any-return]
        except KeyError:
            if name == self.__dict__.get("_background"):
                return 0
            raise AttributeError(self._missing(name)) from None

    def __call__(self, name: str) -> int:
        """Label of ``name`` (MedMask's call form)."""
        return self[name]

    def inverse(self, label: int) -> str:
        """Name of ``label``; :class:`~medmask.errors.MaskNotFoundError` when unknown."""
        try:
            return self._label_to_name[label]
        except KeyError:
            if label == 0 and self._background is not None:
                return self._background
            raise MaskNotFoundError(f"label {label} is not in the mapping") from None

    def get(self, name: str, default: int | None = None) -> int | None:
        """Label of ``name``, or ``default`` when it is not mapped."""
        if name == self._background and name is not None:
            return 0
        return self._name_to_label.get(name, default)

    def has_label(self, label: int) -> bool:
        """Whether ``label`` is mapped to a name (0 when the background is named)."""
        return label in self._label_to_name or (label == 0 and self._background is not None)

    def __contains__(self, name: object) -> bool:
        return name in self._name_to_label or (name == self._background and name is not None)

    def items(self) -> ItemsView[str, int]:
        """``(name, label)`` pairs in insertion order."""
        return self._name_to_label.items()

    def names(self) -> list[str]:
        """Names in insertion order."""
        return list(self._name_to_label)

    def labels(self) -> list[int]:
        """Labels in insertion order."""
        return list(self._name_to_label.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self._name_to_label)

    def __len__(self) -> int:
        return len(self._name_to_label)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LabelMapping):
            return self.to_dict() == other.to_dict()
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    # Hashable by identity, as in medmask 0.1.3; equality compares the pairs.
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"LabelMapping({self.to_dict()!r})"

    __str__ = __repr__

    # -- conversion ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, int]:
        """A plain ``{name: label}`` copy (the background's name first, when named)."""
        head = {} if self._background is None else {self._background: 0}
        return {**head, **self._name_to_label}

    def to_json(self) -> str:
        """JSON object ``{"name": label, ...}`` (non-ASCII names kept readable)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> LabelMapping:
        """Inverse of :meth:`to_json`; a ValueError when the JSON is not such an object."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"label mapping JSON must be an object, got {type(data).__name__}")
        return cls(data)

    def copy(self) -> LabelMapping:
        """An independent copy."""
        return LabelMapping(self.to_dict())

    def _missing(self, name: str) -> str:
        known = ", ".join(list(self._name_to_label)[:8])
        more = "" if len(self) <= 8 else f", ... ({len(self)} in all)"
        return f"{name!r} is not in the mapping (known: {known}{more})"
