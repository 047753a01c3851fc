"""The original tool's batch script: every case with a time limit, the others carry on.

    python scripts/process_cases_with_timeout.py -d data/dicom_cases -o data/output_csv \\
        --timeout 900 --move-top-level-zips --projectid-map data/output_csv/case_projectid_map.json

Same options as the extractor (``--timeout`` is ``--case-timeout``); like the original
script it writes the merged tables only (``all_cases_original.csv``,
``all_cases_desensitized.csv``, and ``all_cases.csv``), no per-case files, and saves the
project ID map.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from dcm_extractor.extractor import main
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from dcm_extractor.extractor import main

if __name__ == "__main__":
    sys.exit(main(["--only-merged", *sys.argv[1:]], prog="process_cases_with_timeout.py"))
