"""DICOM SEG export and import, side by side with highdicom as TotalSegmentator calls it.

    .venv/bin/pip install -e ".[test]"      # highdicom, the anchor and reference reader
    .venv/bin/python benchmarks/seg_export.py [--repeat 3] [--skip-slow]

On s0000 (../shared/data, when present; else the medium phantom): the 117 masks stored
in an archive, a CT series of their geometry written by the sample generator (oblique,
1.5 mm), then

* highdicom 0.28 BINARY the way TotalSegmentator's ``save_mask_as_dicomseg`` calls it:
  every class a segment of a (slices, rows, columns, segments) array, uncompressed;
  once with all 117 classes and once with the non-empty ones only;
* ``medmask export-seg``'s library call, deflated (default) and uncompressed;
* LABELMAP, of the masks that share no voxel (first come, first kept: a label map holds
  one segment per voxel): highdicom's with RLE Lossless against ``export-seg --type
  labelmap`` (deflated).

Times are best of ``--repeat`` (highdicom with all 117 classes: one run). Every SEG is
read back with highdicom (``segread`` + ``get_volume``) and its per-segment voxel
counts compared with the masks'; medmask's SEGs also go back into an archive and are
compared voxel for voxel, overlaps included.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from label_map_coders import best  # the same best-of-N timing as the label-map anchors
from medmask import MaskArchive, SegmentationMask
from medmask.exchange.dicom.exchange import export_seg, seg_masks
from medmask.exchange.dicom.grid import map_axes
from medmask.exchange.dicom.source import read_source_series
from medmask.ops.pack import pack
from medmask.sample import generate_masks
from medmask.sample.ct_series import write_ct_series

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "seg"
SHARED = ROOT.parent.parent / "shared" / "data" / "totalseg_s0000"


def prepare(folder: Path, label: str) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """Archive of the case's masks and a CT series of their grid (cached in benchmarks/out)."""
    OUT.mkdir(parents=True, exist_ok=True)
    archive = OUT / f"{label}.mska"
    masks = {f.name[:-7]: SegmentationMask.from_nifti(f) for f in sorted(folder.glob("*.nii.gz"))}
    with MaskArchive(archive, "w") as out:
        for name, mask in masks.items():
            out.add_mask(mask, name)
        space = out.space
    assert space is not None
    ct = OUT / f"{label}-ct"
    if not ct.is_dir():
        write_ct_series(np.zeros(tuple(int(n) for n in space.shape), np.int16), space, ct)
    return archive, ct, {n: np.asarray(m.data) != 0 for n, m in masks.items()}


def highdicom_binary(ct: Path, masks: dict[str, np.ndarray], path: Path, names: list[str]) -> None:
    """TotalSegmentator's call: stacked binary masks, one segment per class, uncompressed."""
    import highdicom as hd
    import pydicom
    from highdicom.seg.content import SegmentDescription
    from pydicom.sr.codedict import codes

    series = sorted(
        (pydicom.dcmread(p) for p in ct.glob("*.dcm")), key=lambda ds: int(ds.InstanceNumber)
    )
    stacked = np.stack([masks[n].transpose(2, 1, 0) for n in names], axis=-1).astype(np.uint8)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="TotalSegmentator", version="2", family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        SegmentDescription(
            segment_number=i + 1,
            segment_label=name[:64],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for i, name in enumerate(names)
    ]
    seg = hd.seg.Segmentation(
        source_images=series,
        pixel_array=stacked,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=123,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="TotalSegmentator",
        manufacturer_model_name="TotalSegmentator",
        software_versions="2",
        device_serial_number="1",
    )
    seg.save_as(path)


def highdicom_labelmap(
    ct: Path, masks: dict[str, np.ndarray], path: Path, names: list[str]
) -> None:
    """highdicom's LABELMAP of ``names`` (values 1..n), RLE Lossless."""
    import highdicom as hd
    import pydicom
    from highdicom.seg.content import SegmentDescription
    from pydicom.sr.codedict import codes
    from pydicom.uid import RLELossless

    series = sorted(
        (pydicom.dcmread(p) for p in ct.glob("*.dcm")), key=lambda ds: int(ds.InstanceNumber)
    )
    labels = np.zeros(next(iter(masks.values())).shape, np.uint8)
    for number, name in enumerate(names, start=1):
        labels[masks[name]] = number
    descriptions = [
        SegmentDescription(
            segment_number=i + 1,
            segment_label=name[:64],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for i, name in enumerate(names)
    ]
    seg = hd.seg.Segmentation(
        source_images=series,
        pixel_array=labels.transpose(2, 1, 0),
        segmentation_type=hd.seg.SegmentationTypeValues.LABELMAP,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=124,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
        transfer_syntax_uid=RLELossless,
    )
    seg.save_as(path)


def non_overlapping(masks: dict[str, np.ndarray]) -> list[str]:
    taken = np.zeros(next(iter(masks.values())).shape, bool)
    names = []
    for name in sorted(masks):
        if not (masks[name] & taken).any():
            names.append(name)
            taken |= masks[name]
    return names


def highdicom_counts(path: Path) -> tuple[float, dict[str, int]]:
    import highdicom as hd

    start = time.perf_counter()
    seg = hd.seg.segread(path)
    volume = seg.get_volume(combine_segments=False)
    seconds = time.perf_counter() - start
    labels = [seg.get_segment_description(n).segment_label for n in seg.segment_numbers]
    counts = {label: int(volume.array[..., i].sum()) for i, label in enumerate(labels)}
    return seconds, counts


def run(label: str, folder: Path, repeat: int, skip_slow: bool) -> None:
    archive, ct, masks = prepare(folder, label)
    non_empty = [n for n, m in masks.items() if m.any()]
    truth = {n: int(m.sum()) for n, m in masks.items()}
    shape = "x".join(str(n) for n in next(iter(masks.values())).shape)
    print(f"\n## {label}: {len(masks)} masks ({len(non_empty)} non-empty), {shape}")
    print(f"{'writer':44s} {'bytes':>12s} {'write s':>8s} {'read s':>7s}  counts")
    rows: dict[str, tuple[int, float]] = {}

    def report(name: str, path: Path, seconds: float, expected: list[str] | None = None) -> None:
        read_s, counts = highdicom_counts(path)
        wanted = set(non_empty if expected is None else expected)
        ok = all(counts[n] == truth[n] for n in counts) and set(counts) >= wanted
        size = path.stat().st_size
        rows[name] = (size, seconds)
        print(f"{name:44s} {size:12,d} {seconds:8.2f} {read_s:7.2f}  {'equal' if ok else 'DIFFER'}")

    if not skip_slow:
        path = OUT / f"{label}-highdicom-all.dcm"
        seconds, _ = best(1, lambda: highdicom_binary(ct, masks, path, list(masks)))
        report("highdicom BINARY, all classes (TotalSegmentator)", path, seconds)
    path = OUT / f"{label}-highdicom-nonempty.dcm"
    seconds, _ = best(repeat, lambda: highdicom_binary(ct, masks, path, non_empty))
    report("highdicom BINARY, non-empty classes", path, seconds)
    for syntax in ("deflated", "explicit"):
        path = OUT / f"{label}-medmask-{syntax}.dcm"
        seconds, _ = best(
            repeat,
            lambda syntax=syntax, path=path: export_seg(
                archive, ct, path, transfer_syntax=syntax, overwrite=True
            ),
        )
        report(f"medmask export-seg ({syntax})", path, seconds)
    seg = OUT / f"{label}-medmask-deflated.dcm"
    back = OUT / f"{label}-from-seg.mska"
    read_s, _ = best(repeat, lambda: pack(seg, back, overwrite=True))
    print(f"{'medmask pack SEG -> archive (read, deflated)':44s} {back.stat().st_size:12,d} "
          f"{'':8s} {read_s:7.2f}")  # fmt: skip
    exact = check_round_trip(archive, ct, seg, masks)
    print(f"medmask SEG -> archive -> masks, every voxel (overlaps included): {exact}")
    labelled = non_overlapping(masks)
    print(f"\nLABELMAP of the {len(labelled)} masks that share no voxel "
          f"({sum(1 for n in labelled if masks[n].any())} non-empty)")  # fmt: skip
    path = OUT / f"{label}-highdicom-labelmap-rle.dcm"
    seconds, _ = best(repeat, lambda: highdicom_labelmap(ct, masks, path, labelled))
    report("highdicom LABELMAP (RLE Lossless)", path, seconds, labelled)
    ours = OUT / f"{label}-medmask-labelmap.dcm"
    seconds, _ = best(
        repeat,
        lambda: export_seg(
            archive, ct, ours, names=labelled, segmentation_type="labelmap", overwrite=True
        ),
    )
    report("medmask export-seg --type labelmap", ours, seconds, labelled)
    exact = check_round_trip(archive, ct, ours, {n: masks[n] for n in labelled})
    print(f"medmask LABELMAP -> masks, every voxel: {exact}")
    rle, ours_size = (
        rows["highdicom LABELMAP (RLE Lossless)"][0],
        rows["medmask export-seg --type labelmap"][0],
    )
    print(f"LABELMAP {rle / ours_size:.1f}x smaller than highdicom's RLE (target >= 10x)")
    anchor = "highdicom BINARY, all classes (TotalSegmentator)"
    if anchor in rows:
        size, seconds = rows[anchor]
        ours_size, ours_s = rows["medmask export-seg (deflated)"]
        print(f"export {seconds / ours_s:.0f}x faster than {anchor} (target >= 10x)")
        share = ours_size / size
        print(f"SEG {size / ours_size:.0f}x smaller ({share:.3f} of its size; target <= 0.1)")


def check_round_trip(archive: Path, ct: Path, seg: Path, masks: dict[str, np.ndarray]) -> str:
    source = read_source_series(ct)
    with MaskArchive(archive) as opened:
        space = opened.space
    assert space is not None
    axes = map_axes(space, source.grid)
    seen = set()
    for name, mask in seg_masks([seg], space=source.grid.space()):
        if not np.array_equal(axes.from_series(np.asarray(mask.data) != 0), masks[name]):
            return f"NO ({name} differs)"
        seen.add(name)
    missing = [n for n, m in masks.items() if m.any() and n not in seen]
    return "yes" if not missing else f"NO (missing {missing})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-slow", action="store_true", help="no highdicom run of 117")
    args = parser.parse_args()
    if SHARED.is_dir():
        run("s0000", SHARED, args.repeat, args.skip_slow)
    else:
        print(f"{SHARED} not present: the generated phantom only")
        phantom = ROOT / "out" / "phantom"
        if not (phantom / "segmentations").is_dir():
            generate_masks(phantom, scale="medium", overwrite=True)
        run("phantom", phantom / "segmentations", args.repeat, args.skip_slow)


if __name__ == "__main__":
    main()
