"""Pseudonyms and de-identified tables (docs/privacy.md).

Keyed mode: HMAC-SHA-256 with a secret key kept outside the outputs. The same key gives
the same pseudonym on every run and machine, and without the key a pseudonym cannot be
reversed by hashing a dictionary of names. Compatibility mode (no key): the original
tool's unsalted SHA-256, which a dictionary does reverse; a warning says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from ..errors import PseudonymKeyError

__all__ = [
    "KEY_ENV",
    "DateMode",
    "Pseudonymizer",
    "deidentify_rows",
    "desensitize_name",
    "generate_key",
    "load_key",
    "shift_date",
]

KEY_ENV: Final = "DCM_EXTRACT_KEY"
MIN_KEY_CHARS: Final = 32
DateMode = Literal["remove", "keep", "shift"]
MAX_SHIFT_DAYS: Final = 365
COMPAT_WARNING: Final = (
    "warning: no pseudonym key: --desensitize writes the original tool's unkeyed hashes, "
    "which hashing a list of common names reverses in seconds. Create a key with "
    "`dcm-extract keygen KEYFILE`, keep it outside the outputs, and pass "
    f"--pseudonym-key-file KEYFILE (or set {KEY_ENV})."
)


def desensitize_name(name: str) -> str:
    """The original's pseudonym: ``hash:`` + the first 16 hex digits of SHA-256(UTF-8 name).

    Unsalted and therefore reversible with a dictionary of names; kept for
    compatibility. Empty names stay empty.

    Examples
    --------
    >>> desensitize_name("Smith^John")[:5]
    'hash:'
    """
    if not name:
        return ""
    return "hash:" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def load_key(path: str | os.PathLike[str] | None = None) -> bytes | None:
    """The secret key from ``path``, else from ``$DCM_EXTRACT_KEY``, else None.

    Raises
    ------
    DcmExtractorError
        The file cannot be read, or the key is shorter than 32 characters.
    """
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8-sig").strip()  # (Notepad's BOM)
        except OSError as err:
            raise PseudonymKeyError(
                f"cannot read the pseudonym key file {path}: {err.strerror}"
            ) from err
        source = f"key file {path}"
    elif os.environ.get(KEY_ENV):
        text, source = os.environ[KEY_ENV].strip(), f"${KEY_ENV}"
    else:
        return None
    if len(text) < MIN_KEY_CHARS:
        raise PseudonymKeyError(
            f"the pseudonym key in {source} has {len(text)} characters, needs >= {MIN_KEY_CHARS}"
        )
    return text.encode("utf-8")


def generate_key(path: str | os.PathLike[str]) -> str:
    """Write a new random key (256 bits, hex) to ``path`` with mode 0600; return its fingerprint.

    Refuses to overwrite an existing file: replacing a key breaks linkage with every
    earlier output.
    """
    key = secrets.token_hex(32)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise PseudonymKeyError(
            f"{target} exists; a new key would break linkage with earlier outputs"
        ) from None
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(key + "\n")
    return Pseudonymizer(key.encode("utf-8")).fingerprint or ""


@dataclass(frozen=True)
class Pseudonymizer:
    """Turns identifiers into pseudonyms: keyed (HMAC-SHA-256) or compatibility mode."""

    key: bytes | None = None

    @property
    def keyed(self) -> bool:
        """Whether a secret key is used."""
        return self.key is not None

    @property
    def method(self) -> str:
        """What the pseudonyms are, for provenance records."""
        if self.keyed:
            return "HMAC-SHA-256 with a secret key, first 64 bits, 'hash:' + 16 hex"
        return "unkeyed SHA-256 (the original tool's; reversible by dictionary), 'hash:' + 16 hex"

    @property
    def fingerprint(self) -> str | None:
        """A public fingerprint of the key (never the key): which key made an output."""
        if self.key is None:
            return None
        return "sha256:" + hashlib.sha256(b"medkit key fingerprint\x00" + self.key).hexdigest()[:16]

    def pseudonym(self, field: str, value: str) -> str:
        """``hash:<16 hex>`` for ``value`` of ``field`` (PatientName, PatientID); "" stays ""."""
        if not value:
            return ""
        if self.key is None:
            return desensitize_name(value)
        message = f"{field}\x1f{value}".encode()
        return "hash:" + hmac.new(self.key, message, hashlib.sha256).hexdigest()[:16]

    def date_shift_days(self, patient: str) -> int:
        """A per-patient offset in days, in [-365, 365] and never 0, derived from the key."""
        if self.key is None:
            raise PseudonymKeyError(
                "--shift-dates needs a pseudonym key (--pseudonym-key-file or $DCM_EXTRACT_KEY)"
            )
        digest = hmac.new(self.key, f"date-shift\x1f{patient}".encode(), hashlib.sha256).digest()
        days = int.from_bytes(digest[:4], "big") % MAX_SHIFT_DAYS + 1
        return days if digest[4] & 1 else -days


def shift_date(date: str, days: int) -> str:
    """A ``YYYYMMDD`` date moved by ``days``; "" when it is not a date."""
    try:
        day = dt.datetime.strptime(date.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return ""  # an unparseable date cannot be shifted: dropped rather than kept
    return (day + dt.timedelta(days=days)).strftime("%Y%m%d")


def deidentify_rows(
    rows: Iterable[dict[str, Any]], pseudonymizer: Pseudonymizer, dates: DateMode = "remove"
) -> list[dict[str, Any]]:
    """Copies of ``rows`` fit to share (docs/privacy.md).

    PatientName and PatientID become pseudonyms; PatientBirthDate is dropped (the age
    stays); StudyDate is removed, kept, or shifted by a per-patient offset; FileName
    values, which come from zip and case names that often carry a patient's name,
    become ``P<ProjectID>_<n>.zip`` / ``P<ProjectID>.dir``.
    """
    out = []
    zips_seen: dict[Any, int] = {}
    for row in rows:
        new = dict(row)
        patient = str(row.get("PatientID") or row.get("PatientName") or "")
        new["PatientName"] = pseudonymizer.pseudonym(
            "PatientName", str(row.get("PatientName") or "")
        )
        new["PatientID"] = pseudonymizer.pseudonym("PatientID", str(row.get("PatientID") or ""))
        new["PatientBirthDate"] = ""
        study_date = str(row.get("StudyDate") or "")
        if dates == "remove":
            new["StudyDate"] = ""
        elif dates == "shift" and study_date:
            new["StudyDate"] = shift_date(study_date, pseudonymizer.date_shift_days(patient))
        project = row.get("ProjectID")
        prefix = f"P{project:06d}" if isinstance(project, int) else "P"
        if str(row.get("FileName", "")).lower().endswith(".zip"):
            zips_seen[project] = zips_seen.get(project, 0) + 1
            new["FileName"] = f"{prefix}_{zips_seen[project]}.zip"
        else:
            new["FileName"] = f"{prefix}.dir"
        out.append(new)
    return out
