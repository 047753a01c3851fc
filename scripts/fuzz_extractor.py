"""Fuzz the extractor with damaged real headers; count crashes and leaked names.

    .venv/bin/python scripts/fuzz_extractor.py [--files 10000] [--seed 0] [--workers 2]

Seeds are pydicom's bundled files (CT, MR, RT, charset files in eleven character sets)
and the sample generator's, each given marker identities first (PatientName, PatientID,
birth date, case folder names: ``LEAKNAME``, ``泄露``, ``LEAKID`` ...). Each fuzzed file
is a seed with one to three mutations: a VR replaced (by an unknown ``ZZ``, or another
real VR), a length field overwritten, SpecificCharacterSet changed to another or an
unknown term, bytes flipped in the header, a cut at a random offset, an element's bytes
repeated. Files go into cases of about 100, a third of them zipped; a quarter of the case
folders and a fifth of the loose files have names of random bytes (not UTF-8, GBK, control
characters: any name Linux allows; the case names hold 泄露 in GBK). Then one
de-identified run (``--desensitize`` with a key, ``--workers``) over all of them.

Counted: crashes (a traceback on the console, an exit code other than 0 or 1, or a
case_failed line), files not accounted for (summary files != files written), and leaks:
any marker, in any of its encodings, in any byte the run wrote (tables, report, log,
console). The figures print as one table; the exit code is 1 when any is not zero.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pydicom
from pydicom.data import get_charset_files, get_testdata_file

MARKERS = ("LEAKNAME", "LEAKID", "19270707", "泄露", "ЛИКИ", "Λεάκ")
SEEDS = ("CT_small.dcm", "MR_small.dcm", "rtdose.dcm", "rtplan.dcm", "JPEG2000.dcm")
CHARSETS = ("chrH31.dcm", "chrJapMulti.dcm", "chrKoreanMulti.dcm", "chrRuss.dcm",
            "chrGreek.dcm", "chrX1.dcm", "chrX2.dcm", "chrArab.dcm", "chrHbrw.dcm",
            "chrFrenMulti.dcm", "chrGerm.dcm")  # fmt: skip
VRS = (b"AE", b"AS", b"CS", b"DA", b"DS", b"IS", b"LO", b"PN", b"SH", b"UI", b"UL", b"US",
       b"OB", b"SQ", b"UN", b"ZZ")  # fmt: skip
TERMS = ("ISO_IR 100", "ISO_IR 192", "GB18030", "GBK", "ISO 2022 IR 87", "ISO_IR 144",
         "ISO_IR 126", "ISO_IR 13", "BOGUS_CHARSET", "",
         "ISO 2022 IR 149\\ISO 2022 IR 58")  # fmt: skip


@dataclass
class Figures:
    files: int = 0
    seeds: int = 0
    exit_code: int = 0
    crashes: int = 0
    unaccounted: int = 0
    leaks: int = 0
    leak_where: tuple[str, ...] = ()


def seed_files(seed: int) -> list[bytes]:
    """Seed files with marker identities, in their own character sets where they have one."""
    rng = random.Random(seed)
    out = []
    sources = [get_testdata_file(n) for n in SEEDS] + [get_charset_files(n)[0] for n in CHARSETS]
    for source in sources:
        if source is None:
            continue
        ds = pydicom.dcmread(source)
        name = rng.choice(["LEAKNAME^Zhang", "泄露^测试", "ЛИКИ^Тест", "Λεάκ^Δοκιμή"])
        ds.PatientName = name
        ds.PatientID = f"LEAKID{rng.randrange(10**6):06d}"
        ds.PatientBirthDate = "19270707"
        if any(ord(c) > 127 for c in name):
            ds.SpecificCharacterSet = "ISO_IR 192"
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=False)
        out.append(buffer.getvalue())
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three mutations of a file's header region."""
    raw = bytearray(data)
    header_end = min(len(raw), 2048)
    for _ in range(rng.randint(1, 3)):
        header_end = min(len(raw), 2048)  # mutations change the length
        kind = rng.choice(("vr", "length", "charset", "flip", "cut", "repeat"))
        if kind == "vr":
            spots = [
                m.start() for m in re.finditer(rb"(?<=..)[A-Z]{2}", bytes(raw[132:header_end]))
            ]
            if spots:
                at = 132 + rng.choice(spots)
                raw[at : at + 2] = rng.choice(VRS)
        elif kind == "length" and header_end > 140:
            at = rng.randrange(132, header_end - 4)
            raw[at : at + 2] = struct.pack(
                "<H", rng.choice((0, 1, 3, 0xFFFF, rng.randrange(65536)))
            )
        elif kind == "charset":
            at = bytes(raw).find(b"\x08\x00\x05\x00")
            if at >= 0 and at + 8 <= len(raw):
                term = rng.choice(TERMS).encode()
                term += b" " * (len(term) % 2)
                value = struct.pack("<H", len(term)) + term
                old = struct.unpack_from("<H", raw, at + 6)[0]
                raw[at + 6 : at + 8 + old] = value
        elif kind == "flip" and header_end > 132:
            for _ in range(rng.randint(1, 8)):
                raw[rng.randrange(132, header_end)] = rng.randrange(256)
        elif kind == "cut":
            raw = raw[: rng.randrange(1, len(raw))] if len(raw) > 1 else raw
        elif kind == "repeat" and header_end > 160:
            at = rng.randrange(132, header_end - 16)
            raw[at:at] = raw[at : at + rng.randint(2, 16)]
    return bytes(raw)


def write_cases(root: Path, files: int, seed: int) -> Figures:
    rng = random.Random(seed)
    seeds = seed_files(seed)
    root.mkdir(parents=True)
    figures = Figures(files=files, seeds=len(seeds))
    per_case = 100
    for case_index in range((files + per_case - 1) // per_case):
        count = min(per_case, files - case_index * per_case)
        blobs = [mutate(rng.choice(seeds), rng) for _ in range(count)]
        case = root / f"LEAKNAME_case{case_index:04d}"
        if case_index % 4 == 1:  # a name that is not UTF-8: GBK, then any bytes
            raw = b"LEAKNAME_" + "泄露".encode("gbk") + byte_name(rng) + b"%04d" % case_index
            case = Path(os.fsdecode(os.fsencode(root) + b"/" + raw))
        case.mkdir()
        if case_index % 3 == 2:
            with zipfile.ZipFile(case / "LEAKID_study.zip", "w") as archive:
                for i, blob in enumerate(blobs):
                    archive.writestr(f"泄露/IM{i:04d}.dcm", blob)
        else:
            for i, blob in enumerate(blobs):
                name = f"IM{i:04d}.dcm"
                if rng.random() < 0.2:  # any bytes a file system allows in a name
                    name = os.fsdecode(byte_name(rng) + b"%04d.dcm" % i)
                (case / name).write_bytes(blob)
    return figures


def byte_name(rng: random.Random) -> bytes:
    """1-8 random bytes a Linux name may hold (not "/" or NUL): control characters, invalid
    UTF-8, GBK lead bytes, a leading dot or space."""
    allowed = [b for b in range(1, 256) if b != ord("/")]
    return bytes(rng.choice(allowed) for _ in range(rng.randint(1, 8)))


def encodings(text: str) -> list[bytes]:
    out = []
    for codec in ("utf-8", "gb18030", "iso8859_5", "iso8859_7", "utf-16-le", "shift_jis", "euc_kr"):
        try:
            out.append(text.encode(codec))
        except UnicodeEncodeError:
            continue
    return out


def searchable(path: Path) -> bytes:
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        return "\n".join(map(str, table.to_pylist())).encode("utf-8")
    return path.read_bytes()


def fuzz(files: int, seed: int, workers: int, work: Path) -> Figures:
    """Write the fuzzed cases under ``work``, run the extractor over them, count."""
    root, out, log = work / "cases", work / "out", work / "run.log"
    figures = write_cases(root, files, seed)
    key = work / "key"
    key.write_text("fuzzing key of at least thirty-two characters\n", encoding="utf-8")
    argv = [sys.executable, "-m", "dcm_extractor", "-d", str(root), "-o", str(out), "-q"]
    argv += ["--merge-all", "--format", "csv,json,parquet", "--export-json", "--desensitize"]
    argv += ["--pseudonym-key-file", str(key), "--projectid-map", str(work / "private.json")]
    argv += ["--workers", str(workers), "--log", str(log)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    console = result.stdout + result.stderr
    figures.exit_code = result.returncode
    report = (out / "extraction_report.csv").read_text(encoding="utf-8") if out.is_dir() else ""
    figures.crashes = int("Traceback" in console) + int(result.returncode not in (0, 1))
    figures.crashes += report.count(",case_failed,")
    match = re.search(r"; ([\d,]+) files:", result.stdout)
    counted = int(match.group(1).replace(",", "")) if match else -1
    figures.unaccounted = abs(files - counted)
    written = [p for p in out.rglob("*") if p.is_file()] + [log]
    blobs = [(p.name, searchable(p)) for p in written] + [("console", console.encode("utf-8"))]
    where = set()
    for name, data in blobs:
        for marker in MARKERS:
            if any(form in data for form in encodings(marker)):
                where.add(f"{name}: {marker}")
    figures.leaks = len(where)
    figures.leak_where = tuple(sorted(where))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fuzz-extractor-"))
    try:
        figures = fuzz(args.files, args.seed, args.workers, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"fuzzed files      {figures.files:,} (from {figures.seeds} seeds, seed {args.seed})")
    print(f"exit code         {figures.exit_code}")
    print(f"crashes           {figures.crashes}")
    print(f"files unaccounted {figures.unaccounted}")
    print(f"leaks             {figures.leaks}")
    for line in figures.leak_where[:20]:
        print(f"  {line}")
    return int(bool(figures.crashes or figures.unaccounted or figures.leaks))


if __name__ == "__main__":
    sys.exit(main())
