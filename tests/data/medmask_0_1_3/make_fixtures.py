"""Write the medmask 0.1.3 fixtures in this folder. Run with medmask 0.1.3 installed:

    python3 -m venv /tmp/mm013 && /tmp/mm013/bin/pip install medmask==0.1.3
    /tmp/mm013/bin/python tests/data/medmask_0_1_3/make_fixtures.py

medmask 0.1.3's import name clashes with ours, hence the separate environment. The
expected arrays, names and geometry go to expected.npz / expected.json so tests can
compare what our reader returns with what 0.1.3 was given.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from spacetransformer import Space

from medmask import MaskArchive, SegmentationMask, save_mask

HERE = Path(__file__).resolve().parent
SHAPE = (20, 24, 16)


def ball(center: tuple[int, int, int], radius: float) -> np.ndarray:
    grid = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    d2 = sum((g - c) ** 2 for g, c in zip(grid, center, strict=True))
    return d2 <= radius**2


def main() -> None:
    space = Space(
        shape=SHAPE,
        origin=(-12.5, 30.25, 101.0),
        spacing=(0.8, 0.8, 2.5),
        x_orientation=(0.9659258262890683, 0.25881904510252074, 0.0),
        y_orientation=(-0.25881904510252074, 0.9659258262890683, 0.0),
        z_orientation=(0.0, 0.0, 1.0),
    )
    liver = ball((8, 10, 7), 5.0)
    spleen = ball((14, 16, 9), 3.5) & ~liver
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[liver] = 1
    labels[spleen] = 2
    wide = labels.astype(np.uint16) * 300
    arrays = {
        "bool_liver": (liver, {"liver": 1}),
        "uint8_labels": (labels, {"liver": 1, "spleen": 2}),
        "uint16_labels": (wide, {"liver": 300, "spleen": 600}),
        "uint8_empty": (np.zeros(SHAPE, dtype=np.uint8), {"kidney_cyst_left": 1}),
    }
    expected: dict[str, object] = {"space": json.loads(space.to_json()), "masks": {}}
    for name, (array, mapping) in arrays.items():
        save_mask(SegmentationMask(array, mapping, space), str(HERE / f"{name}.msk"))
        expected["masks"][name] = {"mapping": mapping, "dtype": str(array.dtype)}  # type: ignore[index]

    # An archive built the way MedMask's README builds one: uint8 0/1 per organ.
    archive = MaskArchive(str(HERE / "organs.mska"), mode="w", space=space)
    for organ, region in (
        ("liver", liver),
        ("spleen", spleen),
        ("overlap_ball", ball((10, 12, 8), 3.0)),
    ):
        archive.add_segmask(SegmentationMask(region.astype(np.uint8), {organ: 1}, space), organ)
    expected["archive"] = ["liver", "spleen", "overlap_ball"]

    np.savez_compressed(
        HERE / "expected.npz",
        bool_liver=liver,
        uint8_labels=labels,
        uint16_labels=wide,
        uint8_empty=np.zeros(SHAPE, dtype=np.uint8),
        overlap_ball=ball((10, 12, 8), 3.0).astype(np.uint8),
    )
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
