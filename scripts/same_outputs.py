"""Check that dcm-extract writes the same bytes as another version of its code.

    .venv/bin/python scripts/same_outputs.py --against /tmp/old/src [--work /tmp/same]

For a change that is to leave the outputs alone (a reorganisation, a faster path): one
data root holds the sample generator's showcase cases, pydicom's bundled test files (odd
encodings, damaged and non-image objects) as one case, 2,000 fuzzed files (damaged real
headers, as scripts/fuzz_extractor.py makes them, seed 0; ``--fuzzed``), and, when ../shared/data is
there, its CT slices and third-party files. Both versions run over it with each option
set below (identified, de-identified with a key, series and --columns, several
formats); every file they write is compared byte for byte, except ``report.html`` (it
states when the run was, its speed and its output folder: compared without them) and
the resume manifest.
Exit code 1 when any file differs or exists in one output only.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom

sys.path.insert(0, str(Path(__file__).parent))
from fuzz_extractor import write_cases  # a script beside this one

HERE = Path(__file__).resolve().parents[1]
SHARED = HERE.parent / "shared" / "data"
OPTION_SETS = {
    "plain": ["--merge-all"],
    "formats": ["--merge-all", "--format", "csv,json,parquet", "--export-json", "--excel"],
    "series-columns": [
        "--merge-all",
        "--series",
        "--columns",
        "SliceThickness,ImageType,(0018,0050),ContentDate",
        "--report",
    ],
    "desensitized": ["--merge-all", "--series", "--desensitize", "--shift-dates", "--report"],
}
# What report.html says of the run itself: when, how fast, where it wrote.
_RUN_FACTS = re.compile(rb"[0-9-]{10} [0-9:]{8} UTC|[0-9.,]+ (?:files/)?s\b")


def make_data(root: Path, fuzzed_files: int) -> None:
    """The data root both versions read (see the module's docstring)."""
    sample = root.parent / "sample"
    subprocess.run(
        [sys.executable, "-m", "dcm_extractor", "sample", str(sample), "--overwrite"],
        check=True,
        capture_output=True,
    )
    shutil.copytree(sample / "dicom_cases", root)
    bundled = Path(pydicom.__file__).parent / "data" / "test_files"
    case = root / "pydicom_bundled"
    case.mkdir()
    for path in sorted(bundled.rglob("*")):
        if path.is_file():
            shutil.copy(path, case / path.relative_to(bundled).as_posix().replace("/", "__"))
    if fuzzed_files:
        fuzzed = root.parent / "fuzzed"
        write_cases(fuzzed, fuzzed_files, 0)
        for case_dir in fuzzed.iterdir():
            shutil.move(str(case_dir), root / case_dir.name)
    for name in ("ct_sample", "third_party"):
        if (SHARED / name).is_dir():
            shutil.copytree(SHARED / name, root / f"shared_{name}")


def run(src: Path, root: Path, out: Path, options: list[str], key: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(src), "DCM_EXTRACT_KEY": key.read_text().strip()}
    argv = [sys.executable, "-m", "dcm_extractor", "-d", str(root), "-o", str(out), "-q"]
    result = subprocess.run(
        [*argv, "--no-resume", "--workers", "2", *options],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=out.parent,
    )
    return f"exit {result.returncode}: {result.stdout.strip()}"


def differences(a: Path, b: Path) -> list[str]:
    names_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    names_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    found = [f"only in one: {n}" for n in sorted(names_a ^ names_b, key=str)]
    for name in sorted(names_a & names_b, key=str):
        if name.parts[0] == ".manifest":
            continue
        if name.name == "report.html":
            same = _run_free(a / name, a) == _run_free(b / name, b)
        else:
            same = filecmp.cmp(a / name, b / name, shallow=False)
        if not same:
            found.append(f"differs: {name}")
    return found


def _run_free(page: Path, out: Path) -> bytes:
    """A report page without the run's time, speed and output folder."""
    return _RUN_FACTS.sub(b"", page.read_bytes().replace(os.fsencode(out), b"OUT"))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", type=Path, required=True, help="the other version's src/")
    parser.add_argument("--work", type=Path, default=Path("/tmp/same_outputs"))
    parser.add_argument("--fuzzed", type=int, default=2_000, help="fuzzed files (0: none)")
    args = parser.parse_args()
    work: Path = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    root = work / "data"
    make_data(root, args.fuzzed)
    key = work / "key"
    key.write_text("a pseudonym key of at least thirty-two characters\n", encoding="utf-8")
    files = sum(1 for p in root.rglob("*") if p.is_file())
    print(f"data root: {files} files in {sum(1 for _ in root.iterdir())} cases")
    failed = 0
    for label, options in OPTION_SETS.items():
        outs = {}
        for side, src in (("this", HERE / "src"), ("other", args.against)):
            outs[side] = work / f"{label}-{side}"
            line = run(src, root, outs[side], options, key)
            print(f"{label:15} {side:5} {line}")
        found = differences(outs["this"], outs["other"])
        count = sum(1 for p in outs["this"].rglob("*") if p.is_file())
        print(f"{label:15} {count} files written, {len(found)} differ")
        for item in found[:20]:
            print(f"    {item}")
        failed += bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
