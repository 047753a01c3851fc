"""The extractor: every case under a data root -> per-case and merged metadata tables.

The original tool's commands and Python API keep working::

    python -m src.dcm_extractor.extractor -d data/dicom_cases -o data/output_csv --merge-all

(and ``dcm-extract ...`` / ``python -m dcm_extractor ...``). See docs/dcm-extractor.md
for every option and output file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .cli.extract import main  # the command line (dcm-extract's extraction)
from .outputs.merged import case_file_stem, with_ids
from .outputs.tables import write_csv
from .privacy.policy import PrivacyPolicy
from .privacy.pseudonyms import (
    Pseudonymizer,
    desensitize_name,
    load_key,
)
from .runner.pipeline import (
    RunOptions,
    RunSummary,
    move_top_level_zips,
    run,
)
from .runner.projectids import load_projectid_map, save_projectid_map
from .sources.cases import iter_case_dirs, scan_case
from .sources.rows import FIXED_COLUMNS

__all__ = [
    "FIXED_COLUMNS",
    "RunOptions",
    "RunSummary",
    "desensitize_name",
    "extract_case_metadata",
    "iter_case_dirs",
    "load_projectid_map",
    "main",
    "move_top_level_zips",
    "run",
    "save_projectid_map",
]


def extract_case_metadata(
    case_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    desensitize: bool = False,
    project_id: int | None = None,
    only_merged: bool = False,
) -> Any:
    """One case's table, as the original API offered it.

    Writes ``<case>.csv`` (de-identified when ``desensitize``) and
    ``<case>.desensitized.csv`` into ``out_dir`` and returns the CSV's path; with
    ``only_merged=True`` writes nothing and returns the rows as a pandas DataFrame
    (every column as text or integers, never guessed types).
    """
    result = scan_case(case_dir, Path(case_dir).parent)
    rows = with_ids(result.rows, project_id)
    if only_merged:
        import pandas as pd  # noqa: PLC0415 - only this API returns a DataFrame

        return pd.DataFrame(rows, columns=FIXED_COLUMNS).astype("object")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = case_file_stem(result.name, out)  # (a name too long for a file: cut, hashed)
    primary = out / f"{stem}.csv"
    policy = PrivacyPolicy(desensitize, Pseudonymizer(load_key()))
    hidden = policy.shared_rows(rows)
    write_csv(primary, policy.primary_rows(rows, hidden))
    write_csv(out / f"{stem}.desensitized.csv", hidden)
    return primary


if __name__ == "__main__":
    sys.exit(main(prog="python -m src.dcm_extractor.extractor"))
