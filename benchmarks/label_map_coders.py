"""Label maps (all organs in one array) stored side by side: the anchors for a label-map codec.

    .venv/bin/pip install -e ".[bench]"     # crackle-codec, the label-image codec anchor
    .venv/bin/python benchmarks/label_map_coders.py [--repeat 5]

The label maps are built as the MedMask notebook's "方式二" builds them: every organ of
a TotalSegmentator case (s0000 from ../shared/data when present, and the generated
full-body phantom) added in file order with ``add_label(mask, i + 1, name)``, so a later
organ keeps a shared voxel. Each coder encodes and decodes the whole uint8 map; times are
best of ``--repeat``; "exact" compares the decoded map with the original. For scale, the
last line per case is medkit's archive of the same organs stored one mask each.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import zstandard

from medmask import MaskArchive, OverlapWarning, SegmentationMask
from medmask.sample import generate_masks
from medmask.space import space_from_affine

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out"
SHARED = ROOT.parent.parent / "shared" / "data" / "totalseg_s0000"


def organ_arrays(folder: Path) -> tuple[dict[str, np.ndarray], Any]:
    files = sorted(folder.glob("*.nii.gz"))
    first = nib.load(files[0])
    arrays = {
        f.name[:-7]: np.asarray(f_img.dataobj) for f, f_img in ((f, nib.load(f)) for f in files)
    }
    return arrays, space_from_affine(first.affine, first.shape)


def combined_map(arrays: dict[str, np.ndarray], space: Any) -> SegmentationMask:
    combined = SegmentationMask.lazy_init(bit_depth=8, space=space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverlapWarning)  # the notebook's overlaps, by design
        for label, (name, arr) in enumerate(arrays.items(), start=1):
            combined.add_label(arr > 0, label, name)
    return combined


def best(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def coders() -> dict[str, tuple[Callable[[np.ndarray], bytes], Callable[[bytes, Any], np.ndarray]]]:
    found: dict[str, Any] = {
        "zstd 19 (raw volume)": (
            lambda a: zstandard.ZstdCompressor(level=19).compress(
                np.ascontiguousarray(a).tobytes()
            ),
            lambda b, a: np.frombuffer(zstandard.ZstdDecompressor().decompress(b), a.dtype).reshape(
                a.shape
            ),
        ),
    }
    try:
        import crackle
    except ImportError:
        print("crackle-codec is not installed (pip install -e '.[bench]'): its rows are left out")
        return found
    for order in (0, 5):
        found[f"crackle markov {order}"] = (
            lambda a, order=order: crackle.compress(a, markov_model_order=order),
            lambda b, a: crackle.decompress(b),
        )
    return found


def measure(label: str, folder: Path, repeat: int) -> None:
    arrays, space = organ_arrays(folder)
    combined = combined_map(arrays, space)
    volume = np.asarray(combined.data)
    print(f"\n## {label}: {len(arrays)} organs, {'x'.join(map(str, volume.shape))} voxels")
    print(f"{'coder':28s} {'bytes':>10s} {'encode ms':>10s} {'decode ms':>10s}  exact")
    for name, (encode, decode) in coders().items():
        encode_s, blob = best(repeat, lambda encode=encode: encode(volume))
        decode_s, back = best(repeat, lambda decode=decode, blob=blob: decode(blob, volume))
        exact = "yes" if np.array_equal(np.asarray(back), volume) else "NO"
        print(f"{name:28s} {len(blob):10,d} {encode_s * 1e3:10.1f} {decode_s * 1e3:10.1f}  {exact}")
    path = OUT / f"{label}-combined.mska"

    def write_combined() -> None:
        with MaskArchive(path, "w", space=combined.space) as archive:
            archive.add_mask(combined, "all_organs_combined")

    encode_s, _ = best(repeat, write_combined)

    def read_combined() -> np.ndarray:
        with MaskArchive(path) as archive:
            return np.asarray(archive.load_mask("all_organs_combined").data)

    decode_s, back = best(repeat, read_combined)
    exact = "yes" if np.array_equal(back, volume) else "NO"
    size = path.stat().st_size
    times = f"{encode_s * 1e3:10.1f} {decode_s * 1e3:10.1f}"
    print(f"{'medkit archive, combined':28s} {size:10,d} {times}  {exact}")
    separate = OUT / f"{label}-separate-organs.mska"
    with MaskArchive(separate, "w", space=space) as archive:
        for name, arr in arrays.items():
            archive.add_mask(SegmentationMask(arr, {name: 1}, space), name)
    print(f"{'medkit archive, one per organ':28s} {separate.stat().st_size:10,d}  (overlaps kept)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if SHARED.is_dir():
        measure("s0000", SHARED, args.repeat)
    else:
        print(f"{SHARED} not present: only the generated phantom is measured")
    phantom = OUT / "phantom"
    if not (phantom / "segmentations").is_dir():
        generate_masks(phantom, scale="medium", overwrite=True)
    measure("phantom", phantom / "segmentations", args.repeat)


if __name__ == "__main__":
    main()
