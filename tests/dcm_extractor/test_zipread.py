"""Member heads read straight from the zip file, against zipfile's own reading."""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcm_extractor.sources.zipread import ZipMember, ZipProblem, iter_zip_members

METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def members_of(path: Path, head_bytes: int | None) -> dict[str, ZipMember | ZipProblem]:
    return {item.name or "": item for item in iter_zip_members(path, head_bytes=head_bytes)}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    contents=st.lists(
        st.one_of(
            st.binary(max_size=5000),  # incompressible
            st.binary(min_size=1, max_size=40).map(lambda b: b * 300),  # repetitive
        ),
        min_size=1,
        max_size=4,
    ),
    method=st.sampled_from(METHODS),
    level=st.integers(1, 9),
    head_bytes=st.integers(1, 20_000),
)
def test_heads_equal_zipfiles_reading(
    tmp_path: Path, contents: list[bytes], method: int, level: int, head_bytes: int
) -> None:
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w", method, compresslevel=level) as archive:
        for index, data in enumerate(contents):
            archive.writestr(f"IM{index}", data)
    names = []
    for item in iter_zip_members(path, head_bytes=head_bytes):
        assert isinstance(item, ZipMember)
        data = contents[int(item.name[2:])]
        assert item.head == data[:head_bytes]
        assert item.size == len(data)
        assert item.read_all() == data  # while the iteration is at this member
        names.append(item.name)
    assert names == [f"IM{i}" for i in range(len(contents))]


def deflated_member_zip(path: Path, data: bytes, stream: bytes) -> Path:
    """A zip whose one member is ``data`` stored as the given raw deflate ``stream``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("IM1", stream)  # written stored, then relabelled as deflated
    raw = bytearray(path.read_bytes())
    crc = zlib.crc32(data)
    for signature, method_at, crc_at in ((b"PK\x03\x04", 8, 14), (b"PK\x01\x02", 10, 16)):
        at = raw.find(signature)
        struct.pack_into("<H", raw, at + method_at, zipfile.ZIP_DEFLATED)
        struct.pack_into("<III", raw, at + crc_at, crc, len(stream), len(data))
    path.write_bytes(bytes(raw))
    return path


def test_an_encoder_that_expands_the_data_costs_reads_not_a_wrong_head(tmp_path: Path) -> None:
    data = bytes(range(256)) * 100
    encoder = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [
        encoder.compress(data[i : i + 1]) + encoder.flush(zlib.Z_SYNC_FLUSH)
        for i in range(len(data))
    ]
    stream = b"".join(parts) + encoder.flush()
    assert len(stream) > 4 * len(data)  # an empty stored block after every byte
    path = deflated_member_zip(tmp_path / "odd.zip", data, stream)
    with zipfile.ZipFile(path) as archive:
        assert archive.read("IM1") == data  # a valid zip, as zipfile sees it
    for head_bytes in (1, 100, 16_384, len(data), None):
        (item,) = members_of(path, head_bytes).values()
        assert isinstance(item, ZipMember)
        assert item.head == data[: head_bytes or len(data)]


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_member_that_fits_in_the_head_is_crc_checked(tmp_path: Path, method: int) -> None:
    data = bytes(range(256)) * 20
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("IM1", data)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("IM1")
    crc_at = raw.find(b"PK\x01\x02") + 16  # the central directory's CRC, which readers trust
    struct.pack_into("<I", raw, crc_at, info.CRC ^ 1)
    path.write_bytes(bytes(raw))
    (small_head,) = members_of(path, 100).values()
    assert isinstance(small_head, ZipMember)  # the head alone cannot be checked ...
    (whole,) = members_of(path, len(data)).values()
    assert isinstance(whole, ZipProblem)  # ... the whole member can
    assert whole.reason == "corrupt_member"
    assert "CRC" in whole.detail


def test_a_long_local_extra_field_is_read_past(tmp_path: Path) -> None:
    data = b"DICM" * 3000
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("IM1")
        info.compress_type = zipfile.ZIP_DEFLATED
        info.extra = struct.pack("<HH", 0xCAFE, 3000) + bytes(3000)  # longer than any slack
        archive.writestr(info, data)
    (item,) = members_of(path, 4096).values()
    assert isinstance(item, ZipMember)
    assert item.head == data[:4096]


def test_a_bad_local_header_is_a_corrupt_member(tmp_path: Path) -> None:
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("IM1", b"x" * 5000)
        archive.writestr("IM2", b"y" * 5000)
    raw = bytearray(path.read_bytes())
    raw[raw.find(b"PK\x03\x04") + 1] ^= 0xFF  # IM1's local header signature
    path.write_bytes(bytes(raw))
    items = members_of(path, 1000)
    assert isinstance(items["IM1"], ZipProblem)
    assert items["IM1"].reason == "corrupt_member"
    assert isinstance(items["IM2"], ZipMember)  # the next member is still read
    assert items["IM2"].head == b"y" * 1000


def test_zip64_and_streamed_members(tmp_path: Path) -> None:
    """Local headers with a zip64 extra field, and sizes only in a data descriptor."""
    data = bytes(range(256)) * 64
    wide = tmp_path / "zip64.zip"
    with (
        zipfile.ZipFile(wide, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("IM1", "w", force_zip64=True) as member,
    ):
        member.write(data)
    streamed = tmp_path / "streamed.zip"
    with (
        streamed.open("wb") as raw,
        zipfile.ZipFile(_Unseekable(raw), "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        archive.writestr("IM1", data)  # unseekable output: sizes in a data descriptor
    with zipfile.ZipFile(streamed) as archive:
        assert archive.getinfo("IM1").flag_bits & 0x08
    for path in (wide, streamed):
        (item,) = members_of(path, 1000).values()
        assert isinstance(item, ZipMember)
        assert item.head == data[:1000]


class _Unseekable:
    """A write-only stream that cannot seek, as a pipe would be."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def write(self, data: bytes) -> int:
        return int(self.raw.write(data))

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.raw.flush()


def test_gbk_names_that_happen_to_be_utf8_are_read_as_their_zip_wrote_them(
    tmp_path: Path,
) -> None:
    """Windows writes GBK names without the UTF-8 flag; ``住院`` in GBK is valid UTF-8
    (``סԺ``), so one member's name alone cannot tell: the zip's other names do."""
    names = {"aaaa/bbbb.dcm": "住院/一伟.dcm", "cccc/dddd.dcm": "影像/张三.dcm"}
    path = tmp_path / "windows.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for placeholder in names:
            archive.writestr(placeholder, b"not dicom")
    data = path.read_bytes()
    for placeholder, real in names.items():
        encoded = real.encode("gbk")
        assert len(encoded) == len(placeholder)  # same length: the offsets stay right
        data = data.replace(placeholder.encode("ascii"), encoded)
    path.write_bytes(data)
    read = sorted(item.name for item in iter_zip_members(path) if item.name)
    assert read == sorted(names.values())


def test_folders_written_with_backslashes_are_folders_not_empty_files(tmp_path: Path) -> None:
    """Old Windows zip tools wrote folder entries as ``CT\\`` (the zip standard wants
    ``CT/``): each was reported as an empty file. A member of size 0 named so is a folder;
    an empty file named otherwise is still reported."""
    path = tmp_path / "windows.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("CT\\"), b"")
        archive.writestr(zipfile.ZipInfo("CT\\SE1\\"), b"")
        archive.writestr("CT\\SE1\\IM0001.dcm", b"DICM" * 40)
        archive.writestr("CT\\empty.dcm", b"")
    assert zipfile.ZipFile(path).namelist()[0] == "CT\\"  # (as written: zipfile keeps it)
    found = members_of(path, 64)
    assert sorted(found) == ["CT\\SE1\\IM0001.dcm", "CT\\empty.dcm"]
