"""Label names inside a NIfTI file: the label-table header extension TotalSegmentator writes.

TotalSegmentator stores ``{label: name}`` of a multi-label file as an XML document in
the Caret ``LabelTable`` schema (``CaretExtension/VolumeInformation/LabelTable/Label``
elements with a ``Key`` attribute and the name as text), in a NIfTI-1 header
extension (code 0 in its files; NIfTI reserves code 30 for Caret). Readers that know
the schema (TotalSegmentator's ``load_multilabel_nifti``, Connectome Workbench) get
the names back; we read and write the same layout.
"""

from __future__ import annotations

import colorsys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Final

from ..errors import FormatError

__all__ = ["CARET_ECODE", "TOTALSEG_ECODE", "decode_label_table", "encode_label_table"]

TOTALSEG_ECODE: Final = 0  # the extension code TotalSegmentator writes
CARET_ECODE: Final = 30  # NIFTI_ECODE_CARET in nifti1.h


def encode_label_table(labels: Mapping[int, str]) -> bytes:
    """XML bytes of a Caret label table for ``{label: name}``, labels in ascending order.

    Each label gets a distinct colour (evenly spaced hues) so viewers show them apart.
    """
    root = ET.Element("CaretExtension")
    volume = ET.SubElement(root, "VolumeInformation", Index="0")
    table = ET.SubElement(volume, "LabelTable")
    ordered = sorted(labels.items())
    for position, (label, name) in enumerate(ordered):
        if label < 0:  # 0 may be named: the background (medmask.model.mapping.LabelMapping)
            raise ValueError(f"label values must not be negative, got {label} for {name!r}")
        red, green, blue = colorsys.hsv_to_rgb((position * 0.618034) % 1.0, 0.75, 0.95)
        element = ET.SubElement(
            table,
            "Label",
            Key=str(label),
            Red=f"{red:.4f}",
            Green=f"{green:.4f}",
            Blue=f"{blue:.4f}",
            Alpha="1",
        )
        element.text = name
    ET.SubElement(volume, "VolumeType").text = "Label"
    content: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return content


def decode_label_table(content: bytes) -> dict[int, str]:
    """``{label: name}`` from a Caret label-table extension's bytes.

    Raises
    ------
    FormatError
        When the bytes are not XML or hold no well-formed label table.
    """
    try:
        root = ET.fromstring(content.rstrip(b"\x00 \n\r\t"))
    except ET.ParseError as err:
        raise FormatError(f"label table extension is not valid XML: {err}") from err
    labels: dict[int, str] = {}
    for element in root.iterfind("./VolumeInformation/LabelTable/Label"):
        # spaces may be part of a name; line breaks and tabs are the XML's indentation
        key, name = element.get("Key"), (element.text or "").strip("\n\r\t")
        if key is None or not key.strip().lstrip("-").isdigit() or not name.strip():
            raise FormatError(f"label table entry without an integer Key and a name: {key!r}")
        labels[int(key)] = name
    if not labels:
        raise FormatError("label table extension holds no Label entries")
    return labels
