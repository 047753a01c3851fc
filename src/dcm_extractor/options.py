"""What a run is asked to do: :class:`RunOptions`, checked when made."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from threading import TIMEOUT_MAX
from typing import Any, Final

from .errors import OptionsError
from .privacy.policy import PrivacyPolicy
from .privacy.pseudonyms import DateMode, Pseudonymizer
from .reading.columns import ColumnsError, ColumnSpec, identifying, parse_column, refused
from .reading.extras import Extras

__all__ = ["FORMATS", "MAP_NAME", "WORKERS_PER_CORE", "RunOptions"]

FORMATS: Final = ("csv", "json", "parquet", "xlsx")  # merged table formats
MAP_NAME: Final = "case_projectid_map.json"  # the project-ID map's default file name
WORKERS_PER_CORE: Final = 4  # far more processes than cores only compete for the same cores


@dataclass(frozen=True)
class RunOptions:
    """What one run does: the command line's options, checked when made.

    Raises
    ------
    OptionsError
        A value out of range or options that cannot work together (the message says
        which): an unknown table format, fewer than one worker or more than four per
        core, a time limit that is not a finite positive number of seconds, ``out``
        being a file, date shifting without a pseudonym key; identifying ``columns``
        in a de-identified run without ``allow_phi_columns`` (a :class:`ColumnsError`).

    Examples
    --------
    >>> options = RunOptions(Path("data/dicom_cases"), Path("out"), merge_all=True)
    >>> RunOptions.from_dict(options.to_dict()) == options
    True
    """

    data_root: Path
    out: Path
    merge_all: bool = False
    only_merged: bool = False
    move_top_level_zips: bool = False
    export_json: bool = False
    desensitize: bool = False
    projectid_map: Path | None = None
    excel: bool = False
    formats: tuple[str, ...] = ("csv",)
    case_timeout: float | None = None
    workers: int = 1
    resume: bool = True
    manifest_dir: Path | None = None
    scheduler: str | None = None
    scheduler_file: str | None = None
    pseudonymizer: Pseudonymizer = field(default_factory=Pseudonymizer)
    dates: DateMode = "remove"
    series: bool = False
    instances: bool = False  # all_instances: one row per DICOM object
    instance_formats: tuple[str, ...] = ("parquet",)  # its formats (CSV where asked)
    columns: tuple[ColumnSpec, ...] = ()
    allow_phi_columns: bool = False
    html_report: bool = False

    def __post_init__(self) -> None:
        if self.desensitize and not self.allow_phi_columns and refused(self.columns):
            raise ColumnsError(
                "--desensitize refuses --columns that can identify a patient ("
                + "; ".join(refused(self.columns))
                + "); drop them, or keep them knowingly with --allow-phi-columns"
            )
        problems = []
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            given = ", ".join(self.formats) or "nothing"
            problems.append(f"formats must be some of {', '.join(FORMATS)}, got {given}")
        instances_unknown = [f for f in self.instance_formats if f not in FORMATS]
        if not self.instance_formats or (
            instances_unknown and not set(instances_unknown) <= set(unknown)
        ):
            # (a format --format names wrongly is said once, above)
            given = ", ".join(self.instance_formats) or "nothing"
            problems.append(f"instance formats must be some of {', '.join(FORMATS)}, got {given}")
        cores = os.cpu_count() or 1
        most = max(WORKERS_PER_CORE * cores, WORKERS_PER_CORE)
        if not 1 <= self.workers <= most:
            problems.append(
                f"workers {self.workers}: this machine has {cores} core(s); use 1 to {most} "
                "(more machines: --scheduler)"
            )
        timeout = self.case_timeout
        if timeout is not None and not (math.isfinite(timeout) and 0 < timeout <= TIMEOUT_MAX):
            problems.append(
                f"the case time limit must be a positive number of seconds, got {timeout!r}"
            )
        if self.out.exists() and not self.out.is_dir():
            problems.append(f"out {self.out}: exists and is not a folder")
        inside = _inside(self.out, self.data_root)
        if inside:
            problems.append(
                f"out {self.out} {inside} the data root {self.data_root}: the next run would "
                "scan its tables as a case (or write among a patient's images); choose a "
                "folder outside it"
            )
        if self.desensitize and self.projectid_map is not None:
            where = _inside(self.projectid_map, self.out)
            if where == "lies inside":
                problems.append(
                    f"projectid-map {self.projectid_map} lies inside --out {self.out}: it names "
                    "the cases, and nothing in a de-identified --out may; keep it outside "
                    f"(the default under --desensitize: {_map_beside(self.out)})"
                )
        if self.dates not in ("remove", "keep", "shift"):
            problems.append(f"dates must be remove, keep or shift, got {self.dates!r}")
        if self.dates == "shift" and not self.pseudonymizer.keyed:
            problems.append("shifted dates need a pseudonym key")
        if problems:
            raise OptionsError("; ".join(problems))

    @property
    def map_path(self) -> Path:
        """Where the case -> project ID map lives: ``--projectid-map``, else
        ``<out>/case_projectid_map.json``; under ``--desensitize`` beside ``--out`` instead
        (``<out>.case_projectid_map.json``): the map names the cases, and nothing in a
        de-identified ``--out`` may.

        Examples
        --------
        >>> RunOptions(Path("d"), Path("runs/out")).map_path.as_posix()
        'runs/out/case_projectid_map.json'
        >>> RunOptions(Path("d"), Path("runs/out"), desensitize=True).map_path.as_posix()
        'runs/out.case_projectid_map.json'
        """
        if self.projectid_map is not None:
            return self.projectid_map
        return _map_beside(self.out) if self.desensitize else self.out / MAP_NAME

    @cached_property
    def privacy(self) -> PrivacyPolicy:
        """The run's privacy policy: what it may write and say about patients."""
        return PrivacyPolicy(
            self.desensitize,
            self.pseudonymizer,
            self.dates,
            allow_phi=self.allow_phi_columns,
            identifying_columns=tuple(c.header for c in self.columns if identifying(c) is not None),
        )

    @cached_property
    def extras(self) -> Extras:
        """What each image gives beyond the fixed columns (the HTML report needs the series)."""
        return Extras(
            series=self.series or self.html_report, columns=self.columns, instances=self.instances
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready options; the pseudonym key is never in it (only whether there is one)."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "pseudonymizer":
                out["keyed_pseudonyms"] = value.keyed
                continue
            if item.name == "columns":
                out["columns"] = [column.header for column in value]
                continue
            out[item.name] = (
                str(value)
                if isinstance(value, Path)
                else (list(value) if isinstance(value, tuple) else value)
            )
        return out

    @classmethod
    def from_dict(
        cls, values: dict[str, Any], *, pseudonymizer: Pseudonymizer | None = None
    ) -> RunOptions:
        """Options from :meth:`to_dict`'s form; the key comes separately (``pseudonymizer``).

        Raises
        ------
        OptionsError
            Unknown names, or values :class:`RunOptions` refuses.
        """
        names = {item.name for item in fields(cls)} - {"pseudonymizer"}
        unknown = sorted(set(values) - names - {"keyed_pseudonyms"})
        if unknown:
            raise OptionsError(f"unknown options: {', '.join(unknown)}")
        kwargs: dict[str, Any] = {k: v for k, v in values.items() if k in names}
        for name in ("data_root", "out", "projectid_map", "manifest_dir"):
            if kwargs.get(name) is not None:
                kwargs[name] = Path(kwargs[name])
        for name in ("formats", "instance_formats"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        if "columns" in kwargs:
            kwargs["columns"] = tuple(parse_column(str(c)) for c in kwargs["columns"])
        return cls(**kwargs, pseudonymizer=pseudonymizer or Pseudonymizer())


def _map_beside(out: Path) -> Path:
    """``<out>.case_projectid_map.json`` beside the output folder (``-o ..`` or ``-o .``:
    beside the folder those name, never in the working directory, which may lie in it).

    Examples
    --------
    >>> import os
    >>> _map_beside(Path("..")) == Path(os.getcwd()).parent.with_name(
    ...     Path(os.getcwd()).parent.name + ".case_projectid_map.json"
    ... )
    True
    """
    folder = Path(os.path.normpath(out))
    if folder.name in ("", ".", ".."):
        folder = Path(os.path.normpath(out.absolute()))  # ("a/.." is "a"'s parent)
    return folder.parent / f"{folder.name or 'out'}.{MAP_NAME}"


def _inside(out: Path, root: Path) -> str:
    """``"is"`` or ``"lies inside"`` when ``out`` is ``root`` or within it, else ``""``
    (links resolved: a link into the data root is inside it)."""
    try:
        out_path, root_path = out.resolve(), root.resolve()
    except (OSError, RuntimeError):  # a link loop: the scan will say so
        return ""
    if out_path == root_path:
        return "is"
    return "lies inside" if root_path in out_path.parents else ""
