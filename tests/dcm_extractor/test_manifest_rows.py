"""Instance rows packed: in the resume manifest (marshal + Zstandard) small, read back
exactly, and a record that is not ours - damaged, of another Python, holding other
values - only costs a rescan of its case; from worker processes as one marshal string."""

from __future__ import annotations

import base64
import json
import marshal
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from dcm_extractor.runner import manifest
from dcm_extractor.runner.manifest import Manifest
from dcm_extractor.sources.cases import CaseResult
from dcm_extractor.sources.instances import InstanceRows

HEADERS = ("ImageComments",)
WIDTH = len(InstanceRows(HEADERS).names)
# any rows: text with any code point (lone surrogates too), any integer, None
VALUE = st.one_of(st.text(st.characters(exclude_categories=())), st.integers(), st.none())
ROWS = st.lists(st.tuples(*[VALUE] * WIDTH), max_size=20)


def result(rows: list[tuple[Any, ...]]) -> CaseResult:
    return CaseResult(
        name="Zhang_San",
        rows=[{"PatientID": "000456"}],
        series=[],
        instances=InstanceRows(HEADERS, rows),
        report=[],
        files=len(rows),
        images=len(rows),
        skipped=0,
        handovers={},
    )


def realistic(count: int) -> list[tuple[Any, ...]]:
    """Rows as a CT series gives them: UIDs with a common root, positions, sizes."""
    rows = []
    for i in range(count):
        row: list[Any] = [f"value{j}" for j in range(WIDTH)]
        row[0] = f"Zhang_San/CT/IM{i:04d}.dcm"
        row[2] = 525_000 + i
        row[3] = f"{(i * 2654435761) % 2**128:032x}"
        row[4] = f"1.2.840.113619.2.55.3.604688119.{i}.1700000000.{i * 7}"
        row[5] = 512
        row[10] = f"-250\\-250\\{-1.25 * i}"
        rows.append(tuple(row))
    return rows


def test_rows_come_back_exactly_and_far_smaller_than_as_json(tmp_path: Path) -> None:
    rows = realistic(300)
    unreadable = list(rows[7])
    unreadable[5:8] = [None, None, None]  # Rows, Columns, NumberOfFrames of a damaged file
    rows[7] = tuple(unreadable)
    store = Manifest(tmp_path)
    store.store(1, "print", result(rows))
    back = store.load(1, "print")
    assert back is not None and back.instances == InstanceRows(HEADERS, rows)
    packed = (tmp_path / "P000001.json").stat().st_size
    as_json = len(json.dumps(rows, ensure_ascii=False).encode("utf-8"))
    assert packed < as_json / 3, (packed, as_json)


@settings(deadline=None, max_examples=60)
@given(ROWS)
def test_any_text_and_integer_rows_come_back(rows: list[tuple[Any, ...]]) -> None:
    """Text with any code point (lone surrogates: names that were not UTF-8 before
    names.readable), integers past 64 bits."""
    stored = json.loads(json.dumps(manifest._instances_to(InstanceRows(HEADERS, rows))))
    assert manifest._instances(stored) == InstanceRows(HEADERS, rows)


@settings(deadline=None, max_examples=60)
@given(ROWS)
def test_rows_pickled_for_another_process_come_back(rows: list[tuple[Any, ...]]) -> None:
    """Worker processes and Dask send a case's rows pickled: as one marshal string (the
    rows' own pickle opcodes are not in it), the same rows back."""
    sent = pickle.dumps(InstanceRows(HEADERS, rows), pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(sent) == InstanceRows(HEADERS, rows)
    assert marshal.dumps(rows, 4) in sent  # (format 4: any Python since 3.4 reads it)


def stored_with(rows_field: Any, **more: Any) -> dict[str, Any]:
    good = manifest._instances_to(InstanceRows(HEADERS, realistic(3)))
    return {**good, "rows": rows_field, **more}


def packed(value: Any) -> str:
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(marshal.dumps(value, 4))
    return base64.b64encode(frame).decode("ascii")


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(stored_with("not base64 !"), id="not-base64"),
        pytest.param(stored_with(base64.b64encode(b"\x28\xb5\x2f\xfd junk").decode()), id="junk"),
        pytest.param(stored_with(packed(realistic(3)), marshal=5), id="format"),
        pytest.param(stored_with(packed([list(r) for r in realistic(3)])), id="lists"),
        pytest.param(stored_with(packed([(*realistic(1)[0][:-1], 1.5)])), id="a-float"),
        pytest.param(stored_with(packed([(*realistic(1)[0][:-1], b"x")])), id="bytes"),
        pytest.param(stored_with(packed(compile("1", "x", "eval"))), id="code"),
        pytest.param(stored_with(packed([realistic(1)[0][:-1]])), id="short-row"),
    ],
)
def test_a_record_that_is_not_ours_is_refused(stored: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        manifest._instances(stored)


def test_a_damaged_record_scans_the_case_again(tmp_path: Path) -> None:
    """One flipped byte in the compressed rows: the frame's checksum fails, load gives
    None (the run scans the case again), nothing raises."""
    store = Manifest(tmp_path)
    store.store(1, "print", result(realistic(50)))
    path = tmp_path / "P000001.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    frame = bytearray(base64.b64decode(record["result"]["instances"]["rows"]))
    frame[len(frame) // 2] ^= 0x40
    record["result"]["instances"]["rows"] = base64.b64encode(bytes(frame)).decode()
    path.write_text(json.dumps(record), encoding="utf-8")
    assert store.load(1, "print") is None


def test_a_frame_claiming_more_than_its_rows_is_not_inflated() -> None:
    big = zstandard.ZstdCompressor().compress(b"\x00" * 10_000_000)  # ~300 bytes
    with pytest.raises(ValueError, match="claims more"):
        manifest._instances(stored_with(base64.b64encode(big).decode()))


def test_records_of_earlier_versions_are_read(tmp_path: Path) -> None:
    """Rows stored as JSON lists (before they were packed) still resume a run."""
    rows = realistic(4)
    stored = {"names": list(InstanceRows(HEADERS).names), "rows": [list(r) for r in rows]}
    assert manifest._instances(stored) == InstanceRows(HEADERS, rows)


def test_records_stored_by_several_threads_at_once_load_back(tmp_path: Path) -> None:
    """Two runs in one process (or any threads) store records at the same time: each
    thread packs with its own compressor, every record loads back as stored."""
    store = Manifest(tmp_path)

    def rows_of(number: int) -> list[tuple[Any, ...]]:
        return [(*row[:-1], f"case {number}") for row in realistic(40)]

    def work(first: int) -> None:
        for number in range(first, first + 25):
            store.store(number, "print", result(rows_of(number)))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, (1, 26, 51, 76)))
    for number in range(1, 101):
        back = store.load(number, "print")
        assert back is not None and back.instances.rows == rows_of(number), number
