"""Label maps (all organs in one array) stored side by side: the anchors for a label-map codec.

    .venv/bin/pip install -e ".[bench]"     # crackle-codec, the label-image codec anchor
    .venv/bin/python benchmarks/label_map_coders.py [--repeat 5]

The label maps are built as the MedMask notebook's "方式二" builds them: every organ of
a TotalSegmentator case (s0000 from ../shared/data when present, and the generated
full-body phantom) added in file order with ``add_label(mask, i + 1, name)``, so a later
organ keeps a shared voxel. Each coder encodes and decodes the whole uint8 map (medkit's
codec on its own, then the archive file: write, and open + read the whole map); times are
best of ``--repeat``; "exact" compares the decoded map with the original. Reading one
name and every name (the notebook's loop) out of the combined archive follow, and the
archive of the same organs stored one mask each. The issue's targets close the output.
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
from medmask.codecs import decode_mask, encode_mask
from medmask.sample import generate_masks

try:
    from medmask.model.space import space_from_affine
except ImportError:  # a version before the layered layout (--against-style runs with PYTHONPATH)
    from medmask.space import space_from_affine  # type: ignore[no-redef]

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


def measure(label: str, folder: Path, repeat: int) -> dict[str, float]:
    """Print one case's table; return the numbers the targets are checked on."""
    arrays, space = organ_arrays(folder)
    combined = combined_map(arrays, space)
    volume = np.asarray(combined.data)
    present = len(np.unique(volume)) - 1
    shape = "x".join(map(str, volume.shape))
    print(f"\n## {label}: {len(arrays)} organs ({present} with voxels in the map), {shape} voxels")
    print(f"{'coder':34s} {'bytes':>10s} {'encode ms':>10s} {'decode ms':>10s}  exact")
    found: dict[str, float] = {}

    def row(name: str, size: int, encode_s: float, decode_s: float, exact: bool) -> None:
        times = f"{encode_s * 1e3:10.1f} {decode_s * 1e3:10.1f}"
        print(f"{name:34s} {size:10,d} {times}  {'yes' if exact else 'NO'}")

    for name, (encode, decode) in coders().items():
        encode_s, blob = best(repeat, lambda encode=encode: encode(volume))
        decode_s, back = best(repeat, lambda decode=decode, blob=blob: decode(blob, volume))
        row(name, len(blob), encode_s, decode_s, np.array_equal(np.asarray(back), volume))
        if name.startswith("crackle"):
            found[f"{name} bytes"], found[f"{name} decode"] = len(blob), decode_s

    encode_s, encoded = best(repeat, lambda: encode_mask(volume))
    decode_s, back = best(repeat, lambda: decode_mask(encoded))
    codec = f"medkit codec {int(encoded.codec)} ({encoded.codec.name.lower()})"
    row(codec, len(encoded.blob), encode_s, decode_s, np.array_equal(back, volume))
    found["codec decode"], found["codec encode"] = decode_s, encode_s
    measure_archives(label, combined, arrays, repeat, found, row)
    return found


def measure_archives(
    label: str,
    combined: SegmentationMask,
    arrays: dict[str, np.ndarray],
    repeat: int,
    found: dict[str, float],
    row: Callable[[str, int, float, float, bool], None],
) -> None:
    """The combined map as an archive file (whole, one name, every name); one per organ."""
    volume = np.asarray(combined.data)
    path = OUT / f"{label}-combined.mska"

    def write_combined() -> None:
        with MaskArchive(path, "w", space=combined.space) as archive:
            archive.add_mask(combined, "all_organs_combined")

    write_s, _ = best(repeat, write_combined)

    def read_combined() -> np.ndarray:
        with MaskArchive(path) as archive:
            return np.asarray(archive.load_mask("all_organs_combined").data)

    read_s, back = best(repeat, read_combined)
    size = path.stat().st_size
    row("medkit archive, combined (file)", size, write_s, read_s, np.array_equal(back, volume))
    found["archive"], found["archive write"] = size, write_s

    names = list(combined.mapping)
    middle = names[len(names) // 2]

    def read_one() -> np.ndarray:
        with MaskArchive(path) as archive:
            return archive.load_mask("all_organs_combined").get_mask_by_names(middle)

    one_s, one = best(repeat, read_one)
    expected = volume == combined.mapping[middle]

    def read_loop() -> bool:
        with MaskArchive(path) as archive:
            mask = archive.load_mask("all_organs_combined")
            return all(
                np.array_equal(mask.get_mask_by_names(n), volume == combined.mapping[n])
                for n in names
            )

    _, loop_exact = best(1, read_loop)

    def loop_only() -> None:
        with MaskArchive(path) as archive:
            mask = archive.load_mask("all_organs_combined")
            for n in names:
                mask.get_mask_by_names(n)

    loop_s, _ = best(repeat, loop_only)
    print(f"{'  open + one name (' + middle + ')':34s} {'':10s} {'':10s} {one_s * 1e3:10.1f}  "
          f"{'yes' if np.array_equal(one, expected) else 'NO'}")  # fmt: skip
    print(f"{'  open + every name, in order':34s} {'':10s} {'':10s} {loop_s * 1e3:10.1f}  "
          f"{'yes' if loop_exact else 'NO'}")  # fmt: skip

    separate = OUT / f"{label}-separate-organs.mska"
    with MaskArchive(separate, "w", space=combined.space) as archive:
        for name, arr in arrays.items():
            archive.add_mask(SegmentationMask(arr, {name: 1}, combined.space), name)
    found["separate"] = separate.stat().st_size
    print(f"{'medkit archive, one per organ':34s} {found['separate']:10,d}  (overlaps kept)")


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def targets(label: str, found: dict[str, float]) -> None:
    """The issue's targets for the case, as ratios."""
    print(f"\n{label} targets:")
    crackle = [k[: -len(" bytes")] for k in found if k.endswith(" bytes")]
    if label == "s0000":
        kb = found["archive"] / 1024
        print(f"  combined archive {found['archive']:,.0f} B = {kb:.1f} KiB (target <= 16 KB: "
              f"{verdict(found['archive'] <= 16_000)})")  # fmt: skip
        if crackle:
            smallest = min(found[f"{c} bytes"] for c in crackle)
            ratio = smallest / found["archive"]
            print(f"  {ratio:.2f}x smaller than crackle's best, {smallest:,.0f} B (target >= 2.3x: "
                  f"{verdict(ratio >= 2.3)})")  # fmt: skip
    ours = found["codec decode"]
    for c in crackle:
        theirs = found[f"{c} decode"]
        print(f"  decode {ours * 1e3:.1f} ms, {theirs / ours:.1f}x faster than {c} "
              f"({theirs * 1e3:.1f} ms) (no slower: {verdict(theirs >= ours)})")  # fmt: skip
    print(f"  encode {found['codec encode']:.2f} s, archive write {found['archive write']:.2f} s "
          f"(target <= 1 s: {verdict(found['archive write'] <= 1)})")  # fmt: skip
    ratio = found["archive"] / found["separate"]
    print(f"  combined archive {ratio:.3f}x the per-mask archive's {found['separate']:,.0f} B "
          f"(target <= 1: {verdict(ratio <= 1)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    if SHARED.is_dir():
        results["s0000"] = measure("s0000", SHARED, args.repeat)
    else:
        print(f"{SHARED} not present: only the generated phantom is measured")
    phantom = OUT / "phantom"
    if not (phantom / "segmentations").is_dir():
        generate_masks(phantom, scale="medium", overwrite=True)
    results["phantom"] = measure("phantom", phantom / "segmentations", args.repeat)
    for label, found in results.items():
        targets(label, found)


if __name__ == "__main__":
    main()
