"""medmask's exchange paths, this version against another's source tree, on one data set.

    python benchmarks/exchange_against.py --against /tmp/old/src [--repeat 5]

Times, inside one process per run (interpreter start-up excluded): pack a folder of
NIfTI masks, read every mask, unpack to NIfTI, export-slicer, export-seg onto a CT series
of the masks' grid, and pack that SEG back. The two versions run alternately on the same
files (this machine's speed drifts between runs); medians and their ratio are printed.
Data: TotalSegmentator's s0000 from ../shared/data when present, else the generated
sample. Make the other tree with ``git worktree add /tmp/old <commit>``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
S0000 = ROOT.parent / "shared" / "data" / "totalseg_s0000"

RUN = textwrap.dedent(
    """
    import json, sys, time, warnings
    from pathlib import Path
    warnings.simplefilter("ignore")
    from medmask import MaskArchive
    try:
        from medmask.ops.pack import pack
        from medmask.ops.unpack import unpack_archive
        from medmask.exchange.slicer import export_seg_nrrd
        from medmask.exchange.dicom.exchange import export_seg
    except ImportError:  # a version before the layered layout
        from medmask.packing import pack
        from medmask.unpacking import unpack_archive
        from medmask.slicer import export_seg_nrrd
        from medmask.dicom.exchange import export_seg
    masks, ct, work = (Path(a) for a in sys.argv[1:4])
    out = {}
    def timed(name, call):
        start = time.perf_counter()
        call()
        out[name] = time.perf_counter() - start
    timed("pack NIfTI folder", lambda: pack(masks, work / "a.mska", overwrite=True))
    def read_all():
        with MaskArchive(work / "a.mska") as archive:
            for name in archive:
                archive.load_mask(name)
    timed("read every mask", read_all)
    timed("unpack to NIfTI", lambda: unpack_archive(work / "a.mska", work / "nii", overwrite=True))
    a = work / "a.mska"
    timed("export-slicer", lambda: export_seg_nrrd(a, work / "a.seg.nrrd", overwrite=True))
    timed("export-seg", lambda: export_seg(work / "a.mska", ct, work / "a.dcm", overwrite=True))
    with MaskArchive(work / "a.mska") as archive:
        space = archive.space
    back = work / "b.mska"
    timed("pack SEG back", lambda: pack(work / "a.dcm", back, overwrite=True, reference=space))
    print(json.dumps(out))
    """
)


def prepare(work: Path) -> tuple[Path, Path, str]:
    """The masks folder and a CT series of their grid (written once, by this version)."""
    import nibabel as nib
    import numpy as np

    from medmask.model.geometry import space_from_nifti_affine
    from medmask.sample import generate_masks
    from medmask.sample.ct_series import write_ct_series

    if S0000.is_dir():
        masks, label = S0000, "TotalSegmentator s0000 (117 masks)"
    else:
        sample = generate_masks(work / "sample")
        masks, label = sample.masks_dir, "generated sample"
    first = nib.load(next(iter(sorted(masks.glob("*.nii.gz")))))
    space = space_from_nifti_affine(first.affine, first.shape[:3])
    write_ct_series(np.zeros(first.shape[:3], np.int16), space, work / "ct")
    return masks, work / "ct", label


def run(src: Path | None, masks: Path, ct: Path, work: Path) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(masks), str(ct), str(work)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--against", type=Path, required=True, help="another version's src/")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        masks, ct, label = prepare(work)
        (work / "this").mkdir()
        (work / "other").mkdir()
        this: list[dict[str, float]] = []
        other: list[dict[str, float]] = []
        for _ in range(args.repeat):
            this.append(run(None, masks, ct, work / "this"))
            other.append(run(args.against, masks, ct, work / "other"))
    print(f"{label}: this version vs {args.against}, median of {args.repeat} alternating runs")
    print(f"{'step':<22}{'this ms':>10}{'other ms':>10}{'ratio':>8}")
    for step in this[0]:
        a = statistics.median(r[step] for r in this) * 1000
        b = statistics.median(r[step] for r in other) * 1000
        print(f"{step:<22}{a:>10.1f}{b:>10.1f}{a / b:>8.2f}")


if __name__ == "__main__":
    main()
