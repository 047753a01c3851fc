"""The extraction command line: ``dcm-extract [OPTIONS]`` with the original extractor's
options (``python -m src.dcm_extractor.extractor ...`` and ``python -m dcm_extractor ...``
run the same), its progress bar, and the exit codes: 0 done, 1 a case failed, 2 usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from ..errors import DcmExtractorError, OptionsError, OutputBusyError, PseudonymKeyError
from ..privacy.pseudonyms import (
    COMPAT_WARNING,
    KEY_ENV,
    DateMode,
    Pseudonymizer,
    load_key,
)
from ..reading.columns import parse_columns, read_columns_file
from ..runner.pipeline import (
    REPORT_NAME,
    RunOptions,
    RunSummary,
    run,
    run_lock,
)
from ..runner.runlock import Takeover
from ..sources.cases import CaseResult, iter_case_dirs
from .common import echo, ended_as_interrupted, stopped

__all__ = ["CurrentCase", "build_parser", "main"]

# run as `python -m src.dcm_extractor.extractor` the package is "src.dcm_extractor": name the
# logger inside it anyway, or its warnings reach the console twice (through Python's
# last-resort handler besides our own lines)
_PACKAGE = (__package__ or "dcm_extractor.cli").rsplit(".", 1)[0]
DEFAULT_LOG: Final = "logs/extractor.log"  # (the original extractor's, in the working folder)
log = logging.getLogger(f"{_PACKAGE}.extractor")

MAP_NOTE = "the project ID map (it names the cases; keep it private, outside --out)"


def build_parser(prog: str = "dcm-extract") -> argparse.ArgumentParser:
    """The command-line options of the original extractor, plus ours."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # --merge-al is a typo, not --merge-all
        prog=prog,
        description="Per-case DICOM metadata tables from case folders and zip files.",
        epilog="Also: dcm-extract sample OUT_DIR (generated data), dcm-extract keygen FILE "
        "(a pseudonym key), dcm-extract --version.",
    )
    parser.add_argument(
        "-d", "--data-root", default="data/dicom_cases", help="folder of case folders"
    )
    parser.add_argument("-o", "--out", default="data/output_csv", help="output folder")
    parser.add_argument("--merge-all", action="store_true", help="also write all_cases*.csv")
    parser.add_argument("--only-merged", action="store_true", help="write only the merged tables")
    parser.add_argument(
        "--move-top-level-zips", action="store_true", help="root/x.zip -> root/x/x.zip first"
    )
    parser.add_argument("--export-json", action="store_true", help="also write <case>.json")
    parser.add_argument("--desensitize", action="store_true", help="de-identified primary outputs")
    parser.add_argument(
        "--projectid-map",
        help="case -> project ID JSON (default <out>/case_projectid_map.json; with "
        "--desensitize <out>.case_projectid_map.json, beside --out)",
    )
    parser.add_argument(
        "--log",
        help=f"log file (default {DEFAULT_LOG}; where that cannot be written, "
        "<out>.extractor.log beside --out)",
    )
    parser.add_argument(
        "--excel", action="store_true", help="CSV with a UTF-8 BOM so Excel shows Chinese"
    )
    parser.add_argument(
        "--format", default=None,
        help="merged table formats: csv,json,parquet,xlsx (default csv; xlsx: IDs stay text "
        "in Excel; the instance table is Parquet, and these when given)",
    )  # fmt: skip
    parser.add_argument(
        "--case-timeout", "--timeout", dest="case_timeout", type=float, default=None,
        help="stop a case after this many seconds, in a child process, and carry on with the "
        "others (default: 3600 s, checked in-process)",
    )  # fmt: skip
    parser.add_argument(
        "--pseudonym-key-file", help=f"secret key for keyed pseudonyms (or set ${KEY_ENV})"
    )
    dates = parser.add_mutually_exclusive_group()
    dates.add_argument(
        "--keep-dates", action="store_true", help="keep StudyDate in de-identified tables"
    )
    dates.add_argument(
        "--shift-dates",
        action="store_true",
        help="shift StudyDate per patient (key-derived)",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="processes scanning cases in parallel (default: the CPU count)",
    )  # fmt: skip
    parser.add_argument(
        "--no-resume", dest="resume", action="store_false",
        help="scan every case again, ignoring the manifest of earlier runs",
    )  # fmt: skip
    parser.add_argument(
        "--manifest-dir", help="where finished cases are recorded (default <out>/.manifest)"
    )
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", help="run the cases on a Dask cluster: tcp://HOST:PORT")
    cluster.add_argument("--scheduler-file", help="the Dask scheduler's JSON file")
    parser.add_argument(
        "--series", action="store_true",
        help="also write all_series.csv (with --format: .json/.parquet): one row per series",
    )  # fmt: skip
    parser.add_argument(
        "--instances", action="store_true",
        help="also write all_instances.parquet (and --format's): one row per DICOM object, "
        "counted or not and why",
    )  # fmt: skip
    parser.add_argument(
        "--columns", default="",
        help="extra columns: keywords, (gggg,eeee) tags, private (gggg,EE,CREATOR) tags, "
        "sequence paths such as (0040,0275)[0].(0032,1060); comma-separated",
    )  # fmt: skip
    parser.add_argument("--columns-file", help="extra columns, one per line (# comments)")
    parser.add_argument(
        "--allow-phi-columns", action="store_true",
        help="with --desensitize: keep identifying --columns and the series table's free text",
    )  # fmt: skip
    parser.add_argument(
        "--report", dest="html_report", action="store_true",
        help="also write report.html: the cohort at a glance (one self-contained page)",
    )  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def _options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> RunOptions:
    """The validated options (RunOptions checks them) from the parsed command line."""
    given = args.format is not None
    formats = tuple(f.strip().lower() for f in (args.format or "csv").split(",") if f.strip())
    log_path = Path(args.log or DEFAULT_LOG)
    if log_path.is_dir():
        parser.error(f"--log {log_path}: is a folder; give a file name")
    try:
        key = load_key(args.pseudonym_key_file)
    except PseudonymKeyError as err:
        parser.error(str(err))
    if args.shift_dates and key is None:
        parser.error(
            "--shift-dates needs a pseudonym key (--pseudonym-key-file or $DCM_EXTRACT_KEY)"
        )
    dates: DateMode = "keep" if args.keep_dates else "shift" if args.shift_dates else "remove"
    try:
        columns = parse_columns(args.columns)
        if args.columns_file:
            columns += read_columns_file(args.columns_file)
        return RunOptions(
            data_root=Path(args.data_root),
            out=Path(args.out),
            merge_all=args.merge_all,
            only_merged=args.only_merged,
            move_top_level_zips=args.move_top_level_zips,
            export_json=args.export_json,
            desensitize=args.desensitize,
            projectid_map=Path(args.projectid_map) if args.projectid_map else None,
            excel=args.excel,
            formats=formats,
            instance_formats=tuple(dict.fromkeys(("parquet", *formats))) if given else ("parquet",),
            case_timeout=args.case_timeout,
            workers=args.workers,
            resume=args.resume,
            manifest_dir=Path(args.manifest_dir) if args.manifest_dir else None,
            scheduler=args.scheduler,
            scheduler_file=args.scheduler_file,
            pseudonymizer=Pseudonymizer(key),
            dates=dates,
            series=args.series,
            instances=args.instances,
            columns=tuple(columns),
            allow_phi_columns=args.allow_phi_columns,
            html_report=args.html_report,
        )
    except OptionsError as err:  # one line, exit code 2, in the option's own words
        # (values refused, not the syntax: the usage block would say nothing useful)
        print(f"{parser.prog}: error: {_as_flags(str(err))}", file=sys.stderr)
        raise SystemExit(2) from None


def _as_flags(message: str) -> str:
    """An options error in command-line terms (--workers, --format, --case-timeout, --out)."""
    for word, flag in (
        ("workers ", "--workers "),
        ("formats ", "--format: "),
        ("the case time limit", "--case-timeout"),
        ("out ", "--out "),
    ):
        message = message.replace(word, flag, 1) if message.startswith(word) else message
    return message


class LogFile(logging.FileHandler):
    """The run's log file. A write that fails (a full disk) is said once, on stderr, and
    the run goes on without its log: the tables are what it is for, and each failed line
    would otherwise print logging's traceback."""

    def __init__(self, path: Path, *, fresh: bool, prog: str) -> None:
        super().__init__(
            path, mode="w" if fresh else "a", encoding="utf-8", errors="backslashreplace"
        )
        self.prog, self.failure = prog, ""

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failure:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            self._failed(error)
        else:
            super().handleError(record)

    def close(self) -> None:
        try:
            super().close()
        except OSError as err:  # (its last lines could not be flushed)
            self._failed(err)

    def _failed(self, error: OSError) -> None:
        if not self.failure:
            self.failure = error.strerror or str(error)
            print(
                f"{self.prog}: warning: --log {self.baseFilename}: {self.failure}; the run "
                "goes on without its log",
                file=sys.stderr,
            )


def _configure_logging(
    path: Path, *, fresh: bool = False, prog: str = "dcm-extract"
) -> logging.Handler:
    """The log file's handler; appended to, or started afresh (de-identified runs: an
    earlier run's lines could name patients)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = LogFile(path, fresh=fresh, prog=prog)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger(_PACKAGE)  # also "src.dcm_extractor" when run by the old path
    package.setLevel(logging.INFO)
    package.addHandler(handler)
    return handler


def main(argv: Sequence[str] | None = None, prog: str = "dcm-extract") -> int:
    """Run the extractor's command line; returns 0 (done), 1 (a case failed) or 2 (usage)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
        options = _options(args, parser)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        options.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"{prog}: error: --out {options.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    try:
        with ended_as_interrupted(), run_lock(options) as takeover:  # (first: a refused run
            return _locked_main(options, args, prog, takeover)  # touches no other's log)
    except OutputBusyError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as stop:  # Ctrl-C, SIGTERM: a line, no traceback (lock let go)
        kept = (
            "the cases finished are recorded, so the same command goes on from there"
            if options.resume and (options.manifest_dir or options.privacy.manifest_in_out)
            else "no resume manifest (--no-resume, or --desensitize without --manifest-dir): "
            "the same command starts again"
        )
        what, code = stopped(stop)
        print(f"{prog}: {what}; the merged tables were not written: {kept}", file=sys.stderr)
        return code


def _locked_main(
    options: RunOptions, args: argparse.Namespace, prog: str, takeover: Takeover
) -> int:
    """:func:`main` once the output lock is held."""
    policy = options.privacy
    log_file = Path(args.log or DEFAULT_LOG)
    try:
        handler = _configure_logging(log_file, fresh=policy.cleans_out, prog=prog)
    except OSError as err:
        beside = options.out.parent / f"{options.out.name}.extractor.log"
        try:
            if args.log is not None:  # (given: its own error)
                raise
            handler = _configure_logging(beside, fresh=policy.cleans_out, prog=prog)
        except OSError:
            print(f"{prog}: error: --log {log_file}: {err.strerror or err}", file=sys.stderr)
            return 2
        print(  # (a read-only working folder: a cluster node's, a data mount)
            f"{prog}: warning: {log_file} cannot be written here ({err.strerror or err}): "
            f"the log is {beside}",
            file=sys.stderr,
        )
        log_file = beside
    if takeover.line(options.out):
        print(f"{prog}: warning: {takeover.line(options.out)}", file=sys.stderr)
        log.warning("%s", takeover.line(options.out))
    if policy.deidentify:  # say where the one file that names the cases is (not in --out)
        print(f"note: {MAP_NOTE}: {options.map_path}", file=sys.stderr)
        log.info("%s: %s", MAP_NOTE, options.map_path)
    if not options.pseudonymizer.keyed:
        if policy.deidentify:
            print(COMPAT_WARNING, file=sys.stderr)
        log.warning("no pseudonym key: de-identified tables use the original, reversible hashes")
    started = time.perf_counter()
    try:
        summary = _run_with_progress(options, quiet=args.quiet)
    except DcmExtractorError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        log.error("%s", err)
        return err.exit_code
    finally:
        logging.getLogger(_PACKAGE).removeHandler(handler)
        handler.close()
    seconds = time.perf_counter() - started
    rate = summary.files / max(seconds, 1e-9)
    if summary.cleaned:
        print(f"--desensitize: removed from {options.out}: {summary.cleaned}", file=sys.stderr)
    for note in summary.notes:  # (in the log already)
        print(f"{prog}: warning: {note}", file=sys.stderr)
    echo(f"{summary.line()} in {seconds:.1f} s ({rate:,.0f} files/s)")
    echo(f"tables in {options.out}; skipped and failed files: {options.out / REPORT_NAME}")
    fresh = (
        " (started afresh: earlier runs' lines could name patients)" if policy.cleans_out else ""
    )
    failure = getattr(handler, "failure", "")
    echo(f"log: {log_file}{fresh}" + (f" (stopped early: {failure})" if failure else ""))
    return 1 if summary.failed else 0


def _run_with_progress(options: RunOptions, *, quiet: bool) -> RunSummary:
    """The run, with a progress bar (cases, files/s, elapsed, ETA) on a terminal only."""
    if quiet or not sys.stderr.isatty() or not options.data_root.is_dir():
        return run(options, lock=False)
    from rich.console import Console  # noqa: PLC0415 - only on a terminal
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("cases"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[files]:,} files, {task.fields[rate]:,.0f} files/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    total = len(iter_case_dirs(options.data_root))
    started = time.perf_counter()
    current = CurrentCase()
    with Progress(*columns, current.column(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("cases", total=total, files=0, rate=0.0)

        def advance(result: CaseResult | None) -> None:
            files = bar.tasks[task].fields["files"] + (result.files if result else 0)
            rate = files / max(time.perf_counter() - started, 1e-9)
            bar.update(task, advance=1, files=files, rate=rate)

        return run(options, progress=advance, on_case=current.start, lock=False)


class CurrentCase:
    """The case the run is waiting for, and since when: the progress bar names it once it
    has taken longer than :attr:`STUCK_AFTER` seconds (a huge case, a stalled share)."""

    STUCK_AFTER = 30.0

    def __init__(self) -> None:
        self.label = ""
        self.since = time.monotonic()

    def start(self, label: str) -> None:
        """The run now waits for ``label``."""
        self.label, self.since = label, time.monotonic()

    def line(self, now: float | None = None) -> str:
        """``still on P000012 after 95 s`` for a case past the threshold, else ``""``."""
        elapsed = (time.monotonic() if now is None else now) - self.since
        if not self.label or elapsed < self.STUCK_AFTER:
            return ""
        return f"still on {self.label} after {elapsed:.0f} s"

    def column(self) -> Any:
        """A rich progress column showing :meth:`line` (rendered at every refresh)."""
        from rich.progress import ProgressColumn  # noqa: PLC0415 - only on a terminal
        from rich.text import Text  # noqa: PLC0415

        owner = self

        class _Stuck(ProgressColumn):
            def render(self, task: Any) -> Text:
                return Text(owner.line(), style="yellow")

        return _Stuck()
