"""Huge and hostile files cost a bounded amount: pydicom's parse is given at most
``HANDOVER_BYTES`` of a file or zip member, and large real images are still judged right.

Memory is the test (peak RSS of a child process that scans the case), never time.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

from dcm_extractor.reading.fastheader import HANDOVER_BYTES
from dcm_extractor.sources.zipread import PREFIX_BYTES

SCAN = textwrap.dedent(
    """
    import json, resource, sys
    from dcm_extractor.sources.cases import scan_case
    result = scan_case(sys.argv[1], sys.argv[2])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reasons = {e.location.rsplit("/", 1)[-1].rsplit("!", 1)[-1]: e.reason for e in result.report}
    print(json.dumps({"peak_mb": peak, "reasons": reasons, "images": result.images}))
    """
)


def scan(case: Path) -> dict[str, object]:
    import json

    done = subprocess.run(
        [sys.executable, "-c", SCAN, str(case), str(case.parent)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


def image(frames: int, *, encapsulated: bool = False) -> bytes:
    """A multi-frame image whose header the fast reader hands over (a 20 KB private
    element past its 16 KB head), larger than HANDOVER_BYTES."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless if encapsulated else ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "BIG^FILE", "BIG1", "MR"
    ds.add_new(0x00091010, "UN", b"\x00" * 20_000)
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.NumberOfFrames = frames
    if encapsulated:  # a frame per fragment, each as large as a raw frame
        ds.PixelData = encapsulate([b"\x00" * (512 * 512 * 2)] * frames)
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = np.zeros((frames, 512, 512), np.uint16).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_the_bounds_agree() -> None:
    assert HANDOVER_BYTES == PREFIX_BYTES == 32 * 2**20


@pytest.mark.slow
def test_huge_files_cost_a_bounded_amount_and_big_images_stay_right(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    with (case / "sparse.dcm").open("wb") as handle:  # 4 GiB of zeros, no disk used
        handle.truncate(4 * 2**30)
    with (case / "header.dcm").open("wb") as handle:  # 7 implicit-VR bytes, then 2 GiB of 0
        handle.write(b"\x08\x00\x16\x00\x1a\x00\x00")
        handle.truncate(2 * 2**30)
    big = image(80)  # 40 MB, native
    (case / "big.dcm").write_bytes(big)
    (case / "cut.dcm").write_bytes(big[: -(2**20)])
    (case / "fragments.dcm").write_bytes(image(80, encapsulated=True))
    encapsulated_cut = image(80, encapsulated=True)[: -(2**20)]
    (case / "fragments_cut.dcm").write_bytes(encapsulated_cut)
    with zipfile.ZipFile(case / "members.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.dcm", image(80))  # other UIDs: no duplicate of the loose one
        archive.writestr("fragments.dcm", image(80, encapsulated=True))
        with archive.open("zeros.dcm", "w", force_zip64=True) as member:
            for _ in range(80):
                member.write(b"\x00" * 2**24)  # 1.25 GiB of zeros
    found = scan(case)
    reasons = found["reasons"]
    assert isinstance(reasons, dict)
    assert reasons.get("sparse.dcm") == "not_dicom"
    assert reasons.get("zeros.dcm") == "not_dicom"
    assert reasons.get("header.dcm") in ("no_pixel_data", "unreadable")
    assert reasons.get("cut.dcm") == "truncated"
    assert reasons.get("fragments_cut.dcm") == "truncated"
    assert "big.dcm" not in reasons and "fragments.dcm" not in reasons, reasons
    assert found["images"] == 4  # big and fragments, loose and zipped
    # Bounded: well under any one of the 4 GiB, 2 GiB or 1.25 GiB files (reading one whole
    # cost its size and more). Not tighter: a few 32 MB prefixes, pydicom's copies and
    # glibc keeping freed heap give 270 MB here on a quiet run, 520 MB in one loaded run.
    assert float(found["peak_mb"]) < 1000, found
