"""Extra table columns named by the user: keywords, tags, private tags, sequence paths.

A column is a path of steps, each a keyword (``KVP``), a tag (``(0018,0060)``) or a
private tag with its creator (``(0009,10,GEMS_IDEN_01)``: group, element offset in the
creator's block, creator), and an item index for sequences (``[0]``, default 0)::

    SeriesDescription,KVP,(0009,10,GEMS_IDEN_01),(0040,0275)[0].(0032,1060)

Values are written as DICOM writes them: several values joined by ``\\``; binary values
as hex. What a column may not show in de-identified tables is decided by
:func:`identifying` (after DICOM PS3.15 Table E.1-1; docs/dcm-extractor.md).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydicom.datadict import dictionary_VR, keyword_dict, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from ..errors import OptionsError
from .charset import without_escapes

__all__ = [
    "ColumnSpec",
    "ColumnsError",
    "Step",
    "identifying",
    "parse_column",
    "parse_columns",
    "read_columns_file",
    "refused",
    "value_text",
]

MAX_HEX_BYTES: Final = 64  # binary values longer than this are cut (their length is said)

# Attributes of PS3.15 Table E.1-1 (Basic Application Level Confidentiality Profile)
# that a metadata table could name, besides every person name (PN) and date/time
# (DA, DT, TM) and every private attribute, which are caught by their VR or group.
_E1_1: Final = frozenset(
    """
    AccessionNumber AcquisitionComments AdmissionID AdmittingDiagnosesDescription
    AdditionalPatientHistory Allergies BranchOfService ConsultingPhysicianIdentificationSequence
    ContentCreatorIdentificationCodeSequence ContrastBolusAgent CurrentPatientLocation
    DerivationDescription
    DeviceSerialNumber DeviceUID EthnicGroup FrameComments GeneratorID IconImageSequence
    ImageComments ImagingServiceRequestComments InstitutionAddress InstitutionalDepartmentName
    InstitutionName InstitutionCodeSequence IssuerOfAdmissionID IssuerOfPatientID
    MedicalAlerts MedicalRecordLocator MilitaryRank ModifiedAttributesSequence
    OccupationOriginalAttributesSequence Occupation OperatorIdentificationSequence
    OtherPatientIDs OtherPatientIDsSequence OtherPatientNames PatientAddress
    PatientBirthName PatientComments PatientID PatientInsurancePlanCodeSequence
    PatientMotherBirthName PatientPrimaryLanguageCodeSequence PatientReligiousPreference
    PatientSize PatientState PatientTelephoneNumbers PatientTransportArrangements
    PatientWeight PatientAge PatientSexNeutered PerformedLocation
    PerformedProcedureStepDescription PerformedProcedureStepID PerformedStationAETitle
    PerformedStationName PerformingPhysicianIdentificationSequence
    PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence
    PlacerOrderNumberImagingServiceRequest PregnancyStatus ProtocolName
    ReasonForTheRequestedProcedure ReferringPhysicianAddress
    ReferringPhysicianIdentificationSequence ReferringPhysicianTelephoneNumbers
    RegionOfResidence RequestAttributesSequence RequestedProcedureComments
    RequestedProcedureDescription RequestedProcedureID RequestingService
    ResultsComments ScheduledPerformingPhysicianIdentificationSequence
    ScheduledProcedureStepDescription ScheduledProcedureStepID ServiceEpisodeDescription
    ServiceEpisodeID SpecialNeeds StationName StudyComments StudyDescription StudyID
    SeriesDescription SmokingStatus TextComments TextString Trial VisitComments
    FillerOrderNumberImagingServiceRequest IssuerOfServiceEpisodeID
    """.split()  # noqa: SIM905 - a word list reads better than 90 quoted strings
)
_DATE_TIME_VRS: Final = frozenset({"DA", "DT", "TM"})
_STEP: Final = re.compile(
    r"""^(?:
        (?P<keyword>[A-Za-z][A-Za-z0-9]*)
      | \((?P<group>[0-9A-Fa-f]{4}),\s*(?P<element>[0-9A-Fa-f]{4})\)
      | \((?P<pgroup>[0-9A-Fa-f]{4}),\s*(?P<offset>[0-9A-Fa-f]{2}),\s*(?P<creator>[^()]+?)\s*\)
    )(?:\[(?P<index>\d+)\])?$""",
    re.VERBOSE,
)


class ColumnsError(OptionsError):
    """A ``--columns`` entry that names no attribute, or is malformed (a usage error)."""


@dataclass(frozen=True)
class Step:
    """One step of a column's path: a standard tag, or a private one by its creator."""

    tag: int  # standard: the tag; private: group << 16 | element offset (0x00-0xFF)
    creator: str | None = None
    index: int = 0  # the sequence item, when this step is a sequence

    @property
    def keyword(self) -> str:
        """The dictionary keyword ("" for private and unknown tags)."""
        return "" if self.creator is not None else (keyword_for_tag(self.tag) or "")

    @property
    def vr(self) -> str:
        """The dictionary VR ("" when not in the dictionary)."""
        if self.creator is not None:
            return ""
        try:
            return str(dictionary_VR(self.tag))
        except KeyError:
            return ""

    @property
    def private(self) -> bool:
        """Odd groups are private."""
        return bool((self.tag >> 16) & 1)


@dataclass(frozen=True)
class ColumnSpec:
    """One extra column: its header (as the user wrote it) and its path."""

    header: str
    steps: tuple[Step, ...]

    def value(self, dataset: Dataset) -> str:
        """The column's value in ``dataset``; "" when any step is absent."""
        current: Any = dataset
        for position, step in enumerate(self.steps):
            tag = _tag_in(current, step)
            if tag is None:
                return ""
            if position == len(self.steps) - 1:
                return element_text(current, tag)
            try:
                items = current[tag].value
            except Exception:  # a damaged sequence pydicom cannot convert: no items
                return ""
            if not isinstance(items, Sequence) or step.index >= len(items):
                return ""
            current = items[step.index]
        return ""


def element_text(dataset: Dataset, tag: int) -> str:
    """An element's value as :func:`value_text` shows it; a value pydicom cannot convert
    (a damaged VR, say) as its raw bytes (hex unless printable ASCII), as the fast reader
    shows it: a damaged extra value never changes what a file is counted as."""
    try:
        return value_text(dataset[tag].value)
    except Exception:
        raw = getattr(dataset.get_item(tag), "value", b"")
        return value_text(raw if isinstance(raw, bytes) else b"")


def _tag_in(dataset: Dataset, step: Step) -> int | None:
    """The step's tag in ``dataset`` (a private one through its creator), None if absent."""
    tag = step.tag
    if step.creator is not None:
        try:
            tag = int(dataset.private_block(tag >> 16, step.creator).get_tag(tag & 0xFF))
        except (KeyError, ValueError):
            return None
    return tag if tag in dataset else None


def value_text(value: Any) -> str:
    """A value as text: several values joined by ``\\``, binary values as hex."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        shown = value.rstrip(b"\x00 ")
        if shown.isascii() and shown.decode("ascii").isprintable():
            return shown.decode("ascii")
        cut = shown[:MAX_HEX_BYTES].hex()
        return cut if len(shown) <= MAX_HEX_BYTES else f"{cut}... ({len(shown)} bytes)"
    if isinstance(value, Sequence):
        return f"{len(value)} items"
    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(value_text(v) for v in value)
    return without_escapes(str(value)).replace("\x00", "").strip()


def parse_columns(text: str) -> list[ColumnSpec]:
    """The columns of a ``--columns`` value (comma-separated; commas inside ``( )`` belong
    to a tag).

    Raises
    ------
    ColumnsError
        An entry names no attribute (an unknown keyword, a malformed tag), a sequence as
        the last step, or a step inside something that is not a sequence.
    """
    return [parse_column(entry.strip()) for entry in _split(text, ",") if entry.strip()]


def read_columns_file(path: str | Path) -> list[ColumnSpec]:
    """The columns of a ``--columns-file``: one per line, ``#`` starts a comment. UTF-8,
    with or without the byte-order mark Windows Notepad writes, any line ends.

    Raises
    ------
    ColumnsError
        The file cannot be read, or an entry is not a column (see :func:`parse_columns`).
    """
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:  # (Notepad's "ANSI": GBK on a Chinese Windows)
        raise ColumnsError(
            f"--columns-file {path}: not UTF-8 text (byte {err.object[err.start]:#04x} at "
            f"{err.start}): save it as UTF-8 (Notepad: Save As, Encoding UTF-8)"
        ) from err
    except OSError as err:
        raise ColumnsError(f"--columns-file {path}: cannot be read ({err})") from err
    return [
        parse_column(line.split("#", 1)[0].strip())
        for line in lines
        if line.split("#", 1)[0].strip()
    ]


def _hint(keyword: str) -> str:
    """`` (did you mean ...?)`` for a misspelt keyword: the same letters in another case,
    else the closest keywords of the DICOM dictionary; empty when nothing is close."""
    same = [k for k in keyword_dict if k.lower() == keyword.lower()]
    close = same or difflib.get_close_matches(keyword, list(keyword_dict), n=3, cutoff=0.8)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def parse_column(entry: str) -> ColumnSpec:
    """One column from its text (see the module's description)."""
    steps = []
    parts = _split_path(entry)
    for position, part in enumerate(parts):
        match = _STEP.match(part.strip())
        if match is None:
            raise ColumnsError(f"--columns {entry!r}: {part!r} is not a keyword or a tag")
        index = int(match["index"] or 0)
        if match["keyword"]:
            tag = tag_for_keyword(match["keyword"])
            if tag is None:
                keyword = match["keyword"]
                raise ColumnsError(f"--columns: unknown DICOM keyword {keyword!r}{_hint(keyword)}")
            step = Step(int(tag), None, index)
        elif match["group"]:
            step = Step(int(match["group"] + match["element"], 16), None, index)
        else:
            group = int(match["pgroup"], 16)
            if not group & 1:
                raise ColumnsError(f"--columns {entry!r}: group {group:04X} is not private")
            step = Step(group << 16 | int(match["offset"], 16), match["creator"], index)
        last = position == len(parts) - 1
        if step.vr == "SQ" and last:
            raise ColumnsError(
                f"--columns {entry!r}: {part} is a sequence; name an attribute inside it "
                f"({part}[0].Keyword)"
            )
        if not last and step.vr not in ("SQ", ""):
            raise ColumnsError(f"--columns {entry!r}: {part} is not a sequence")
        steps.append(step)
    return ColumnSpec(entry, tuple(steps))


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside parentheses (tags hold commas and creators
    may hold dots)."""
    parts, depth, start = [], 0, 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == separator and depth == 0:
            parts.append(text[start:position])
            start = position + 1
    parts.append(text[start:])
    return parts


def _split_path(entry: str) -> list[str]:
    parts = _split(entry, ".")
    if any(not p.strip() for p in parts):
        raise ColumnsError(f"--columns {entry!r}: an empty step in the path")
    return parts


def identifying(column: ColumnSpec) -> str | None:
    """Why ``column`` can identify a patient (PS3.15 Table E.1-1), or None.

    Any step counts: a value inside a sequence of identifying items is refused too.
    """
    for step in column.steps:
        shown = step.keyword or f"({step.tag >> 16:04X},{step.tag & 0xFFFF:04X})"
        if step.private:
            return f"{shown} is a private attribute (it may hold anything)"
        if step.vr == "PN":
            return f"{shown} is a person's name"
        if step.vr in _DATE_TIME_VRS:
            return f"{shown} is a date or time"
        if step.keyword in _E1_1:
            return f"{shown} is in PS3.15 Table E.1-1 (identifying or free text)"
    return None


def refused(columns: Iterable[ColumnSpec]) -> list[str]:
    """The ``header: reason`` of every identifying column among ``columns``."""
    return [f"{c.header}: {why}" for c in columns if (why := identifying(c)) is not None]
