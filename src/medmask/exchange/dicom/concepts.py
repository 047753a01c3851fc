"""Coded concepts and colours of segments: what a DICOM SEG says each mask is.

Sources of the facts (codes and meanings; the table is our own):

* SNOMED CT codes of the 117 structures of TotalSegmentator's "total" task as
  TotalSegmentator itself maps them for its DICOM SEG output
  (github.com/wasserth/TotalSegmentator, ``resources/totalsegmentator_snomed_mapping.csv``);
  its one misspelt meaning ("Gluteus minius muscle") is written correctly here.
* The categories and their codes from DICOM PS3.16 CID 7150 "Segmentation Property
  Category" (Anatomical Structure is SCT 91723000 there; TotalSegmentator writes the
  older 123037004), laterality modifiers from CID 244 (Left 7771000, Right 24028007).

A name the table does not know is described as "Tissue" (SCT 85756007) in both the
category and the type, so that the SEG stays valid; its label still carries the name.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

from ...model.meaning import Code, SegmentMeaning

__all__ = [
    "Code",
    "SegmentConcept",
    "cielab_of_rgb",
    "concept_for",
    "meaning_of_concept",
    "segment_colour",
]


ANATOMICAL_STRUCTURE = Code("91723000", "SCT", "Anatomical Structure")
ABNORMAL_STRUCTURE = Code("49755003", "SCT", "Morphologically Abnormal Structure")
TISSUE = Code("85756007", "SCT", "Tissue")
LEFT = Code("7771000", "SCT", "Left")
RIGHT = Code("24028007", "SCT", "Right")


@dataclass(frozen=True)
class SegmentConcept:
    """What a segment is: category, type, optional modifier and anatomic region."""

    category: Code
    type: Code
    modifier: Code | None = None
    region: Code | None = None
    region_modifier: Code | None = None
    known: bool = True


# name (without _left/_right) -> (SNOMED CT code, meaning) of the structure type
_TYPES: dict[str, tuple[str, str]] = {
    "adrenal_gland": ("23451007", "Adrenal gland"),
    "aorta": ("15825003", "Aorta"),
    "atrial_appendage": ("68786006", "Auricular appendage"),
    "autochthon": ("244849004", "Deep muscle of back"),
    "brachiocephalic_trunk": ("12691009", "Brachiocephalic artery"),
    "brachiocephalic_vein": ("8887007", "Brachiocephalic vein"),
    "brain": ("12738006", "Brain"),
    "clavicula": ("51299004", "Clavicle"),
    "colon": ("71854001", "Colon"),
    "common_carotid_artery": ("32062004", "Common carotid artery"),
    "costal_cartilages": ("50016007", "Costal cartilage"),
    "duodenum": ("38848004", "Duodenum"),
    "esophagus": ("32849002", "Esophagus"),
    "femur": ("71341001", "Femur"),
    "gallbladder": ("28231008", "Gallbladder"),
    "gluteus_maximus": ("181674001", "Gluteus maximus muscle"),
    "gluteus_medius": ("78333006", "Gluteus medius muscle"),
    "gluteus_minimus": ("75297007", "Gluteus minimus muscle"),
    "heart": ("80891009", "Heart"),
    "hip": ("29836001", "Hip"),
    "humerus": ("85050009", "Humerus"),
    "iliac_artery": ("73634005", "Common iliac artery"),
    "iliac_vena": ("46027005", "Common iliac vein"),
    "iliopsoas": ("68455001", "Iliopsoas muscle"),
    "inferior_vena_cava": ("64131007", "Inferior vena cava"),
    "kidney": ("64033007", "Kidney"),
    "liver": ("10200004", "Liver"),
    "lung_lower_lobe": ("90572001", "Lower lobe of lung"),
    "lung_middle_lobe": ("72481006", "Middle lobe of right lung"),
    "lung_upper_lobe": ("45653009", "Upper lobe of lung"),
    "pancreas": ("15776009", "Pancreas"),
    "portal_vein_and_splenic_vein": ("110765007", "Portal vein and splenic vein"),
    "prostate": ("41216001", "Prostate"),
    "pulmonary_vein": ("122972007", "Pulmonary vein"),
    "sacrum": ("54735007", "Sacrum"),
    "scapula": ("79601000", "Scapula"),
    "skull": ("89546000", "Skull"),
    "small_bowel": ("30315005", "Small Intestine"),
    "spinal_cord": ("2748008", "Spinal cord"),
    "spleen": ("78961009", "Spleen"),
    "sternum": ("56873002", "Sternum"),
    "stomach": ("69695003", "Stomach"),
    "subclavian_artery": ("29700009", "Subclavian artery"),
    "superior_vena_cava": ("48345005", "Superior vena cava"),
    "thyroid_gland": ("69748006", "Thyroid gland"),
    "trachea": ("44567001", "Trachea"),
    "urinary_bladder": ("89837001", "Urinary bladder"),
}
_RIBS = ("48535007", "78247007", "25888004", "25523003", "15339008", "59558009",
         "24915002", "5953002", "22565002", "77644006", "58830002", "43993008")  # fmt: skip
_ORDINALS = ("First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth",
             "Ninth", "Tenth", "Eleventh", "Twelfth")  # fmt: skip
_VERTEBRAE = {
    "C1": "14806007", "C2": "39976000", "C3": "113205007", "C4": "5329002", "C5": "36978003",
    "C6": "36054005", "C7": "87391001", "T1": "64864005", "T2": "53733008", "T3": "1626008",
    "T4": "73071006", "T5": "56401006", "T6": "45296009", "T7": "62487009", "T8": "11068009",
    "T9": "82687006", "T10": "7610001", "T11": "12989004", "T12": "23215003",
    "L1": "66794005", "L2": "14293000", "L3": "36470004", "L4": "11994002", "L5": "49668003",
    "S1": "65985001",
}  # fmt: skip
_CYST = Code("367643001", "SCT", "Cyst")


def concept_for(name: str) -> SegmentConcept:
    """The coded concept of a mask name (TotalSegmentator's names; others as Tissue).

    Names are looked up without regard to case, spaces or hyphens: ``Liver``,
    ``kidney left`` and ``Kidney-Left`` are ``liver`` and ``kidney_left``.
    """
    name = "_".join(name.strip().lower().replace("-", " ").split())
    if name.startswith("vertebrae_"):
        name = "vertebrae_" + name[10:].upper()  # vertebrae_C1 ...
    side = LEFT if name.endswith("_left") else RIGHT if name.endswith("_right") else None
    base = name.rsplit("_", 1)[0] if side else name
    if base == "kidney_cyst":
        kidney = Code("64033007", "SCT", "Kidney")
        return SegmentConcept(ABNORMAL_STRUCTURE, _CYST, region=kidney, region_modifier=side)
    if base in _TYPES:
        value, meaning = _TYPES[base]
        return SegmentConcept(ANATOMICAL_STRUCTURE, Code(value, "SCT", meaning), side)
    if name.startswith("vertebrae_") and name[10:] in _VERTEBRAE:
        level = name[10:]
        return SegmentConcept(
            ANATOMICAL_STRUCTURE, Code(_VERTEBRAE[level], "SCT", f"{level} vertebra")
        )
    for prefix, rib_side in (("rib_left_", LEFT), ("rib_right_", RIGHT)):
        number = name[len(prefix) :]
        if name.startswith(prefix) and number.isdigit() and 1 <= int(number) <= 12:
            i = int(number) - 1
            return SegmentConcept(
                ANATOMICAL_STRUCTURE, Code(_RIBS[i], "SCT", f"{_ORDINALS[i]} rib"), rib_side
            )
    return SegmentConcept(TISSUE, TISSUE, known=False)


def meaning_of_concept(concept: SegmentConcept) -> SegmentMeaning:
    """A :class:`SegmentConcept` of the name table as a :class:`SegmentMeaning`."""
    return SegmentMeaning(
        category=concept.category,
        type=concept.type,
        type_modifier=concept.modifier,
        region=concept.region,
        region_modifier=concept.region_modifier,
    )


def segment_colour(index: int, count: int) -> tuple[int, int, int]:
    """A distinct sRGB colour (0-255) for segment ``index`` of ``count``."""
    hue = (index * 0.618033988749895) % 1.0  # golden-ratio steps: neighbours differ most
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.7, 0.95 if index % 2 else 0.8)
    return round(255 * red), round(255 * green), round(255 * blue)


def cielab_of_rgb(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """DICOM's Recommended Display CIELab Value of an sRGB colour (PS3.3 C.10.7.1.1).

    sRGB -> CIE XYZ (D65) -> CIELab, then L* scaled from 0..100 and a*, b* from
    -128..127 onto 0..65535.
    """
    linear = [c / 255 for c in rgb]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in linear]
    r, g, b = linear
    xyz = (
        (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
        (0.2126 * r + 0.7152 * g + 0.0722 * b) / 1.0,
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
    )
    f = [t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29 for t in xyz]
    lightness = 116 * f[1] - 16
    a = 500 * (f[0] - f[1])
    bb = 200 * (f[1] - f[2])
    return (
        round(max(0.0, min(100.0, lightness)) * 65535 / 100),
        round((max(-128.0, min(127.0, a)) + 128) * 65535 / 255),
        round((max(-128.0, min(127.0, bb)) + 128) * 65535 / 255),
    )


def rgb_of_cielab(lab: tuple[int, int, int]) -> tuple[int, int, int]:
    """Inverse of :func:`cielab_of_rgb` (rounded to 0-255)."""
    lightness = lab[0] * 100 / 65535
    a = lab[1] * 255 / 65535 - 128
    bb = lab[2] * 255 / 65535 - 128
    fy = (lightness + 16) / 116
    fx, fz = fy + a / 500, fy - bb / 200
    xyz = [t**3 if t > 6 / 29 else 3 * (6 / 29) ** 2 * (t - 4 / 29) for t in (fx, fy, fz)]
    x, y, z = xyz[0] * 0.95047, xyz[1], xyz[2] * 1.08883
    linear = (
        3.2406 * x - 1.5372 * y - 0.4986 * z,
        -0.9689 * x + 1.8758 * y + 0.0415 * z,
        0.0557 * x - 0.2040 * y + 1.0570 * z,
    )
    out = []
    for value in linear:
        c = max(0.0, min(1.0, value))
        c = 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055
        out.append(round(255 * c))
    return out[0], out[1], out[2]
