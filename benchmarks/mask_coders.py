"""Why codec 4 has its own entropy coder: general-purpose compressors on the same transitions.

    .venv/bin/python benchmarks/mask_coders.py

For every non-empty mask of TotalSegmentator s0000 (or, when ../shared/data is absent,
the generated phantom), the crop's row transitions as codec 3 lays them out (counts,
slice-to-slice deltas, raw positions) are compressed by each library at its strongest
setting, one blob per mask as an archive stores them, and compared with codec 4's
blobs. brotli and pyppmd (PPMd) are measured when installed (``pip install brotli
pyppmd``); they are not dependencies. Sizes only: no timing, nothing noisy.
"""

from __future__ import annotations

import importlib
import lzma
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import zstandard

from medmask.codecs.arith_runs import encode_arith_runs
from medmask.codecs.runs import encode_runs
from medmask.sample import generate_masks

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "data" / "totalseg_s0000"


def crops(folder: Path) -> list[np.ndarray]:
    out = []
    for path in sorted(folder.glob("*.nii.gz")):
        mask = np.asarray(nib.load(path).dataobj) != 0
        if mask.any():
            out.append(mask[tuple(slice(a.min(), a.max() + 1) for a in np.nonzero(mask))])
    return out


def coders() -> dict[str, Callable[[bytes], bytes]]:
    found: dict[str, Callable[[bytes], bytes]] = {
        "zstd 19 (codec 3)": zstandard.ZstdCompressor(level=19).compress,
        "zstd 22": zstandard.ZstdCompressor(level=22).compress,
        "lzma 9e (raw)": lambda b: lzma.compress(
            b, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9 | 2**31}]
        ),
    }
    try:
        brotli = importlib.import_module("brotli")
        found["brotli 11"] = lambda b: brotli.compress(b, quality=11)
    except ImportError:
        print("brotli not installed: skipped")
    try:
        ppmd = importlib.import_module("pyppmd")
        found["PPMd order 2"] = lambda b: ppmd.compress(b, max_order=2)
    except ImportError:
        print("pyppmd not installed: skipped")
    return found


def main() -> None:
    folder, label = SHARED, SHARED.name
    if not folder.is_dir():
        label = "generated phantom"
        folder = ROOT / "out" / "phantom"
        if not (folder / "segmentations").is_dir():
            generate_masks(folder, scale="medium", overwrite=True)
        folder = folder / "segmentations"
    masks = crops(folder)
    # codec 3's uncompressed streams, exactly as its blobs hold them
    streams = [
        zstandard.ZstdDecompressor().decompress(encode_runs(m, 1), max_output_size=1 << 30)
        for m in masks
    ]
    ours = sum(len(encode_arith_runs(m)) for m in masks)
    print(f"{label}: {len(masks)} non-empty masks\n")
    print(f"{'coder':24s} {'bytes':>8s}   vs codec 4")
    for name, compress in coders().items():
        size = sum(len(compress(s)) for s in streams)
        print(f"{name:24s} {size:8,d}   {size / ours:.2f}x")
    print(f"{'codec 4 (runs-arith)':24s} {ours:8,d}   1.00x")


if __name__ == "__main__":
    main()
