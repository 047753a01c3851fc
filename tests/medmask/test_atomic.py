"""Files written whole or not at all, on a disk that fills up, and inputs that are not masks.

A full disk is made real with a file-size limit (RLIMIT_FSIZE) in a child process: the
kernel refuses writes past it as it would on a full disk (EFBIG instead of ENOSPC).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from spacetransformer import Space

from medmask import FormatError, MaskArchive, OutputExistsError, SegmentationMask, save_mask
from medmask.cli import main
from medmask.files.atomic import atomic_path, write_atomic

SPACE = Space(shape=(40, 40, 40))

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")

FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    from medmask.cli import main
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
    sys.exit(main(sys.argv[2:]))
    """
)


def masks() -> dict[str, np.ndarray]:
    """Small blobs (tiny .nii.gz files) and noise (files of several KB), in turns."""
    rng = np.random.default_rng(7)
    out = {}
    for i in range(6):
        arr = np.zeros((40, 40, 40), np.uint8)
        if i % 2:
            arr[:] = rng.random((40, 40, 40)) < 0.5
        else:
            arr[5 + i : 12 + i, 5:15, 5:15] = 1
        out[f"m{i}"] = arr
    return out


def archive_of(path: Path) -> dict[str, np.ndarray]:
    arrays = masks()
    with MaskArchive(path, "w", space=SPACE) as archive:
        for name, arr in arrays.items():
            archive.add_mask(SegmentationMask(arr, {name: 1}, SPACE), name)
    return arrays


def run_with_disk_limit(limit: int, *argv: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", FULL_DISK, str(limit), *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_unpack_on_a_full_disk_leaves_nothing_behind(tmp_path: Path) -> None:
    arrays = archive_of(tmp_path / "a.mska")
    out = tmp_path / "out"
    result = run_with_disk_limit(8_000, "unpack", tmp_path / "a.mska", "-o", out)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(out / "m1.nii.gz") in lines[0]  # the first noise file does not fit
    assert not out.exists()  # m0 written, then taken back with the folder: all or nothing
    # into a folder that was there: it stays, empty (no partial file, no temporary)
    out.mkdir()
    result = run_with_disk_limit(8_000, "unpack", tmp_path / "a.mska", "-o", out)
    assert result.returncode == 1
    assert list(out.iterdir()) == []
    result = run_with_disk_limit(10**8, "unpack", tmp_path / "a.mska", "-o", out)
    assert np.array_equal(np.asarray(nib.load(out / "m0.nii.gz").dataobj), arrays["m0"])


def test_an_add_on_a_full_disk_names_the_archive_and_keeps_the_last_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.mska"
    arrays = archive_of(path)
    noise = SegmentationMask(arrays["m1"][::-1].copy(), {"more": 1}, SPACE)
    save_mask(noise, tmp_path / "more.msk")
    limit = path.stat().st_size + 500  # the new blob does not fit
    code = textwrap.dedent(
        f"""
        import resource, signal
        from medmask import MaskArchive, load_mask
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        mask = load_mask({str(tmp_path / "more.msk")!r})
        archive = MaskArchive({str(path)!r}, "a")
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))
        try:
            archive.add_mask(mask, "more")
        except OSError as err:
            print("error:", err.filename, "|", err.strerror)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert f"error: {path} | commit failed" in result.stdout, result.stdout + result.stderr
    assert "keeps its previous commit" in result.stdout
    with MaskArchive(path) as archive:
        assert archive.all_names() == list(arrays)
        assert np.array_equal(archive.load_mask("m5").data, arrays["m5"])


def test_atomic_writes_replace_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "t.bin"
    write_atomic(target, b"first")
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        temp.write_bytes(b"half")
        raise RuntimeError("stopped")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.bin"]
    with pytest.raises(OSError) as caught:
        write_atomic(tmp_path / "missing" / "t.bin", b"x")
    assert caught.value.filename == str(tmp_path / "missing" / "t.bin")
    # an error about another file (a source that is missing) names that file, not the
    # target: "t.bin: No such file or directory" would send the user looking in vain
    with pytest.raises(FileNotFoundError) as caught, atomic_path(target) as temp:
        temp.write_bytes((tmp_path / "source.nii.gz").read_bytes())
    assert caught.value.filename == str(tmp_path / "source.nii.gz")
    assert target.read_bytes() == b"first"
    with pytest.raises(OSError) as caught, atomic_path(target) as temp:  # the temporary's
        raise OSError(28, "No space left on device", str(temp))
    assert caught.value.filename == str(target) and caught.value.errno == 28


def test_existing_outputs_say_how_to_replace_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive_of(tmp_path / "a.mska")
    (tmp_path / "b.mska").write_bytes(b"")
    from medmask.files.archive import convert_legacy_archive

    with pytest.raises(OutputExistsError, match=r"b\.mska exists; pass overwrite=True"):
        convert_legacy_archive(tmp_path / "a.mska", tmp_path / "b.mska", overwrite=False)
    assert main(["pack", str(tmp_path / "a.mska"), "-o", str(tmp_path / "b.mska")]) == 1
    err = capsys.readouterr().err
    assert "b.mska exists; pass --overwrite to replace it" in err and "overwrite=True" not in err


def test_inputs_that_are_not_masks_get_one_format_error(tmp_path: Path) -> None:
    folder = tmp_path / "x.mska"
    folder.mkdir()
    for mode in ("r", "a", "w"):
        with pytest.raises(FormatError, match=r"x\.mska: is a folder, not an archive file"):
            MaskArchive(folder, mode)  # type: ignore[arg-type]
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), sheared), tmp_path / "s.nii.gz")
    with pytest.raises(FormatError, match=r"s\.nii\.gz: its axes are not perpendicular"):
        SegmentationMask.from_nifti(tmp_path / "s.nii.gz")
    volume = np.zeros((4, 5, 6, 1), np.uint8)
    volume[1, 2, 3, 0] = 1
    nib.save(nib.Nifti1Image(volume, np.diag([2.0, 2, 2, 1])), tmp_path / "v.nii.gz")
    mask = SegmentationMask.from_nifti(tmp_path / "v.nii.gz")  # (X, Y, Z, 1): one volume
    assert mask.shape == (4, 5, 6) and mask.data[1, 2, 3] == 1
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 2), np.uint8), np.eye(4)), tmp_path / "t.nii.gz")
    with pytest.raises(FormatError, match=r"t\.nii\.gz: a mask must be 3-D .* \(4, 5, 6, 2\)"):
        SegmentationMask.from_nifti(tmp_path / "t.nii.gz")


def run_with_umask(umask: str, *argv: str | Path) -> None:
    """The command line run in this process under ``umask`` (restored after)."""
    previous = os.umask(int(umask, 8))
    try:
        code = main([str(a) for a in argv])
    finally:
        os.umask(previous)
    assert code == 0


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize(("umask", "expected"), [("022", 0o644), ("027", 0o640), ("077", 0o600)])
def test_written_files_honour_the_umask_and_replaced_files_keep_their_mode(
    tmp_path: Path, umask: str, expected: int
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, array in list(masks().items())[:2]:
        nib.save(nib.Nifti1Image(array, np.eye(4)), folder / f"{name}.nii.gz")
    archive, out, seg = tmp_path / "a.mska", tmp_path / "out", tmp_path / "a.seg.nrrd"
    run_with_umask(umask, "pack", folder, "-o", archive)
    run_with_umask(umask, "unpack", archive, "-o", out)
    run_with_umask(umask, "export-slicer", archive, "-o", seg)
    written = [archive, seg, *sorted(out.glob("*.nii.gz"))]
    assert len(written) == 4
    assert {p.name: mode(p) for p in written} == {p.name: expected for p in written}
    # replacing a file keeps the mode its owner gave it, whatever the umask
    for path in written:
        path.chmod(0o604)
    run_with_umask(umask, "pack", folder, "-o", archive, "--overwrite")
    run_with_umask(umask, "unpack", archive, "-o", out, "--overwrite")
    run_with_umask(umask, "export-slicer", archive, "-o", seg, "--overwrite")
    assert {p.name: mode(p) for p in written} == {p.name: 0o604 for p in written}
