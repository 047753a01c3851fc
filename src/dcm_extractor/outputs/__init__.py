"""What a run writes: merged and per-case tables (CSV, JSON, Parquet), the report, the
cohort page (``report.html``), all written atomically."""
