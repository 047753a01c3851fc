"""What one huge or hostile file costs a run: peak memory and time, one case per file.

    python benchmarks/big_files.py [--against /tmp/old/src] [--work DIR]

Each case is one file the fast header reader cannot finish, so pydicom's parse takes
over: a 4 GiB sparse file of zeros, 1 GiB of junk named .dcm, a 1 MB zip holding a
1 GiB member of zeros, 1 GiB of seven implicit-VR header bytes then zeros; and, as a
check that real large images are still judged right, a 300 MB multi-frame image
(native pixel data, with a private element the fast reader hands over on) and the same
image cut 1 MB short. Every case is a separate ``dcm-extract`` process with one worker;
peak RSS is that process's (``ru_maxrss`` of the child), and the verdict is the report's.
Sparse files take no disk; the zip members compress to almost nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dcm_extractor.sources.cases import NOTE_REASONS

GiB = 2**30


def big_image(frames: int) -> bytes:
    """A valid multi-frame image (native pixels, 512 x 512 x 16 bit) as bytes."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "BIG^FILE", "BIG1", "MR"
    ds.add_new(0x00091010, "UN", b"\x00" * 20_000)  # a private element past the fast head
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.NumberOfFrames = frames
    ds.PixelData = np.zeros((frames, 512, 512), np.uint16).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def sparse(path: Path, size: int, head: bytes = b"") -> None:
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(size)


def make_cases(root: Path) -> list[str]:
    cases = {
        "sparse_4GiB": lambda d: sparse(d / "x.dcm", 4 * GiB),
        "junk_1GiB": lambda d: sparse(d / "movie.dcm", GiB, b"\x00\x00\x00\x20ftypisom" * 8),
        "zip_1GiB_member": lambda d: _zip_of_zeros(d / "z.zip", GiB),
        "implicit_header_1GiB": lambda d: sparse(d / "h.dcm", GiB, b"\x08\x00\x16\x00\x1a\x00\x00"),
        "image_300MB": lambda d: (d / "big.dcm").write_bytes(big_image(600)),
        "image_300MB_cut": lambda d: (d / "cut.dcm").write_bytes(big_image(600)[: -(2**20)]),
    }
    for name, make in cases.items():
        folder = root / name / "case"  # a data root per file, with one case in it
        folder.mkdir(parents=True)
        make(folder)
    return list(cases)


def _zip_of_zeros(path: Path, size: int) -> None:
    chunk = b"\x00" * 2**24
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.dcm", "w", force_zip64=True) as member,
    ):
        for _ in range(size // len(chunk)):
            member.write(chunk)


RUN = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{done.returncode} {seconds:.2f} {peak:.0f}")
"""


def run_case(root: Path, case: str, out: Path, src: Path | None) -> tuple[float, float, str]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    argv = [sys.executable, "-m", "dcm_extractor", "-d", str(root / case), "-o", str(out), "-q"]
    argv += ["--workers", "1", "--no-resume", "--log", str(out.parent / f"{case}.log")]
    line = subprocess.run(
        [sys.executable, "-c", RUN, *argv], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    report = (out / "extraction_report.csv").read_text(encoding="utf-8").splitlines()[1:]
    reasons = [line.split(",")[2] for line in report]
    verdict = next((r for r in reasons if r not in NOTE_REASONS), "image")  # not row notes
    return float(line[1]), float(line[2]), verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--against", type=Path, help="another version's src/ as well")
    parser.add_argument("--work", type=Path, help="where to build the files (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        root = Path(tmp) / "cases"
        cases = make_cases(root)
        versions = [("this", None)] + ([("other", args.against)] if args.against else [])
        heads = "".join(f"{v + ' s':>9}{v + ' MB':>10}  {v + ' verdict':<16}" for v, _ in versions)
        print(f"{'case':<22}{heads}")
        for case in cases:
            cells = []
            for _, src in versions:
                out = Path(tmp) / f"out_{case}_{src is not None}"
                seconds, peak, verdict = run_case(root, case, out, src)
                cells.append(f"{seconds:>9.1f}{peak:>10.0f}  {verdict:<16}")
            print(f"{case:<22}" + "".join(cells))


if __name__ == "__main__":
    main()
