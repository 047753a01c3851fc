"""The ``medmask`` command through ``main([...])``: every subcommand, good and bad input.

Exit codes: 0 ok, 1 damaged or failed input, 2 usage error; errors are one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medmask import MaskArchive
from medmask.cli import main
from medmask.cli.common import columns
from medmask.format import mska as fmt
from medmask.ops import fonts
from medmask.sample import MaskSample

LEGACY = Path(__file__).resolve().parents[1] / "data" / "medmask_0_1_3" / "organs.mska"


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("medmask: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def truth(mask_sample: MaskSample) -> dict[str, object]:
    return json.loads(mask_sample.truth_path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, mask_sample: MaskSample) -> Path:
    target = tmp_path_factory.mktemp("cli") / "organs.mska"
    argv = [
        "pack",
        str(mask_sample.masks_dir),
        "-o",
        str(target),
        "--group",
        "ribs_left=rib_left_*",
    ]
    assert main(argv) == 0
    return target


def test_pack_reports_what_it_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mask_sample: MaskSample, truth: dict
) -> None:
    target = tmp_path / "a.mska"
    code, out, _ = run(capsys, "pack", mask_sample.masks_dir, "-o", target, "--level", 3)
    assert code == 0
    assert f"{len(truth['labels'])} masks ({len(truth['empty'])} empty)" in out
    names = MaskArchive(target).all_names()
    assert set(names) == set(truth["labels"])
    assert names.index("rib_left_2") < names.index("rib_left_10")  # natural file order
    code, _, err = run(capsys, "pack", mask_sample.masks_dir, "-o", target)
    assert code == 1
    assert "exists" in one_line_error(err)
    code, out, _ = run(capsys, "pack", mask_sample.multilabel_path, "-o", target, "--overwrite")
    assert code == 0
    assert set(MaskArchive(target).all_names()) == set(truth["labels"])


def test_pack_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mask_sample: MaskSample
) -> None:
    for argv in (
        ["pack", mask_sample.masks_dir, "-o", tmp_path / "x.mska", "--level", 30],
        ["pack", mask_sample.masks_dir, "-o", tmp_path / "x.mska", "--group", "ribs"],
        ["pack", mask_sample.masks_dir],  # no -o
        ["no-such-command"],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        assert "Traceback" not in err
    assert not (tmp_path / "x.mska").exists()


def test_workers_beyond_the_machine_and_quiet_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mask_sample: MaskSample
) -> None:
    """--workers took any number (500 started 500 processes, numpy and a case in each);
    -q was taken only before the command (dcm-extract takes it after)."""
    import os

    most = 4 * (os.cpu_count() or 1)
    argv = ["pack", mask_sample.masks_dir, "-o", tmp_path / "x.mska"]
    for count in (0, most + 1, 500):
        code, _, err = run(capsys, *argv, "--workers", count)
        assert code == 2
        assert (
            f"--workers: {count}: this machine has {os.cpu_count()} core(s); use 1 to {most}"
            in (one_line_error(err))
        )
    assert not (tmp_path / "x.mska").exists()
    assert run(capsys, *argv, "--workers", most, "-q")[0] == 0
    assert (
        run(capsys, "-q", "ls", tmp_path / "x.mska")[1]
        == run(capsys, "ls", tmp_path / "x.mska", "-q")[1]
    )


def test_pack_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mask_sample: MaskSample
) -> None:
    code, _, err = run(
        capsys, "pack", mask_sample.masks_dir, "-o", tmp_path / "x.mska", "--group", "g=nothing*"
    )
    assert code == 1
    assert "no mask name matches 'nothing*'" in one_line_error(err)
    broken = tmp_path / "broken"
    shutil.copytree(mask_sample.masks_dir, broken)
    (broken / "notes.txt").write_text("x", encoding="utf-8")
    code, _, err = run(capsys, "pack", broken, "-o", tmp_path / "y.mska")
    assert code == 0
    assert f"warning: {broken}: skipped notes.txt: not a NIfTI mask" in err  # never silent
    (broken / "liver.nii.gz").write_bytes(b"garbage")
    code, _, err = run(capsys, "pack", broken, "-o", tmp_path / "x.mska")
    assert code == 1
    assert "liver.nii.gz: not a readable NIfTI file" in one_line_error(err)
    code, _, err = run(capsys, "--debug", "pack", broken, "-o", tmp_path / "x.mska")
    assert code == 1
    assert "Traceback" in err
    assert not (tmp_path / "x.mska").exists()


def test_pack_many_in_parallel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mask_sample: MaskSample
) -> None:
    bad = tmp_path / "bad_case"
    bad.mkdir()
    argv = ["pack", mask_sample.masks_dir, mask_sample.multilabel_path, bad]
    code, out, err = run(capsys, *argv, "-o", tmp_path / "out", "--workers", 2, "--level", 3)
    assert code == 1
    assert "2 packed, 1 failed" in out
    assert "bad_case: no .nii or .nii.gz masks found" in err
    case = mask_sample.masks_dir.parent.name  # <case>/segmentations is named after the case
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["multilabel.mska", f"{case}.mska"]
    )


def test_a_mask_file_that_cannot_be_read_says_why_not_that_it_is_no_nifti(
    tmp_path: Path, mask_sample: MaskSample, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file the user may not read (copied from another account) or that is not a file:
    the system's reason, not "not a readable NIfTI file" (which sends one looking for
    damage in a file that is fine)."""
    from medmask.exchange.nifti import read_nifti

    folder = tmp_path / "x.nii.gz"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="Is a directory") as caught:
        read_nifti(folder)
    assert caught.value.filename == str(folder)
    if os.geteuid() == 0:
        pytest.skip("root reads any file: no unreadable mask here")
    denied = tmp_path / "denied"
    shutil.copytree(mask_sample.masks_dir, denied)
    (denied / "liver.nii.gz").chmod(0)
    code, _, err = run(capsys, "pack", denied, "-o", tmp_path / "x.mska")
    assert code == 1
    assert one_line_error(err).endswith("liver.nii.gz: Permission denied")


def test_ls_table_and_json(
    capsys: pytest.CaptureFixture[str], archive: Path, mask_sample: MaskSample, truth: dict
) -> None:
    code, out, _ = run(capsys, "ls", archive, "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == {*truth["labels"], "ribs_left"}
    for name in truth["labels"]:
        data = np.asarray(nib.load(mask_sample.masks_dir / f"{name}.nii.gz").dataobj)
        assert rows[name]["voxel_count"] == int(np.count_nonzero(data))
        if rows[name]["voxel_count"]:
            hits = np.argwhere(data)
            box = [[int(lo), int(hi) + 1] for lo, hi in zip(hits.min(0), hits.max(0), strict=True)]
            assert rows[name]["bbox"] == box
    assert rows["ribs_left"]["members"] == [f"rib_left_{i}" for i in range(1, 13)]
    code, out, _ = run(capsys, "ls", archive)
    assert code == 0
    liver = next(line for line in out.splitlines() if line.startswith("liver "))
    assert f"{rows['liver']['voxel_count']:,}" in liver
    assert "group of 12" in out
    assert out.rstrip().endswith(f"{len(rows)} masks")


def test_info(capsys: pytest.CaptureFixture[str], archive: Path, truth: dict) -> None:
    code, out, _ = run(capsys, "info", archive)
    assert code == 0
    assert "medmask archive 2.0" in out
    assert " x ".join(map(str, truth["shape"])) in out
    code, out, _ = run(capsys, "info", archive, "--json")
    info = json.loads(out)
    assert info["masks"] == len(truth["labels"])
    assert info["groups"] == 1
    assert info["file_bytes"] == archive.stat().st_size
    code, _, err = run(capsys, "info", LEGACY.with_name("expected.json"))
    assert code == 1
    assert "not a medmask archive" in one_line_error(err)
    damaged = archive.with_name("damaged-slot.mska")
    data = bytearray(archive.read_bytes())
    data[64:128] = data[0:64]  # a copy of the live superblock in the spare slot ...
    data[64 + 44] ^= 1  # ... damaged: the archive opens, `info` says so and exits 1
    damaged.write_bytes(bytes(data))
    code, out, err = run(capsys, "info", damaged)
    assert code == 1
    assert "checksums:    DAMAGED: slot B: damaged (superblock checksum mismatch)" in out
    assert "1 damaged superblock slot(s)" in err
    code, _, err = run(capsys, "ls", archive.with_name("missing.mska"))
    assert code == 1
    assert "No such file" in one_line_error(err)


def test_unpack_files_and_multilabel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], archive: Path, mask_sample: MaskSample
) -> None:
    code, _, _ = run(capsys, "unpack", archive, "-o", tmp_path / "un", "-n", "liver")
    assert code == 0
    assert [p.name for p in (tmp_path / "un").iterdir()] == ["liver.nii.gz"]
    original = nib.load(mask_sample.masks_dir / "liver.nii.gz")
    copy = nib.load(tmp_path / "un" / "liver.nii.gz")
    assert np.array_equal(np.asarray(copy.dataobj), np.asarray(original.dataobj))
    assert np.allclose(copy.affine, original.affine, atol=1e-5)
    code, _, err = run(capsys, "unpack", archive, "-o", tmp_path / "un", "-n", "nope")
    assert code == 1
    assert "no mask named 'nope'" in one_line_error(err)
    target = tmp_path / "ml.nii.gz"
    code, _, err = run(capsys, "unpack", archive, "--multilabel", target)
    assert code == 1
    assert "gallbladder/liver (22 voxels)" in one_line_error(err)
    assert not target.exists()
    code, _, err = run(capsys, "unpack", archive, "--multilabel", target, "--overlap", "first")
    assert code == 0
    assert "22 voxels of liver given to gallbladder" in err
    assert target.exists()
    for argv in (["unpack", archive], ["unpack", archive, "-o", tmp_path, "--multilabel", target]):
        assert run(capsys, *argv)[0] == 2


def test_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str], archive: Path) -> None:
    code, out, _ = run(capsys, "verify", archive, LEGACY)
    assert code == 0
    assert out.count("ok ") == 2
    damaged = tmp_path / "damaged.mska"
    data = bytearray(archive.read_bytes())
    data[fmt.DATA_START + 3] ^= 0x10
    damaged.write_bytes(bytes(data))
    code, out, err = run(capsys, "verify", archive, damaged)
    assert code == 1
    assert f"DAMAGED  {damaged}" in out
    assert "fails its checksum" in out
    assert "1 of 2 archives damaged" in err
    # a folder: every archive under it (it was "DAMAGED <folder>: is a folder")
    (tmp_path / "sub").mkdir()
    shutil.copy(archive, tmp_path / "sub" / "good.mska")
    code, out, err = run(capsys, "verify", tmp_path)
    assert code == 1
    assert out.splitlines()[0] == f"DAMAGED  {damaged}"
    assert out.splitlines()[-1].startswith(f"ok       {tmp_path / 'sub' / 'good.mska'} (")
    assert "1 of 2 archives damaged" in err
    (tmp_path / "none").mkdir()
    code, _, err = run(capsys, "verify", tmp_path / "none")
    assert code == 1 and "none: no .mska archive under this folder" in err


def test_preview(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], archive: Path, mask_sample: MaskSample
) -> None:
    target = tmp_path / "p.png"
    code, out, _ = run(capsys, "preview", archive, "-o", target, "--image", mask_sample.ct_path)
    assert code == 0
    assert out.startswith(f"{target}: ")
    with Image.open(target) as picture:
        assert picture.format == "PNG"
        assert picture.width > 300 and picture.height > 300
    code, out, _ = run(capsys, "preview", archive, "-o", target, "-n", "liver", "-n", "spleen")
    assert code == 0
    assert "2 masks shown" in out
    code, _, err = run(capsys, "preview", archive, "-o", target, "--image", archive)
    assert code == 1
    assert "not a readable NIfTI image" in one_line_error(err)


def test_preview_of_names_no_font_here_can_draw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fonts, "system_fonts", lambda letters="": iter(()))  # no CJK fonts
    (tmp_path / "masks").mkdir()
    for i, name in enumerate(("肝脏", "liver")):
        data = np.zeros((8, 8, 8), np.uint8)
        data[1 + 4 * i : 3 + 4 * i, 2:6, 2:6] = 1
        nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "masks" / f"{name}.nii.gz")
    assert run(capsys, "-q", "pack", tmp_path / "masks", "-o", tmp_path / "a.mska")[0] == 0
    code, out, _ = run(capsys, "ls", tmp_path / "a.mska")  # columns line up on a terminal
    starts = {columns(line[: line.index(" 1 ")]) for line in out.splitlines()[1:3]}
    assert starts == {columns("liver ")} and code == 0  # (肝脏 takes 4 columns, as "name")
    code, out, err = run(capsys, "preview", tmp_path / "a.mska", "-o", tmp_path / "p.png")
    assert code == 0
    assert "the legend numbers these: [2] 肝脏" in out  # (natural order: liver first)
    assert "no font here has the letters of 1 mask name(s) (肝脏): the legend numbers them" in err
    code, _, err = run(capsys, "preview", tmp_path / "a.mska", "-o", tmp_path / "p.png",
                       "--font", tmp_path / "a.mska")  # fmt: skip
    assert code == 1
    assert "a.mska: not a font file that can be read" in one_line_error(err)


def test_paths_whose_names_are_not_utf8_are_printed_as_their_bytes(tmp_path: Path) -> None:
    name = "病人".encode("gbk")  # a Chinese Windows copy's folder name, kept in GBK
    folder = os.fsdecode(os.fsencode(tmp_path) + b"/" + name)
    Path(folder).mkdir()
    data = np.zeros((4, 4, 4), np.uint8)
    data[1, 1, 1] = 1
    nib.save(nib.Nifti1Image(data, np.eye(4)), Path(folder) / "liver.nii.gz")
    done = subprocess.run(
        [sys.executable, "-m", "medmask", "-q", "pack", folder, "-o", f"{folder}.mska"],
        capture_output=True, check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},  # a UTF-8 terminal's
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(os.fsencode(folder) + b".mska: 1 masks")  # as ls prints it


def test_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new.mska"
    code, out, _ = run(capsys, "convert", LEGACY, "-o", target)
    assert code == 0
    assert "3 masks converted" in out
    with MaskArchive(LEGACY) as old, MaskArchive(target) as new:
        assert new.format_version == "2.0"
        for name in old:
            assert np.array_equal(new.load_mask(name).data, old.load_mask(name).data)
    code, _, err = run(capsys, "convert", LEGACY, "-o", target)
    assert code == 1
    assert "exists" in one_line_error(err)
    code, _, err = run(capsys, "convert", target, "-o", target, "--overwrite")
    assert code == 1
    assert "not onto the archive itself" in one_line_error(err)


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.startswith("medmask (medkit) ")
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("pack", "ls", "info", "unpack", "verify", "preview", "convert"):
        assert command in out


def test_pack_shows_a_progress_bar_on_a_terminal_only(
    tmp_path: Path,
    mask_sample: MaskSample,
    run_in_terminal: Callable[[list[str]], tuple[int, str]],
) -> None:
    argv = [sys.executable, "-m", "medmask", "pack", str(mask_sample.masks_dir)]
    argv += [str(mask_sample.multilabel_path), "--level", "3"]
    code, shown = run_in_terminal([*argv, "-o", str(tmp_path / "tty")])
    assert code == 0
    assert "packing" in shown
    piped = subprocess.run(
        [*argv, "-o", str(tmp_path / "pipe")], capture_output=True, text=True, check=True
    )
    assert "packing" not in piped.stdout + piped.stderr
    assert "2 packed, 0 failed" in piped.stdout


def test_tiny_inputs_and_wrong_picture_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tiny = np.zeros((4, 4, 4), np.uint8)
    tiny[1, 1, 1] = 1
    nib.save(nib.Nifti1Image(tiny, np.eye(4)), tmp_path / "dot.nii.gz")
    code, out, _ = run(capsys, "pack", tmp_path / "dot.nii.gz", "-o", tmp_path / "dot.mska")
    assert code == 0
    size_in, size_out = (
        (tmp_path / "dot.nii.gz").stat().st_size,
        (tmp_path / "dot.mska").stat().st_size,
    )
    expected = (
        f"{size_in / size_out:.1f}:1" if size_in >= size_out else f"1:{size_out / size_in:.1f}"
    )
    assert f"({expected})" in out and "(0:1)" not in out
    code, _, err = run(capsys, "preview", tmp_path / "dot.mska", "-o", tmp_path / "p.txt")
    assert code == 1
    assert "p.txt: a preview is a PNG picture; name it .png" in one_line_error(err)
    assert not (tmp_path / "p.txt").exists()
