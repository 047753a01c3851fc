"""SQL over the tables of an output folder, with DuckDB (embedded, no server).

Each table a run wrote is a view: ``cases`` (``all_cases``), ``series`` (``all_series``),
``studies`` (``all_studies``), ``instances`` (``all_instances``) and ``problems``
(``extraction_report.csv``), from the Parquet file where the run wrote one, else from the
CSV. CSV columns are read as text - PatientID ``000456`` stays ``000456``, dates stay
``YYYYMMDD`` - except the columns the table declares numeric (counts, ages, sizes), which
are numbers, as in the Parquet files. A view exists only for the tables the run wrote
(``--merge-all`` writes ``all_cases``, ``--series`` ``all_series``).

Results print as a table, or go to a file by its suffix: CSV (UTF-8, header), Parquet or
JSON (one object per line) through DuckDB's own writers, or an Excel workbook whose IDs
stay text (:mod:`.xlsx`).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from ..errors import DcmExtractorError
from ..sources.names import READINGS
from .atomic import AtomicFile, atomic_path
from .xlsx import XlsxTable

__all__ = [
    "NUMBER_COLUMNS",
    "OUTPUT_FORMATS",
    "VIEWS",
    "QueryError",
    "connect",
    "path_list",
    "query",
    "query_paths",
    "query_rows",
    "query_to_file",
    "views_of",
]

# A question never reaches the network: DuckDB would otherwise download and load an
# extension (httpfs) for a path like https://... or s3://... that a question names.
OFFLINE: Final[dict[str, str | bool | int | float | list[str]]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


class QueryError(DcmExtractorError):
    """The output folder has no tables, or DuckDB refused the SQL (its message says why)."""


# view -> the table's file stem
VIEWS: Final[dict[str, str]] = {
    "cases": "all_cases",
    "series": "all_series",
    "studies": "all_studies",
    "instances": "all_instances",
    "problems": "extraction_report",
}
# view -> the columns its table holds as (integers, decimals); the rest is text. A view of
# a CSV table casts them. The tables' shapes (outputs/tables.py, studies.py) say the same
# (a test compares them); they are not imported here, as their modules bring the reading
# code (pydicom) and pyarrow, which a question never needs: `dcm-extract query` starts in
# half the time without them.
NUMBER_COLUMNS: Final[dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    "cases": (
        frozenset({"ProjectID", "PatientAge", "Rows", "Columns", "ImageCount", "SeriesCount"}),
        frozenset(),
    ),
    "series": (
        frozenset({"ProjectID", "Rows", "Columns", "ImageCount", "NumberOfFrames", "SliceCount"}),
        frozenset({"ZExtent", "SliceSpacing"}),
    ),
    "studies": (
        frozenset({"ProjectID", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"}),
        frozenset(),
    ),
    "instances": (
        frozenset({"ProjectID", "FileSize", "Rows", "Columns", "NumberOfFrames"}),
        frozenset(),
    ),
}
# what writes each table (for the message when a query names one the folder lacks)
_WRITTEN_BY: Final = {
    "cases": "--merge-all",
    "series": "--series",
    "studies": "--series",
    "instances": "--instances",
    "problems": "any options",
}
OUTPUT_FORMATS: Final = {
    ".csv": "FORMAT CSV, HEADER",
    ".parquet": "FORMAT PARQUET, COMPRESSION zstd",
    ".json": "FORMAT JSON",
    ".xlsx": "",
}


def views_of(out: str | os.PathLike[str]) -> dict[str, Path]:
    """The views an output folder gives, each with the file it reads (Parquet first).

    Raises
    ------
    QueryError
        ``out`` is not a folder, or holds none of the tables.
    """
    folder = Path(out)
    if not folder.is_dir():
        raise QueryError(f"{folder}: no such output folder")
    found = {}
    for view, stem in VIEWS.items():
        for suffix in (".parquet", ".csv"):
            if (folder / f"{stem}{suffix}").is_file():
                found[view] = folder / f"{stem}{suffix}"
                break
    if not found:
        raise QueryError(
            f"{folder}: no tables to query (all_cases, all_series, extraction_report ...: "
            "run dcm-extract with --merge-all or --series into it)"
        )
    return found


def query(out: str | os.PathLike[str], sql: str) -> Any:
    """The result of ``sql`` over an output folder's views, as a ``pyarrow.Table``.

    Raises
    ------
    QueryError
        No tables there, or DuckDB refuses the SQL.
    """
    _question(sql)
    with _connect(out) as (connection, broken):
        return _run(lambda: connection.sql(sql).to_arrow_table(), out, broken)


def query_rows(
    out: str | os.PathLike[str], sql: str, limit: int
) -> tuple[list[str], list[tuple[Any, ...]], int]:
    """The result's column names, its first ``limit`` rows and how many rows it has.

    The result is not held: its first rows and its count are asked of DuckDB apart
    (``SELECT *`` over 10^6 instance rows: 0.2 s and ~150 MB, where holding it took 1.8 s
    and ~700 MB; an ORDER BY ... LIMIT keeps only the rows shown)."""
    _question(sql)
    with _connect(out) as (connection, broken):

        def run() -> tuple[list[str], list[tuple[Any, ...]], int]:
            answer = connection.sql(sql)
            rows = answer.limit(max(limit, 0)).fetchall()
            counted = answer.aggregate("count(*)").fetchall()
            return list(answer.columns), rows, int(counted[0][0]) if counted else 0

        found: tuple[list[str], list[tuple[Any, ...]], int] = _run(run, out, broken)
        return found


def query_paths(
    out: str | os.PathLike[str], sql: str, data_root: str | os.PathLike[str] | None = None
) -> list[str]:
    """The files a query over ``instances`` selects, one string each: ``FilePath``, or
    ``FilePath::ZipMember`` for a zip member; below ``data_root`` when given (as
    absolute paths, each checked to exist), else as the table holds them (relative to the
    run's data root).

    Raises
    ------
    QueryError
        The result has no ``FilePath`` column, or the SQL is refused; the tables are
        de-identified (``--desensitize``: their paths are positions such as
        ``P000001/file00003``, which name no file); ``data_root`` is not a folder, or a
        file selected is not in it.
    """
    if _deidentified(out):
        raise QueryError(
            f"--paths: {out} holds de-identified tables (--desensitize): FilePath and "
            "ZipMember are positions such as P000001/file00003, not files. Query an "
            "identified run's output folder for paths"
        )
    base = Path(data_root).resolve() if data_root is not None else None
    if base is not None and not base.is_dir():
        raise QueryError(f"--paths: -d {data_root}: no such folder")
    table = query(out, sql)
    if "FilePath" not in table.column_names:
        raise QueryError(
            "--paths: the query must return FilePath (and ZipMember), e.g. "
            "SELECT FilePath, ZipMember FROM instances WHERE ..."
        )
    files = table.column("FilePath").to_pylist()
    members = (
        table.column("ZipMember").to_pylist()
        if "ZipMember" in table.column_names
        else [""] * len(files)
    )
    found = []
    where: dict[str, str | None] = {}  # FilePath -> the file's path on disk (None: not there)
    for file, member in zip(files, members, strict=True):
        if not file:
            continue
        if base is None:
            path = str(file)
        else:
            on_disk = where[file] = where[file] if file in where else _on_disk(base, file)
            path = on_disk if on_disk is not None else str(base / file)
        found.append(f"{path}::{member}" if member else path)
    if base is not None:
        _check_present([str(base / f) for f, on_disk in where.items() if on_disk is None],
                       len(where), data_root)  # fmt: skip
    return list(dict.fromkeys(found))


def path_list(paths: Sequence[str], *, null: bool = False) -> bytes:
    """``paths`` (:func:`query_paths`) as a program reading them takes them: the bytes of
    each name as on disk (a Windows copy's GBK names too), each followed by a line end,
    or with ``null`` by a NUL byte (``xargs -0``, ``find -print0``'s form).

    Raises
    ------
    QueryError
        A path holds a line end and ``null`` is not given: a line a path would be read as
        two files.
    """
    if null:
        return b"".join(os.fsencode(path) + b"\0" for path in paths)
    broken = [path for path in paths if "\n" in path or "\r" in path]
    if broken:
        raise QueryError(
            f"--paths: {len(broken):,} of the {len(paths):,} paths hold a line break "
            f"(first: {broken[0]!r}): read a line a path, each would be two; give -0 to end "
            "each path with a NUL byte (xargs -0)"
        )
    return b"".join(os.fsencode(path) + b"\n" for path in paths)


def _on_disk(base: Path, file: str) -> str | None:
    """The path of the file a FilePath names below ``base``, None when there is none.

    A name that is not UTF-8 on disk (a Windows copy's GBK) is written in the tables as
    text (:func:`~dcm_extractor.sources.names.readable`); its bytes come back by encoding
    the text in the reading it came from, the first of them that names a file here. The
    path returned holds those bytes as Python does (PEP 383), so it opens the file."""
    for reading in READINGS:
        try:
            raw = file.encode(reading)
        except UnicodeEncodeError:
            continue
        path = base / os.fsdecode(raw)
        if path.is_file():
            return str(path)
    return None


def _deidentified(out: str | os.PathLike[str]) -> bool:
    """Whether the run that wrote ``out`` de-identified every table (``--desensitize``),
    as its ``deidentification.json`` says (older runs': in its ``applies_to`` text)."""
    try:
        record = json.loads(Path(out, "deidentification.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict):
        return False
    if "identified_tables" in record:
        return record["identified_tables"] is False
    return "every table" in str(record.get("applies_to", ""))


def _check_present(
    missing: list[str], selected: int, data_root: str | os.PathLike[str] | None
) -> None:
    """No file (a zip, for members) is ``missing``; else one error with the count and the first."""
    if missing:
        raise QueryError(
            f"--paths: {len(missing):,} of the {selected:,} files selected are not in "
            f"-d {data_root} (first: {missing[0]}): give the run's data root; were files "
            "moved or deleted since the run?"
        )


def query_to_file(
    out: str | os.PathLike[str],
    sql: str,
    output: str | os.PathLike[str],
    *,
    excel: bool = False,
) -> int:
    """Write the result to ``output`` by its suffix (:data:`OUTPUT_FORMATS`), whole or not
    at all; the rows written. The result streams from DuckDB into the file, not held.

    ``excel``: a CSV begins with the UTF-8 byte order mark, by which Excel reads it as
    UTF-8 (without it, Excel on a Chinese Windows reads the file as GBK and shows 张三 as
    mojibake), as the run's ``--excel`` CSVs do."""
    target = Path(output)
    options = OUTPUT_FORMATS.get(target.suffix.lower())
    if options is None:
        raise QueryError(f"{target}: write {', '.join(OUTPUT_FORMATS)}")
    if excel and target.suffix.lower() != ".csv":
        raise QueryError(f"{target}: the byte order mark for Excel is for a .csv file")
    _question(sql)
    with _connect(out) as (connection, broken):
        answer = _run(lambda: connection.sql(sql), out, broken)
        _run(lambda: answer.create_view(_ANSWER))
        with _written_as(target):
            if not options:
                return _xlsx(connection, answer, target)
            with atomic_path(target) as partial, _duckdb_writes(Path(partial)) as name:
                where = name.replace("'", "''")
                copy = f"COPY {_ANSWER} TO '{where}' ({options})"
                copied = _run(lambda: connection.execute(copy).fetchall())
                if excel:
                    _with_bom(Path(partial))
        return int(copied[0][0]) if copied else 0


@contextmanager
def _written_as(output: Path) -> Iterator[None]:
    """Errors of writing ``output`` as ``output: what`` - a full disk's, which DuckDB
    says in JSON naming the temporary file (``IO Error: Async write failed ...:
    {"exception_message": "Could not write file \\".q.csv.x7.tmp\\": No space left on
    device", "errno": "28"}``), and the system's, which name no file."""
    try:
        yield
    except QueryError as err:
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


_ANSWER: Final = "query_answer"  # the view of the question's answer, in its connection


def _xlsx(connection: Any, answer: Any, target: Path) -> int:
    """The answer as a workbook: numbers in numeric columns, the rest text; the rows."""
    names = list(answer.columns)
    numeric = {
        name
        for name, kind in zip(names, answer.types, strict=True)
        if str(kind).split("(")[0] in _NUMERIC_TYPES
    }
    cursor = connection.execute(f"SELECT * FROM {_ANSWER}")  # (streams: fetched in batches)
    written = 0
    with AtomicFile(target) as file:
        table = XlsxTable(file.binary, names, numeric, target.stem, beside=target.parent)
        try:
            while batch := cursor.fetchmany(10_000):
                table.write(batch)
                written += len(batch)
            table.close()
        finally:
            table.discard()  # (after close: nothing left to remove)
    return written


_NUMERIC_TYPES: Final = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
     "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL"}
)  # fmt: skip


@contextmanager
def connect(out: str | os.PathLike[str]) -> Iterator[Any]:
    """A DuckDB connection with a view per table of the output folder (:data:`VIEWS`) that
    can be read (a damaged table has no view: a question naming it says why)."""
    with _connect(out) as (connection, _):
        yield connection


@contextmanager
def _connect(out: str | os.PathLike[str]) -> Iterator[tuple[Any, dict[str, str]]]:
    """:func:`connect`'s connection, and the tables that could not be made views (view ->
    the file and why), so that a damaged table costs only the questions that name it."""
    import duckdb  # noqa: PLC0415 - only queries need it

    found = views_of(out)
    broken: dict[str, str] = {}
    with contextlib.ExitStack() as links:
        connection = duckdb.connect(config={**OFFLINE, "temp_directory": _spill_folder(links)})
        links.callback(connection.close)  # (closed before its spill folder goes)
        for view, path in found.items():
            try:
                name = _utf8_path(path, links)
                _run(lambda v=view, p=path, n=name: connection.execute(_view_sql(v, p, n)))
            except (QueryError, OSError, UnicodeDecodeError, csv.Error) as err:
                why = str(err).removeprefix("query: ")
                if isinstance(err, UnicodeDecodeError):
                    why = "not UTF-8 text"
                broken[view] = f"{path} cannot be read ({why})"
        yield connection, broken


def _view_sql(view: str, path: Path, name: str) -> str:
    """The view of the table at ``path``, which DuckDB opens as ``name``."""
    quoted = "'" + name.replace("'", "''") + "'"
    if path.suffix == ".parquet":
        return f"CREATE VIEW {view} AS SELECT * FROM read_parquet({quoted})"
    integers, floats = NUMBER_COLUMNS.get(view, (frozenset(), frozenset()))
    with path.open(encoding="utf-8-sig", newline="") as stream:
        header = next(csv.reader(stream), [])
    casts = [
        f'TRY_CAST("{name}" AS {"DOUBLE" if name in floats else "BIGINT"}) AS "{name}"'
        for name in header
        if name in integers or name in floats
    ]
    replace = f" REPLACE ({', '.join(casts)})" if casts else ""
    return (
        f"CREATE VIEW {view} AS SELECT *{replace} FROM read_csv({quoted}, header = true, "
        "all_varchar = true, quote = '\"', escape = '\"')"
    )


def _spill_folder(links: contextlib.ExitStack) -> str:
    """Where DuckDB spills a question too large for its memory: a folder of the system's
    temporary folder (``TMPDIR``) that lives as long as ``links``. DuckDB's own default,
    ``.tmp`` in the working folder, fails from a read-only folder (a cluster node's home, a
    data mount) and leaves its files beside the user's."""
    folder = links.enter_context(tempfile.TemporaryDirectory(prefix="dcm-extract-query-"))
    return str(Path(folder) / "spill")


def _utf8_path(path: Path, links: contextlib.ExitStack) -> str:
    """``path`` as DuckDB can take it: itself, or - when its name is not UTF-8 (a Windows
    copy's GBK folder), which DuckDB cannot open - a link to it with a UTF-8 name in a
    temporary folder of its own that lives as long as ``links``."""
    text = str(path)
    if _duckdb_opens(text):
        return text
    folder = links.enter_context(tempfile.TemporaryDirectory(prefix="dcm-extract-query-"))
    link = Path(folder) / f"table{path.suffix}"
    link.symlink_to(path.absolute())
    return str(link)


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
    with tempfile.TemporaryDirectory(prefix="dcm-extract-query-") as folder:
        staged = Path(folder) / "answer"
        yield str(staged)
        shutil.copyfile(staged, partial)


def _question(sql: str) -> None:
    """Refuse SQL that is not one question (a SELECT, which DuckDB's FROM ..., WITH ...,
    VALUES, DESCRIBE, SUMMARIZE and SHOW are): a DROP, COPY, INSERT, PRAGMA or a second
    statement is not run - the folder's tables are read, never changed or copied."""
    import duckdb  # noqa: PLC0415

    statements = _run(lambda: duckdb.extract_statements(sql))
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise QueryError(
            "query: the SQL must be one question - SELECT ..., WITH ..., FROM ..., "
            "DESCRIBE ..., SUMMARIZE ...: the tables are read, never changed"
        )


def _said(err: Exception) -> str:
    """DuckDB's error: its first line says what, and a line of names it offers ("Did you
    mean ...", "Candidate bindings: ...") follows; the rest points into the SQL."""
    first, *rest = str(err).splitlines() or [""]
    offers = [line for line in rest if line.startswith(("Did you mean", "Candidate bindings"))]
    return f"{first} ({offers[0]})" if offers else first


def _run(
    step: Any, out: str | os.PathLike[str] | None = None, broken: dict[str, str] | None = None
) -> Any:
    """``step()``, DuckDB's error as a :class:`QueryError` of its first line; naming a
    table of :data:`VIEWS` that the output folder ``out`` lacks, with what writes it, or
    one of ``broken`` (view -> why it has no view), with why."""
    import duckdb  # noqa: PLC0415

    try:
        return step()
    except duckdb.Error as err:
        message = f"query: {_said(err)}"
        missing = re.search(r"Table with name (\w+) does not exist", str(err))
        view = missing.group(1).lower() if missing else ""
        if broken and view in broken:
            message = f"query: {broken[view]}; the folder's other tables can be queried"
        elif out is not None and view in VIEWS:
            stem = VIEWS[view]
            has = ", ".join(views_of(out))
            message += (
                f" ({out} has no {stem} table: a run with {_WRITTEN_BY[view]} "
                f"writes it; this folder has: {has})"
            )
        raise QueryError(message) from err
