"""The catalog: its rows equal what each archive's statistics() says and what nibabel and
numpy find in the NIfTI files the archives were packed from; it updates only what changed;
a damaged archive costs only its own rows; SQL over it through DuckDB."""

from __future__ import annotations

import codecs
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pyarrow.parquet as pq
import pytest

from medmask import MaskArchive
from medmask.cli import main
from medmask.errors import MedmaskError, MedmaskWarning
from medmask.format import mska as fmt
from medmask.ops.catalog import CATALOG_COLUMNS, build_catalog
from medmask.ops.pack import pack
from medmask.ops.query import query
from medmask.sample import generate_masks
from medmask.sample.generate import MASKS_DIRNAME

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "totalseg_s0000"
LEGACY = Path(__file__).resolve().parents[1] / "data" / "medmask_0_1_3"
RAS_TO_LPS = np.array([-1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three generated cases packed into archives/ (one in a sub-folder), with groups."""
    root = tmp_path_factory.mktemp("cohort")
    for seed in range(3):
        sample = generate_masks(root / f"nifti{seed}", seed=seed, shape=(40, 36, 30))
        target = root / "archives" / ("site_b" if seed == 2 else "") / f"case{seed}.mska"
        pack(sample.masks_dir, target, groups={"ribs_left": "rib_left_*"})
    return root


def test_rows_are_each_archives_statistics_and_nibabels_geometry(cohort: Path) -> None:
    out = cohort / "catalog.parquet"
    result = build_catalog(cohort / "archives", out)
    assert (result.read, result.kept, result.failures, result.decoded) == (3, 0, [], 0)
    table = pq.read_table(out)
    assert table.schema.names == list(CATALOG_COLUMNS)
    rows = table.to_pylist()
    assert [r["archive"] for r in rows][::118][:3] == [
        "case0.mska", "case1.mska", "site_b/case2.mska"
    ]  # fmt: skip
    for seed in range(3):
        archive = cohort / "archives" / ("site_b" if seed == 2 else "") / f"case{seed}.mska"
        mine = [r for r in rows if r["case_id"] == f"case{seed}"]
        with MaskArchive(archive) as opened:
            stats = opened.statistics()
            generation = opened.commit.generation  # type: ignore[union-attr]
        assert [r["mask"] for r in mine] == list(stats)
        for row in mine:
            stat = stats[row["mask"]]
            assert row["generation"] == generation
            assert row["voxel_count"] == stat.voxel_count
            assert row["volume_ml"] == pytest.approx(stat.volume_ml)
            assert row["empty"] == (stat.voxel_count == 0)
            box = None if row["bbox_i0"] is None else tuple(
                (row[f"bbox_{a}0"], row[f"bbox_{a}1"]) for a in "ijk"
            )  # fmt: skip
            assert box == stat.bbox
            if stat.centroid is None:
                assert row["centroid_x"] is None
            else:
                assert (row["centroid_i"], row["centroid_j"], row["centroid_k"]) == stat.centroid
        # against the NIfTI files themselves: nibabel's affine (RAS) and numpy's voxels
        for row in mine:
            source = cohort / f"nifti{seed}" / "segmentations" / f"{row['mask']}.nii.gz"
            if row["kind"] == "group":
                assert row["members"] and all(
                    row["mask"] in r["groups"] for r in mine if r["mask"] in row["members"]
                )
                continue
            image = nib.load(source)
            voxels = np.argwhere(np.asarray(image.dataobj) != 0)
            assert row["voxel_count"] == len(voxels)
            if not len(voxels):
                continue
            world = (image.affine[:3, :3] @ voxels.mean(axis=0) + image.affine[:3, 3]) * RAS_TO_LPS
            centroid = np.array([row["centroid_x"], row["centroid_y"], row["centroid_z"]])
            assert np.allclose(centroid, world, atol=1e-4), row["mask"]
            # the box's 8 corner voxels (the grid may be oblique: not the voxels' extent)
            low_i, high_i = voxels.min(axis=0), voxels.max(axis=0)
            box = np.array(
                [[(high_i if b >> a & 1 else low_i)[a] for a in range(3)] for b in range(8)]
            )
            corners = ((image.affine[:3, :3] @ box.T).T + image.affine[:3, 3]) * RAS_TO_LPS
            low = [row["bbox_min_x"], row["bbox_min_y"], row["bbox_min_z"]]
            high = [row["bbox_max_x"], row["bbox_max_y"], row["bbox_max_z"]]
            assert np.allclose(low, corners.min(axis=0), atol=1e-4), row["mask"]
            assert np.allclose(high, corners.max(axis=0), atol=1e-4), row["mask"]
    liver = next(r for r in rows if r["mask"] == "liver")
    assert (liver["concept_source"], liver["type_code"], liver["type_meaning"]) == (
        "name", "10200004", "Liver"
    )  # fmt: skip
    kidney = next(r for r in rows if r["mask"] == "kidney_left")
    assert kidney["modifier_meaning"] == "Left"


def test_only_new_or_changed_archives_are_read_again(cohort: Path, tmp_path: Path) -> None:
    archives = tmp_path / "archives"
    shutil.copytree(cohort / "archives", archives)
    out = tmp_path / "catalog.parquet"
    first = build_catalog(archives, out)
    before = pq.read_table(out)
    again = build_catalog(archives, out)
    assert (again.read, again.kept) == (0, 3)
    assert pq.read_table(out).equals(before)  # the same rows, in the same order
    # one archive changes, one goes, one comes
    with MaskArchive(archives / "case1.mska", "a") as opened:
        opened.remove("liver")
    (archives / "site_b" / "case2.mska").unlink()
    shutil.copy(archives / "case0.mska", archives / "case9.mska")
    third = build_catalog(archives, out)
    assert (third.read, third.kept, third.dropped) == (2, 1, 1)
    table = pq.read_table(out).to_pylist()
    assert sorted({r["archive"] for r in table}) == ["case0.mska", "case1.mska", "case9.mska"]
    assert not [r for r in table if r["case_id"] == "case1" and r["mask"] == "liver"]
    assert first.rows - 118 - 1 + 118 == third.rows
    rebuilt = build_catalog(archives, tmp_path / "fresh.parquet")
    assert pq.read_table(tmp_path / "fresh.parquet").equals(pq.read_table(out))
    assert rebuilt.read == 3


def rewrite_index(path: Path, change: object) -> None:
    """Commit ``change(entries)`` as a new index, as a writer of the spec could."""
    data = path.read_bytes()
    found = fmt.choose_superblock(data[: fmt.DATA_START], len(data), "x")
    block, slot = found  # type: ignore[misc]
    entries = fmt.unpack_index(data[block.index_offset : block.data_end], block.index_crc, "x")
    change(entries)  # type: ignore[operator]
    index = fmt.pack_index(entries)
    forged = bytearray(data[: block.index_offset] + index)
    new = fmt.Superblock(
        block.generation + 1, block.index_offset, len(index), len(forged), zlib.crc32(index)
    )
    start = fmt.SLOT_OFFSETS[1 - slot]
    forged[start : start + fmt.SLOT_SIZE] = fmt.pack_superblock(new)
    old = fmt.SLOT_OFFSETS[slot]
    forged[old : old + fmt.SLOT_SIZE] = bytes(fmt.SLOT_SIZE)
    path.write_bytes(bytes(forged))


def test_older_indexes_are_decoded_and_damaged_ones_reported(cohort: Path, tmp_path: Path) -> None:
    archives = tmp_path / "archives"
    shutil.copytree(cohort / "archives", archives)
    reference = build_catalog(archives, tmp_path / "reference.parquet")
    assert reference.decoded == 0

    def drop_sums(entries: list[dict[str, object]]) -> None:
        for entry in entries:
            entry.pop("voxel_sums", None)

    rewrite_index(archives / "case0.mska", drop_sums)  # as written before voxel_sums

    def bad_count(entries: list[dict[str, object]]) -> None:
        entries[3]["count"] = "many"

    rewrite_index(archives / "case1.mska", bad_count)
    shutil.copy(LEGACY / "organs.mska", archives / "legacy.mska")  # medmask 0.1.3's own
    result = build_catalog(archives, tmp_path / "c.parquet", incremental=False)
    assert [key for key, _ in result.failures] == ["case1.mska"]
    assert "case1.mska" in result.failures[0][1] and "malformed" in result.failures[0][1]
    assert result.read == 3 and result.decoded > 0
    rows = pq.read_table(tmp_path / "c.parquet").to_pylist()
    old = {r["mask"]: r for r in pq.read_table(tmp_path / "reference.parquet").to_pylist()
           if r["case_id"] == "case0"}  # fmt: skip
    for row in (r for r in rows if r["case_id"] == "case0"):
        for column in ("centroid_x", "centroid_y", "centroid_z", "voxel_count", "bbox_max_z"):
            expected = old[row["mask"]][column]
            assert row[column] == (expected if expected is None else pytest.approx(expected))
    legacy = [r for r in rows if r["case_id"] == "legacy"]
    with MaskArchive(archives / "legacy.mska") as opened:
        assert [r["mask"] for r in legacy] == list(opened)
        for row in legacy:
            mask = np.asarray(opened.load_mask(row["mask"]).data)
            assert row["voxel_count"] == int(np.count_nonzero(mask))
            if row["voxel_count"]:
                mean = np.argwhere(mask).mean(axis=0)
                assert row["centroid_i"] == pytest.approx(mean[0])
    # the command line: the failure named, the others catalogued, exit 1
    assert main(["catalog", str(archives), "-o", str(tmp_path / "d.parquet")]) == 1
    assert main(["catalog", str(tmp_path / "nowhere"), "-o", str(tmp_path / "e.parquet")]) == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_link_to_nothing_or_a_pipe_among_the_archives_costs_only_itself(
    cohort: Path, tmp_path: Path
) -> None:
    """A link to nothing named like an archive failed the whole catalog ("No such file or
    directory", nothing written); a named pipe so named hung it (and medmask verify,
    info): opening a pipe to read waits for a writer."""
    archives = tmp_path / "archives"
    shutil.copytree(cohort / "archives", archives)
    (archives / "moved.mska").symlink_to(tmp_path / "elsewhere" / "moved.mska")
    os.mkfifo(archives / "pipe.mska")
    command = [sys.executable, "-m", "medmask"]
    done = subprocess.run(
        [*command, "catalog", str(archives), "-o", str(tmp_path / "c.parquet")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip (a hang is the defect: the timeout only ends the test)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"medmask: warning: moved.mska: not catalogued: {archives / 'moved.mska'}: a link to "
        f"nothing ({tmp_path / 'elsewhere' / 'moved.mska'}): not read",
        f"medmask: warning: pipe.mska: not catalogued: {archives / 'pipe.mska'}: is a named "
        "pipe (FIFO), not an archive file",
    ]
    build_catalog(cohort / "archives", tmp_path / "reference.parquet")
    assert pq.read_table(tmp_path / "c.parquet").equals(
        pq.read_table(tmp_path / "reference.parquet")
    )  # every other archive's rows
    done = subprocess.run(
        [*command, "verify", str(archives)], capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "is a named pipe (FIFO), not an archive file" in done.stdout
    with pytest.raises(MedmaskError, match="is a named pipe"):
        MaskArchive(archives / "pipe.mska")
    with pytest.raises(MedmaskError, match="is a named pipe"):
        MaskArchive(archives / "pipe.mska", "a")


def test_sql_through_python_and_the_command_line(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "catalog.parquet"
    build_catalog(cohort / "archives", out)
    frame = pq.read_table(out).to_pandas()
    sql = (
        "SELECT mask, count(*) AS cases, sum(volume_ml) AS ml FROM masks "
        "WHERE NOT empty AND kind = 'mask' GROUP BY mask ORDER BY ml DESC, mask"
    )
    answer = query(out, sql).to_pylist()
    present = frame[~frame["empty"] & (frame["kind"] == "mask")]
    expected = present.groupby("mask")["volume_ml"].agg(["count", "sum"])
    assert len(answer) == len(expected)
    for row in answer:
        assert row["cases"] == expected.loc[row["mask"], "count"]
        assert row["ml"] == pytest.approx(expected.loc[row["mask"], "sum"])
    # which cases lack a left kidney: none here, all three have one
    lacking = query(out, "SELECT case_id FROM masks WHERE mask='kidney_left' AND empty")
    assert lacking.num_rows == int((frame[frame["mask"] == "kidney_left"]["empty"]).sum())
    capsys.readouterr()
    assert (
        main(["query", str(out), "SELECT case_id, count(*) n FROM masks GROUP BY 1 ORDER BY 1"])
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["case_id", "n"] and printed[1].split() == ["case0", "118"]
    for suffix in ("csv", "parquet", "json"):
        target = tmp_path / f"r.{suffix}"
        assert main(["query", str(out), sql, "-o", str(target)]) == 0
        if suffix == "parquet":
            back = pq.read_table(target).to_pylist()
        elif suffix == "json":
            back = [json.loads(line) for line in target.read_text("utf-8").splitlines()]
        else:
            import csv

            with target.open(encoding="utf-8") as stream:
                back = [
                    {"mask": r["mask"], "cases": int(r["cases"]), "ml": float(r["ml"])}
                    for r in csv.DictReader(stream)
                ]
        assert [r["mask"] for r in back] == [r["mask"] for r in answer]
        assert [r["ml"] for r in back] == pytest.approx([r["ml"] for r in answer])
    # --excel: the same CSV after a UTF-8 byte order mark (Excel then reads it as UTF-8)
    excel = tmp_path / "excel.csv"
    named = "SELECT '肝脏' AS organ, mask FROM masks ORDER BY mask LIMIT 3"
    assert main(["query", str(out), named, "-o", str(tmp_path / "plain.csv")]) == 0
    assert main(["query", str(out), named, "-o", str(excel), "--excel"]) == 0
    assert excel.read_bytes() == codecs.BOM_UTF8 + (tmp_path / "plain.csv").read_bytes()
    assert excel.read_text(encoding="utf-8-sig").splitlines()[1].startswith("肝脏,")
    import duckdb

    read = duckdb.sql(f"SELECT * FROM read_csv('{excel}')").fetchall()
    assert read == duckdb.sql(f"SELECT * FROM read_csv('{tmp_path / 'plain.csv'}')").fetchall()
    capsys.readouterr()
    assert main(["query", str(out), named, "-o", str(tmp_path / "x.parquet"), "--excel"]) == 2
    assert "--excel: give -o FILE.csv" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["query", str(out), "SELEC nonsense"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "query:" in err
    # a mistyped column or view: DuckDB's offer of names is kept on the one line
    assert main(["query", str(out), "SELECT voxels FROM masks"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and '(Candidate bindings: "voxel_count"' in err
    assert main(["query", str(out), "SELECT * FROM mask"]) == 1
    assert '(Did you mean "masks"?)' in capsys.readouterr().err
    assert main(["query", str(tmp_path / "none.parquet"), "SELECT 1"]) == 1
    assert main(["query", str(out), "SELECT 1", "-o", str(tmp_path / "x.txt")]) == 2
    with pytest.raises(MedmaskError, match="no such catalog"):
        query(tmp_path / "none.parquet", "SELECT 1")
    # only questions: a COPY, a DROP or two statements are refused, the catalog untouched
    capsys.readouterr()
    copy = tmp_path / "copy.csv"
    for statement in (f"COPY masks TO '{copy}'", "DROP VIEW masks", "SELECT 1; SELECT 2"):
        assert main(["query", str(out), statement]) == 1
        assert "the SQL must be one question" in capsys.readouterr().err
        with pytest.raises(MedmaskError, match="one question"):
            query(out, statement)
    assert not copy.exists()
    # offline: a remote path is refused, DuckDB never fetches an extension (httpfs) for it
    for remote in ("https://example.com/x.parquet", "s3://bucket/x.parquet"):
        with pytest.raises(MedmaskError, match="requires the extension httpfs to be loaded"):
            query(out, f"SELECT * FROM read_parquet('{remote}')")


def test_a_question_too_large_for_memory_spills_outside_the_working_folder(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB's default spill folder is ``.tmp`` in the working folder, which fails where that
    folder is read-only (a cluster node's home) and leaves files beside the user's."""
    import duckdb

    from medmask.ops.query import connect

    out = tmp_path / "catalog.parquet"
    build_catalog(cohort / "archives", out)
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    # a sort of 3,000,000 hashes (~120 MB) under a memory limit of 30 MB spills: a plain
    # DuckDB connection spills into .tmp
    spills = (
        "SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) AS m FROM range(3000000) t(i) ORDER BY m)"
    )
    plain = duckdb.connect(config={"memory_limit": "30MB", "threads": 1})
    assert plain.execute(spills).fetchone() == (3_000_000,)
    assert (here / ".tmp").exists()  # (removed when the connection closes)
    plain.close()
    with connect(out) as connection:
        connection.execute("SET memory_limit = '30MB'; SET threads = 1")
        spill = Path(connection.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        assert spill.is_absolute() and here not in spill.parents
        assert connection.execute(spills).fetchone() == (3_000_000,)
        assert connection.execute("SELECT count(*) FROM masks").fetchone()[0] > 0
    assert list(here.iterdir()) == []
    assert not spill.parent.exists()  # the spill folder goes with the connection


FULL_DISK_QUERY = """
import resource, signal, sys
from medmask.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (300, resource.RLIM_INFINITY))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_a_full_disk_under_a_query_answer_is_one_line_naming_it(
    cohort: Path, tmp_path: Path, suffix: str
) -> None:
    """`query -o` onto a full disk (a file-size limit: EFBIG for ENOSPC) said DuckDB's
    "IO Error: Async write failed for range [offset=0, size=...]: {"exception_type": ...}"
    naming the temporary file; now the file asked for and the system's words."""
    catalog = tmp_path / "catalog.parquet"
    build_catalog(cohort / "archives", catalog)
    answer = tmp_path / f"answer{suffix}"
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_QUERY, "query", str(catalog),
         "SELECT * FROM masks", "-o", str(answer)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == f"medmask: error: {answer}: File too large\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.parquet"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data")
def test_s0000_rows_are_its_statistics(tmp_path: Path) -> None:
    with pytest.warns(MedmaskWarning, match="float noise"):  # s0000's own files
        pack(SHARED, tmp_path / "a" / "s0000.mska")
    build_catalog(tmp_path / "a", tmp_path / "c.parquet")
    rows = pq.read_table(tmp_path / "c.parquet").to_pylist()
    with MaskArchive(tmp_path / "a" / "s0000.mska") as opened:
        stats = opened.statistics()
    assert len(rows) == 117 == len(stats)
    for row in rows:
        stat = stats[row["mask"]]
        assert row["voxel_count"] == stat.voxel_count
        if stat.centroid is not None:
            assert (row["centroid_i"], row["centroid_j"], row["centroid_k"]) == stat.centroid
    assert (tmp_path / "c.parquet").stat().st_size > 0


def test_the_bulk_reading_gives_the_validated_readings_rows(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most archives are read by parsing all their index blocks at once (pyarrow); the
    rows must be those of reading each through MaskArchive, bit for bit."""
    from medmask.ops import catalog

    archives = tmp_path / "archives"
    shutil.copytree(cohort / "archives", archives)
    with MaskArchive(archives / "case0.mska", "a") as opened:  # a label map: validated path
        labels = np.zeros(opened.space.shape, np.uint8)  # type: ignore[union-attr]
        labels[1:4, 2:5, 3:6], labels[10:12, 10:13, 5:7] = 3, 7
        from medmask import SegmentationMask

        opened.add_mask(SegmentationMask(labels, {"a": 3, "b": 7}, opened.space), "pair")
    bulk = build_catalog(archives, tmp_path / "bulk.parquet")
    monkeypatch.setattr(catalog, "takes", lambda commit: False)
    validated = build_catalog(archives, tmp_path / "validated.parquet")
    assert bulk.read == validated.read == 3
    one, other = (
        pq.read_table(tmp_path / "bulk.parquet"),
        pq.read_table(tmp_path / "validated.parquet"),
    )
    for name in CATALOG_COLUMNS:
        assert one[name].equals(other[name]), name
    pair = [r for r in one.to_pylist() if r["mask"] == "pair"]
    assert pair[0]["labels"] == [3, 7] and pair[0]["voxel_count"] == 27 + 12


def test_the_image_series_is_recorded_and_joins_dcm_extracts_series_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pack --series-uid / --source record the series in the archive (docs/mask-format.md,
    image_series); the catalog carries it, and DuckDB joins it to dcm-extract's own
    all_series table of that CT series."""
    import pydicom

    from dcm_extractor.cli import main as dcm_extract

    sample = generate_masks(tmp_path / "sample", shape=(40, 36, 30), ct_series=True)
    ct = tmp_path / "sample" / "ct_dicom"
    first = pydicom.dcmread(sorted(ct.glob("*.dcm"))[0], stop_before_pixels=True)
    uid = str(first.SeriesInstanceUID)
    archives = tmp_path / "archives"
    assert main(["pack", str(sample.masks_dir), "-o", str(archives / "a.mska"),
                 "--series-uid", uid]) == 0  # fmt: skip
    seg = tmp_path / "seg.dcm"
    assert main(["export-seg", str(archives / "a.mska"), "--source", str(ct), "-o", str(seg)]) == 0
    assert main(["pack", str(seg), "-o", str(archives / "b.mska"), "--source", str(ct)]) == 0
    assert main(["pack", str(sample.masks_dir), "-o", str(archives / "c.mska"),
                 "--series-uid", "1.2.x"]) == 1  # fmt: skip
    assert "not a DICOM UID" in capsys.readouterr().err
    with MaskArchive(archives / "a.mska") as opened:
        assert opened.image_series == {"SeriesInstanceUID": uid}
    with MaskArchive(archives / "b.mska") as opened:
        assert opened.image_series == {
            "SeriesInstanceUID": uid,
            "FrameOfReferenceUID": str(first.FrameOfReferenceUID),
            "StudyInstanceUID": str(first.StudyInstanceUID),
        }
    with MaskArchive(archives / "a.mska", "a") as opened:  # kept through later commits
        opened.remove("liver")
        opened.compact()
    with MaskArchive(archives / "a.mska") as opened:
        assert opened.image_series == {"SeriesInstanceUID": uid}
    catalog = tmp_path / "catalog.parquet"
    build_catalog(archives, catalog)
    rows = pq.read_table(catalog).to_pylist()
    assert {r["SeriesInstanceUID"] for r in rows} == {uid}
    assert {r["FrameOfReferenceUID"] for r in rows} == {None, str(first.FrameOfReferenceUID)}
    # dcm-extract's series table of the same CT, joined with DuckDB
    cases = tmp_path / "dicom"
    shutil.copytree(ct, cases / "case1")
    out = tmp_path / "tables"
    code = dcm_extract(["-d", str(cases), "-o", str(out), "--series", "--format", "parquet",
                        "--log", str(tmp_path / "log"), "-q"])  # fmt: skip
    assert code == 0
    joined = query(
        catalog,
        "SELECT m.case_id, count(*) AS masks, any_value(s.SeriesInstanceUID) AS series "
        f"FROM masks m JOIN read_parquet('{out / 'all_series.parquet'}') s "
        "USING (SeriesInstanceUID) GROUP BY m.case_id ORDER BY m.case_id",
    ).to_pylist()
    assert [(r["case_id"], r["series"]) for r in joined] == [("a", uid), ("b", uid)]


def test_a_malformed_image_series_is_named(tmp_path: Path) -> None:
    sample = generate_masks(tmp_path / "sample", shape=(40, 36, 30))
    pack(sample.masks_dir, tmp_path / "a" / "x.mska")

    data = (tmp_path / "a" / "x.mska").read_bytes()
    block, slot = fmt.choose_superblock(data[: fmt.DATA_START], len(data), "x")  # type: ignore[misc]
    entries = fmt.unpack_index(data[block.index_offset : block.data_end], block.index_crc, "x")
    index = fmt.pack_index_json(
        [fmt.entry_json(e) for e in entries], {"FrameOfReferenceUID": "1.2"}
    )
    forged = bytearray(data[: block.index_offset] + index)
    new = fmt.Superblock(
        block.generation + 1, block.index_offset, len(index), len(forged), zlib.crc32(index)
    )
    forged[fmt.SLOT_OFFSETS[1 - slot] : fmt.SLOT_OFFSETS[1 - slot] + fmt.SLOT_SIZE] = (
        fmt.pack_superblock(new)
    )
    forged[fmt.SLOT_OFFSETS[slot] : fmt.SLOT_OFFSETS[slot] + fmt.SLOT_SIZE] = bytes(fmt.SLOT_SIZE)
    (tmp_path / "a" / "x.mska").write_bytes(bytes(forged))
    with pytest.raises(MedmaskError, match=r"x\.mska: the index's image_series is malformed"):
        MaskArchive(tmp_path / "a" / "x.mska")
    result = build_catalog(tmp_path / "a", tmp_path / "c.parquet")
    assert [key for key, _ in result.failures] == ["x.mska"]


def test_on_a_dask_local_cluster_the_catalog_is_the_same(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read on two real workers, one archive per task: the same rows in the same order,
    the same failures, the same incremental update - bulk, validated and 0.1.3 archives."""
    distributed = pytest.importorskip("distributed", reason="Dask is in the dask extra")
    archives = tmp_path / "archives"
    shutil.copytree(cohort / "archives", archives)
    shutil.copy(LEGACY / "organs.mska", archives / "legacy.mska")  # the validated path
    rewrite_index(archives / "case1.mska", lambda entries: entries[3].update(count="many"))
    here = build_catalog(archives, tmp_path / "here.parquet")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:  # fmt: skip (two threads a worker, as `dask worker` runs by default)
        there = build_catalog(
            archives, tmp_path / "there.parquet", scheduler=cluster.scheduler_address
        )
        assert (there.read, there.rows, there.failures) == (here.read, here.rows, here.failures)
        assert pq.read_table(tmp_path / "there.parquet").equals(
            pq.read_table(tmp_path / "here.parquet")
        )
        # one archive changed: only it is read again, on the cluster as here
        pack(cohort / "nifti0" / MASKS_DIRNAME, archives / "case0.mska", overwrite=True,
             groups={"ribs_right": "rib_right_*"})  # fmt: skip
        for name in ("here", "there"):
            shutil.copy(tmp_path / f"{name}.parquet", tmp_path / f"{name}-2.parquet")
        again_here = build_catalog(archives, tmp_path / "here-2.parquet")
        argv = ["catalog", str(archives), "-o", str(tmp_path / "there-2.parquet"),
                "--scheduler", cluster.scheduler_address]  # fmt: skip
        assert main(argv) == 1  # case1's index is still malformed: named, exit 1
        assert "1 read, 2 unchanged, 1 failed" in capsys.readouterr().out  # case1 again
        assert again_here.read == 1
        assert pq.read_table(tmp_path / "there-2.parquet").equals(
            pq.read_table(tmp_path / "here-2.parquet")
        )


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_on_dask_an_archive_whose_worker_dies_costs_only_itself(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Dask a part whose workers died (KilledWorker: out of memory, a crash in a C
    library) ended the whole catalog with that error, nothing written. Its archives are
    read again one a task; only the archive that kills its worker each time is not
    catalogued, named. (The worker dies for real: a ``sitecustomize`` on its PYTHONPATH
    kills any process opening case1.mska - test_cohort's hook.)"""
    distributed = pytest.importorskip("distributed", reason="Dask is in the dask extra")
    import dask
    from test_cohort import DYING

    archives = tmp_path / "archives"
    shutil.copytree(cohort / "archives", archives)
    without = tmp_path / "without"
    shutil.copytree(archives, without)
    (without / "case1.mska").unlink()
    build_catalog(without, tmp_path / "reference.parquet")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(DYING, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hooks), *sys.path]))
    monkeypatch.setenv("DIES_AT", f"{os.sep}archives{os.sep}case1.mska")
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
    ):  # fmt: skip
        result = build_catalog(
            archives, tmp_path / "c.parquet", scheduler=cluster.scheduler_address
        )
    assert [key for key, _ in result.failures] == ["case1.mska"], result.failures
    assert "its Dask worker died reading it (out of memory?), also alone" in result.failures[0][1]
    assert pq.read_table(tmp_path / "c.parquet").equals(
        pq.read_table(tmp_path / "reference.parquet")
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any folder: none to hide here")
def test_a_folder_that_cannot_be_listed_is_a_failure_not_passed_over(
    cohort: Path, tmp_path: Path
) -> None:
    """A sub-folder of another account's (no permission): its archives cannot be found,
    which the catalog says as a failure (exit 1), not a smaller catalog in silence;
    ``ls`` and ``verify`` of the folder say it as an error."""
    from medmask.ops.inspection import archives_in

    archives = tmp_path / "archives"
    shutil.copytree(cohort / "archives", archives)
    (archives / "site_b").chmod(0)
    try:
        result = build_catalog(archives, tmp_path / "c.parquet")
        assert result.read == 2
        assert result.failures == [
            ("site_b/", "cannot be listed: Permission denied: its archives not read")
        ]
        with pytest.raises(MedmaskError, match="site_b: cannot be listed: Permission denied"):
            archives_in([archives])  # (what ls and verify list)
    finally:
        (archives / "site_b").chmod(0o755)
