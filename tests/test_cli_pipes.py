"""Both tools' output read by a reader that goes away (``medmask ls x.mska | head``): exit
141 as a shell tool that SIGPIPE ended, nothing on stderr; any other broken pipe is still
an error."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from dcm_extractor.cli import common as extract_common
from medmask.cli import common as medmask_common
from medmask.ops.pack import pack
from medmask.sample import MaskSample


@pytest.mark.parametrize("tool", [["medmask"], ["dcm_extractor"]], ids=["medmask", "dcm-extract"])
def test_a_reader_gone_ends_the_command_quietly(tool: list[str], tmp_path: Path) -> None:
    """The reader's end is closed before the command writes (its first line fails), so the
    test does not depend on how much fits in the pipe."""
    command = [sys.executable, "-m", *tool, "sample", str(tmp_path / "out")]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # no reader left
    with child.stderr:
        err = child.stderr.read().decode("utf-8", "replace")
    assert child.wait() == 141, err
    assert "error" not in err and "Traceback" not in err and "Exception" not in err, err
    assert (tmp_path / "out").is_dir()  # (it ran: its result line was what failed)


@pytest.mark.parametrize("common", [medmask_common, extract_common], ids=["medmask", "dcm"])
def test_reader_gone_asks_the_pipe_itself(
    common: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A healthy pipe, a file, or a stdout without a descriptor: not gone (a broken pipe
    from elsewhere stays an error). A pipe without readers: gone, and stdout then writes to
    /dev/null so that the flush at exit cannot fail too."""
    assert common.READER_GONE == 141
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert not common.reader_gone()
    read, write = os.pipe()
    with os.fdopen(write, "w") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        assert not common.reader_gone()
        os.close(read)
        assert common.reader_gone()
        print("after", file=stdout, flush=True)  # into /dev/null: no BrokenPipeError
        assert os.path.samestat(os.fstat(stdout.fileno()), Path(os.devnull).stat())


@pytest.mark.parametrize("tool", [["medmask"], ["dcm_extractor"]], ids=["medmask", "dcm-extract"])
def test_a_result_line_keeps_the_terminals_encoding(tool: list[str], tmp_path: Path) -> None:
    """Under a GBK locale (a Chinese server; Windows' console redirected to a file) a line
    holding one character GBK lacks (Ø) was written whole in UTF-8, so its Chinese came out
    as mojibake among GBK lines; now in GBK, that one character as its escape. A file name
    whose bytes are not GBK text goes out as its bytes, as before. The tools' own output,
    read by the codec: `sample` prints the folder it wrote, named here so."""
    name = "Øle_孙"
    out = tmp_path / name
    env = {**os.environ, "PYTHONIOENCODING": "gbk"}
    done = subprocess.run(
        [sys.executable, "-m", *tool, "sample", str(out)], capture_output=True, env=env,
        check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    shown = str(tmp_path).encode("gbk") + b"/\\xd8le_" + "孙".encode("gbk")
    assert shown in first, first
    first.decode("gbk")  # the whole line is GBK text
    raw = os.fsencode(tmp_path) + b"/raw_\xff"  # (not UTF-8, nor GBK: a lone byte)
    done = subprocess.run(
        [sys.executable, "-m", *tool, "sample", raw], capture_output=True, env=env,
        check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert raw in done.stdout.splitlines()[0]


def test_json_is_utf8_whatever_the_terminal(mask_sample: MaskSample, tmp_path: Path) -> None:
    """`medmask ls --json` under a GBK locale wrote its JSON in GBK when every name was
    GBK's (肝脏), and a character GBK lacks (Ø) as ``\\xd8`` after the fix above, which is
    no JSON escape: JSON is UTF-8 (RFC 8259), as jq reads it."""
    env = {**os.environ, "PYTHONIOENCODING": "gbk"}
    for names in (["肝脏"], ["Øle", "肝脏"]):
        masks = tmp_path / str(len(names))
        masks.mkdir()
        for name in names:
            shutil.copy(mask_sample.masks_dir / "liver.nii.gz", masks / f"{name}.nii.gz")
        pack(masks, masks / "a.mska")
        done = subprocess.run(
            [sys.executable, "-m", "medmask", "ls", "--json", str(masks / "a.mska")],
            capture_output=True, env=env, check=False, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout.decode("utf-8"))
        assert sorted(row["name"] for row in rows) == names
