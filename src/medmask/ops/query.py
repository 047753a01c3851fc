"""SQL over mask catalogs with DuckDB (embedded, no server): the view ``masks`` holds the
rows of the catalogs given (docs/catalog.md has questions and answers).

The command line prints and writes results through DuckDB alone (its own CSV, JSON and
Parquet writers), so that ``medmask query`` starts without pyarrow and pandas.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from ..errors import MedmaskError
from ..files.atomic import atomic_path

__all__ = ["OUTPUT_FORMATS", "connect", "query", "query_rows", "query_to_file"]

# A question never reaches the network: DuckDB would otherwise download and load an
# extension (httpfs) for a path like https://... or s3://... that a question names.
OFFLINE: Final[dict[str, str | bool | int | float | list[str]]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}

Catalogs = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
OUTPUT_FORMATS = {
    ".csv": "FORMAT CSV, HEADER",
    ".parquet": "FORMAT PARQUET, COMPRESSION zstd",
    ".json": "FORMAT JSON",
}


def query(catalogs: Catalogs, sql: str) -> Any:
    """The result of ``sql`` over the catalogs, as a ``pyarrow.Table``.

    Raises
    ------
    MedmaskError
        A catalog does not exist, or DuckDB refuses the SQL (its message says why).
    """
    _question(sql)
    with connect(catalogs) as connection:
        return _run(lambda: connection.sql(sql).to_arrow_table())


def query_rows(
    catalogs: Catalogs, sql: str, limit: int
) -> tuple[list[str], list[tuple[Any, ...]], int]:
    """The result's column names, its first ``limit`` rows and how many rows it has
    (asked of DuckDB apart: the result is not held)."""
    _question(sql)
    with connect(catalogs) as connection:

        def run() -> tuple[list[str], list[tuple[Any, ...]], int]:
            answer = connection.sql(sql)
            rows = answer.limit(max(limit, 0)).fetchall()
            counted = answer.aggregate("count(*)").fetchall()
            return list(answer.columns), rows, int(counted[0][0]) if counted else 0

        found: tuple[list[str], list[tuple[Any, ...]], int] = _run(run)
        return found


def query_to_file(
    catalogs: Catalogs, sql: str, output: str | os.PathLike[str], *, excel: bool = False
) -> int:
    """Write the result to ``output`` by its suffix (:data:`OUTPUT_FORMATS`: CSV with a
    header, Parquet, JSON one object per line), whole or not at all; the rows written.
    The result streams from DuckDB into the file, not held. ``excel``: a CSV begins with
    the UTF-8 byte order mark, by which Excel reads it as UTF-8 (without it, Excel on a
    Chinese Windows reads GBK: 肝脏 comes out as mojibake), as ``dcm-extract --excel``."""
    out = Path(output)
    options = OUTPUT_FORMATS.get(out.suffix.lower())
    if options is None:
        raise MedmaskError(f"{out}: write {', '.join(OUTPUT_FORMATS)}")
    if excel and out.suffix.lower() != ".csv":
        raise MedmaskError(f"{out}: the byte order mark for Excel is for a .csv file")
    _question(sql)
    with connect(catalogs) as connection:
        _run(lambda: connection.sql(sql).create_view("query_answer"))
        with _written_as(out), atomic_path(out) as partial:
            with _duckdb_writes(Path(partial)) as name:
                target = name.replace("'", "''")

                def run() -> int:
                    copy = f"COPY query_answer TO '{target}' ({options})"
                    copied = connection.execute(copy).fetchall()
                    return int(copied[0][0]) if copied else 0

                written: int = _run(run)
            if excel:
                _with_bom(Path(partial))
        return written


@contextmanager
def _written_as(output: Path) -> Iterator[None]:
    """Errors of writing ``output`` as ``output: what`` - a full disk's, which DuckDB
    says in JSON naming the temporary file (``IO Error: Async write failed ...:
    {"exception_message": "Could not write file \\".q.csv.x7.tmp\\": No space left on
    device", "errno": "28"}``), and the system's, which name no file."""
    try:
        yield
    except MedmaskError as err:
        code = re.search(r'\bwrite\b.*"errno":\s*"(\d+)"', str(err.__cause__))
        if code is None:
            raise
        number = int(code.group(1))
        raise OSError(number, os.strerror(number), str(output)) from err
    except OSError as err:
        if err.errno is None:
            raise
        raise OSError(err.errno, err.strerror, str(output)) from err


def _with_bom(path: Path) -> None:
    """``path`` with the UTF-8 byte order mark in front (copied, not read into memory)."""
    marked = path.with_name(path.name + ".bom")
    try:
        with path.open("rb") as source, marked.open("wb") as target:
            target.write(codecs.BOM_UTF8)
            shutil.copyfileobj(source, target, 1 << 20)
        marked.replace(path)
    finally:
        marked.unlink(missing_ok=True)


@contextmanager
def connect(catalogs: Catalogs) -> Iterator[Any]:
    """A DuckDB connection whose view ``masks`` reads the catalogs."""
    import duckdb  # noqa: PLC0415

    paths = (
        [Path(catalogs)] if isinstance(catalogs, str | os.PathLike) else [Path(c) for c in catalogs]
    )
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise MedmaskError(f"{', '.join(missing)}: no such catalog (medmask catalog writes one)")
    with contextlib.ExitStack() as links:
        connection = duckdb.connect(config={**OFFLINE, "temp_directory": _spill_folder(links)})
        links.callback(connection.close)  # (closed before its spill folder goes)
        names = [_utf8_path(p, links) for p in paths]
        listed = ", ".join("'" + name.replace("'", "''") + "'" for name in names)
        _run(lambda: connection.execute(
            f"CREATE VIEW masks AS SELECT * FROM read_parquet([{listed}])"
        ))  # fmt: skip
        yield connection


def _spill_folder(links: contextlib.ExitStack) -> str:
    """Where DuckDB spills a question too large for its memory: a folder of the system's
    temporary folder (``TMPDIR``) that lives as long as ``links``. DuckDB's own default,
    ``.tmp`` in the working folder, fails from a read-only folder (a cluster node's home, a
    data mount) and leaves its files beside the user's."""
    folder = links.enter_context(tempfile.TemporaryDirectory(prefix="medmask-query-"))
    return str(Path(folder) / "spill")


def _utf8_path(path: Path, links: contextlib.ExitStack) -> str:
    """``path`` as DuckDB can take it: itself, or - when its name is not UTF-8 (a Windows
    copy's GBK folder), which DuckDB cannot open - a link to it with a UTF-8 name in a
    temporary folder of its own that lives as long as ``links``."""
    text = str(path)
    if _duckdb_opens(text):
        return text
    folder = links.enter_context(tempfile.TemporaryDirectory(prefix="medmask-query-"))
    link = Path(folder) / f"table{path.suffix}"
    link.symlink_to(path.absolute())
    return str(link)


def _question(sql: str) -> None:
    """Refuse SQL that is not one question (a SELECT, which DuckDB's FROM ..., WITH ...,
    DESCRIBE, SUMMARIZE and SHOW are): a DROP, COPY, INSERT or a second statement is not
    run - the catalogs are read, never changed or copied."""
    import duckdb  # noqa: PLC0415

    statements = _run(lambda: duckdb.extract_statements(sql))
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise MedmaskError(
            "query: the SQL must be one question - SELECT ..., WITH ..., FROM ..., "
            "DESCRIBE ..., SUMMARIZE ...: the catalogs are read, never changed"
        )


def _run(step: Any) -> Any:
    import duckdb  # noqa: PLC0415

    try:
        return step()
    except duckdb.Error as err:
        raise MedmaskError(f"query: {_said(err)}") from err


def _said(err: Exception) -> str:
    """DuckDB's error: its first line says what, and a line of names it offers ("Did you
    mean ...", "Candidate bindings: ...") follows; the rest points into the SQL."""
    first, *rest = str(err).splitlines() or [""]
    offers = [line for line in rest if line.startswith(("Did you mean", "Candidate bindings"))]
    return f"{first} ({offers[0]})" if offers else first


def _duckdb_opens(text: str) -> bool:
    """Whether DuckDB, which opens a path by its text in UTF-8, opens the file ``text``
    names: whether its bytes on disk are that UTF-8 (not a GBK name of a Windows copy,
    and not in a GBK locale any name but an ASCII or a GBK-less one)."""
    try:
        return text.encode("utf-8") == os.fsencode(text)
    except UnicodeEncodeError:  # (surrogate escapes of a name that is not UTF-8)
        return False


@contextmanager
def _duckdb_writes(partial: Path) -> Iterator[str]:
    """The path DuckDB writes ``partial`` as: itself, or - when its name is not UTF-8 (a
    Windows copy's GBK folder), which DuckDB cannot open - a file in a temporary folder,
    copied into ``partial`` when DuckDB is done. (A link would not do: DuckDB replaces the
    file a path names rather than writing through a link.)"""
    text = str(partial)
    if _duckdb_opens(text):
        yield text
        return
    with tempfile.TemporaryDirectory(prefix="medmask-query-") as folder:
        staged = Path(folder) / "answer"
        yield str(staged)
        shutil.copyfile(staged, partial)
