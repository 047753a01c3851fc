"""Pseudonyms for the de-identified tables (compatibility mode of the original tool)."""

from __future__ import annotations

import hashlib

__all__ = ["desensitize_name"]


def desensitize_name(name: str) -> str:
    """The original's pseudonym: ``hash:`` + the first 16 hex digits of SHA-256(UTF-8 name).

    Unsalted and therefore reversible with a dictionary of common names; the privacy
    work replaces it with keyed pseudonyms. Empty names stay empty.

    Examples
    --------
    >>> desensitize_name("Smith^John")[:5]
    'hash:'
    """
    if not name:
        return ""
    return "hash:" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
