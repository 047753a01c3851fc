"""Synthetic patients: who the generated DICOM files claim to show.

The showcase patients cover what breaks real extractors: names in three character
sets, PatientIDs with leading zeros, every PatientAge unit and a missing age.
Bulk patients are drawn from a seeded generator for large benchmark data sets.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

__all__ = ["Patient", "age_in_years", "bulk_patient", "showcase_patients"]

# DICOM PS3.3 C.12.1.1.2 defined terms for the character sets we generate.
LATIN1: str = "ISO_IR 100"
UTF8: str = "ISO_IR 192"
GB18030: str = "GB18030"
GBK: str = "GBK"


@dataclass(frozen=True)
class Patient:
    """One synthetic patient and the character set their files are written in.

    Parameters
    ----------
    name : str
        PatientName in DICOM PN form (``Family^Given``), as text.
    patient_id : str
        PatientID; kept as text (leading zeros matter).
    charset : str
        SpecificCharacterSet the patient's files declare.
    sex : str
        PatientSex (``M``, ``F`` or ``O``).
    birth_date : str
        PatientBirthDate as ``YYYYMMDD``, or ``""`` when unknown.
    age : str | None
        PatientAge as written (``045Y``), or None when the element is absent.
    """

    name: str
    patient_id: str
    charset: str
    sex: str
    birth_date: str
    age: str | None

    def __post_init__(self) -> None:
        if self.age is None and not self.birth_date:
            raise ValueError(f"patient {self.patient_id!r} needs an age or a birth date")


def age_in_years(age: str | None, birth_date: str, study_date: str) -> int:
    """Whole years of a PatientAge string, or from birth and study date when absent.

    ``045Y`` -> 45; months, weeks and days below a year -> 0.
    """
    if age is not None:
        number, unit = int(age[:3]), age[3]
        per_year = {"Y": 1, "M": 12, "W": 52, "D": 365}[unit]
        return number // per_year
    born = dt.date.fromisoformat(f"{birth_date[:4]}-{birth_date[4:6]}-{birth_date[6:]}")
    seen = dt.date.fromisoformat(f"{study_date[:4]}-{study_date[4:6]}-{study_date[6:]}")
    return seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))


def showcase_patients() -> dict[str, Patient]:
    """The fixed patients of the showcase cases, keyed by case name."""
    return {
        "Smith_John": Patient("Smith^John", "000123", LATIN1, "M", "", "045Y"),
        "王小明": Patient("王^小明", "0042", GB18030, "M", "20230815", "006M"),
        "LiNa_007": Patient("李^娜", "007", UTF8, "F", "20240301", "010D"),
        "Mueller_Anna": Patient("Müller^Anna", "000999", LATIN1, "F", "20240110", "003W"),
        "ChenJing_CT": Patient("陈^静", "000456", GB18030, "F", "19800315", None),
        "ZhaoLei": Patient("赵^磊", "0000789", GBK, "M", "19711102", "052Y"),
        "SunLi_split": Patient("孙^丽", "0031", GB18030, "F", "19660704", "058Y"),
    }


# (Han, pinyin) pairs of common family and given names.
_SURNAMES = list(
    zip(
        "王李张刘陈杨黄赵吴周",
        ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"],
        strict=True,
    )
)
_GIVEN = list(
    zip(
        "伟芳娜敏静丽强磊军洋",
        ["Wei", "Fang", "Na", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang"],
        strict=True,
    )
)


def bulk_patient(rng: random.Random, index: int) -> tuple[str, Patient]:
    """A seeded random patient for bulk case ``index``; returns (case folder name, patient)."""
    family_han, family_latin = rng.choice(_SURNAMES)
    given_han, given_latin = rng.choice(_GIVEN)
    case_name = f"{family_latin}{given_latin}_{index:05d}"
    # Half write Chinese names in GB18030, half the pinyin in Latin-1: both occur in practice.
    if index % 2:
        name, charset = f"{family_han}^{given_han}", GB18030
    else:
        name, charset = f"{family_latin}^{given_latin}", LATIN1
    years = rng.randint(18, 90)
    patient = Patient(
        name=name,
        patient_id=f"{rng.randint(0, 9_999_999):08d}",
        charset=charset,
        sex=rng.choice("MF"),
        birth_date=f"{2024 - years - 1}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
        age=f"{years:03d}Y",
    )
    return case_name, patient
