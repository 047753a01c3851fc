"""The MedMask notebook that medmask grew from, run verbatim (../shared/seed_examples).

It runs as a script in a scratch folder holding ``s0000`` (TotalSegmentator s0000), as its
header says. A small harness around it copies each archive at the moment the notebook
takes its size (``Path(...).stat()``): those copies must already hold every mask, since
the notebook never closes its archives. Skipped where ../shared is absent.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medmask import MaskArchive

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
NOTEBOOK = SHARED / "seed_examples" / "medmask_notebook.py"
CASE = SHARED / "data" / "totalseg_s0000"

# What MedMask printed for the notebook (its header): ours must be smaller.
MEDMASK_KB = {"organs_individual.maska": 158, "organs_combined.maska": 92, "ribs_archive.maska": 14}

HARNESS = textwrap.dedent(
    """
    import pathlib, runpy, sys

    notebook, snapshots = sys.argv[1], pathlib.Path(sys.argv[2])
    original_stat = pathlib.Path.stat

    def stat(self, *args, **kwargs):
        if self.suffix == ".maska":  # the notebook is about to print this archive's size
            snapshots.joinpath(self.name).write_bytes(open(self, "rb").read())
        return original_stat(self, *args, **kwargs)

    pathlib.Path.stat = stat
    runpy.run_path(notebook, run_name="__main__")
    """
)


@pytest.fixture(scope="module")
def notebook_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    if not (NOTEBOOK.is_file() and CASE.is_dir()):
        pytest.skip(f"the MedMask notebook or its data is not present under {SHARED}")
    scratch = tmp_path_factory.mktemp("notebook")
    (scratch / "s0000").symlink_to(CASE, target_is_directory=True)
    snapshots = scratch / "snapshots"
    snapshots.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", HARNESS, str(NOTEBOOK), str(snapshots)],
        cwd=scratch,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, result.stderr, snapshots


def source_arrays() -> dict[str, np.ndarray]:
    return {
        f.name.removesuffix(".nii.gz"): np.asarray(nib.load(f).dataobj)
        for f in sorted(CASE.glob("*.nii.gz"))
    }


def first_shape(arrays: dict[str, np.ndarray]) -> tuple[int, ...]:
    return next(iter(arrays.values())).shape


def test_the_notebook_prints_every_line(notebook_run: tuple[str, str, Path]) -> None:
    out, err, _ = notebook_run
    expected = [
        r"数据: 117 个器官文件",
        r"图像: \(294, 192, 179\) @ 1\.5mm",
        r"传统总大小: 5\.12 MB",
        r"方式一：创建独立掩膜归档\.\.\.",
        r"方式二：创建合并掩膜归档\.\.\.",
        r"创建时间: 方式一 [\d.]+s, 方式二 [\d.]+s",
        r"文件大小: 方式一 \d+KB, 方式二 \d+KB",
        r"压缩比: 方式一 [\d.]+:1, 方式二 [\d.]+:1",
        r"读取 117 个器官:",
        r"传统方式: [\d.]+s",
        r"方式1 \(独立掩膜\): [\d.]+s \(加速 [\d.]+x\)",
        r"方式2 \(合并掩膜\): [\d.]+s \(加速 [\d.]+x\)",
        r"处理 24 个肋骨文件\.\.\.",
        r"肋骨归档: 27 个掩膜, \d+KB",
    ]
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == len(expected), out
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    # the old names it uses are kept, each said once with the new one
    assert err.count("Space.from_nifty is kept") == 1
    assert err.count("shape is the Space's shape reversed") == 1


def test_each_archive_is_complete_when_its_size_is_printed(
    notebook_run: tuple[str, str, Path],
) -> None:
    out, _, snapshots = notebook_run
    arrays = source_arrays()
    printed = dict(
        zip(
            ("organs_individual.maska", "organs_combined.maska"),
            map(int, re.search(r"方式一 (\d+)KB, 方式二 (\d+)KB", out).groups()),  # type: ignore[union-attr]
            strict=True,
        )
    )
    printed["ribs_archive.maska"] = int(re.search(r"个掩膜, (\d+)KB", out).group(1))  # type: ignore[union-attr]
    for name, kb in printed.items():
        snapshot = snapshots / name
        assert round(snapshot.stat().st_size / 1024) == kb, name
        assert kb < MEDMASK_KB[name], (name, kb)  # smaller than MedMask's figure
    with MaskArchive(snapshots / "organs_individual.maska") as archive:
        assert archive.all_names() == list(arrays)
        for organ, arr in arrays.items():
            assert np.array_equal(archive.load_mask(organ).data, arr), organ
    with MaskArchive(snapshots / "organs_combined.maska") as archive:
        combined = archive.load_mask("all_organs_combined")
        assert combined.mapping.to_dict() == {organ: i for i, organ in enumerate(arrays, 1)}
        expected = np.zeros(first_shape(arrays), np.uint8)
        for label, arr in enumerate(arrays.values(), start=1):
            expected[arr > 0] = label  # add_label paints over: the later organ keeps a voxel
        assert np.array_equal(combined.data, expected)
    ribs = [n for n in arrays if n.startswith("rib_")]
    with MaskArchive(snapshots / "ribs_archive.maska") as archive:
        names = archive.all_names()
        assert names[: len(ribs)] == ribs and len(names) == 27
        everything = archive.load_mask("all_ribs").data > 0
        assert np.array_equal(everything, np.any([arrays[r] > 0 for r in ribs], axis=0))


def test_the_notebooks_masks_unpack_to_the_source_geometry(
    notebook_run: tuple[str, str, Path],
) -> None:
    """Its Space came reversed (MedMask's convention): the masks must still sit where the
    source files do, not be mirrored or transposed."""
    _, _, snapshots = notebook_run
    files = sorted(CASE.glob("*.nii.gz"))
    first = nib.load(files[0])
    with MaskArchive(snapshots / "organs_individual.maska") as archive:
        for path in files:
            organ = path.name.removesuffix(".nii.gz")
            image = archive.load_mask(organ).to_nifti()
            assert image.shape == first.shape
            assert np.allclose(image.affine, first.affine, rtol=0, atol=1e-9), organ
            # s0000's files themselves differ from the first by float noise (1.5e-4)
            assert np.allclose(image.affine, nib.load(path).affine, rtol=0, atol=1e-3), organ
