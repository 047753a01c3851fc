"""Kill 2-worker runs at random moments; count what is left and whether the resume is exact.

    .venv/bin/python scripts/kill_trials.py [--trials 20] [--seed 0] [--cases 400]

A sample cohort is generated (the showcase cases plus ``--cases`` bulk cases), and one
clean ``dcm-extract --workers 2 --merge-all --series`` run gives the reference tables and
the run's duration T. Each trial then starts the same run into a fresh ``--out``, in a
session of its own, and after a random moment in [0.02 T, 0.95 T] sends SIGKILL or
SIGTERM (alternating, the first chosen by the seed) to the main process only. Counted
per trial:

- **left**: processes of the run's session still alive once the main process is gone
  (its pool workers and anything they started): must be 0;
- **resume**: the next run into that ``--out`` exits 0 with merged and per-case tables
  byte-identical to the reference;
- **tmp**: temporary files left in ``--out`` (the manifest included) after the resume: 0.

The table prints one line per trial and a total; the exit code is 1 when any trial fails.
Waiting here is for processes to end (bounded at 120 s), never a timing assertion.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from dcm_extractor.sample import generate_dicom_dataset

WAIT = 120.0


def outputs(out: Path) -> dict[str, bytes]:
    """Every table the run wrote (merged and per case), by name."""
    return {
        p.name: p.read_bytes()
        for p in out.iterdir()
        if p.is_file() and p.suffix in (".csv", ".json", ".parquet")
    }


def session_processes(session: int) -> list[psutil.Process]:
    """Live processes of a session (zombies waiting for a parent that is gone count: they
    hold nothing, but say a child outlived its run)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return found


def command(data: Path, out: Path, log: Path) -> list[str]:
    return [sys.executable, "-m", "dcm_extractor", "-d", str(data), "-o", str(out),
            "--merge-all", "--series", "--workers", "2", "-q", "--log", str(log)]  # fmt: skip


def trial(
    data: Path, work: Path, reference: dict[str, bytes], moment: float, sig: int
) -> tuple[int, bool, int, str]:
    """One kill and resume: (processes left, resume exact, temp files, what the resume said)."""
    out, log = work / "out", work / "log"
    with subprocess.Popen(
        command(data, out, log),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the session's id is the main process's pid
    ) as run:
        time.sleep(moment)
        if run.poll() is None:
            os.kill(run.pid, sig)
        run.wait()
    deadline = time.monotonic() + WAIT
    left = session_processes(run.pid)
    while left and time.monotonic() < deadline:  # children end as soon as they notice
        time.sleep(0.05)
        left = session_processes(run.pid)
    for process in left:  # do not let one failed trial spoil the next
        process.kill()
    again = subprocess.run(command(data, out, log), capture_output=True, text=True, check=False)
    said = "did not finish" if "did not finish" in again.stderr else ""
    exact = again.returncode == 0 and outputs(out) == reference
    temporary = [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    return len(left), exact, len(temporary), said


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=400, help="bulk cases besides the showcase")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="kill-trials-") as folder:
        base = Path(folder)
        sample = generate_dicom_dataset(
            base / "sample", bulk_cases=args.cases, images_per_series=20, image_size=64
        )
        data = sample.cases_root
        started = time.perf_counter()
        clean = subprocess.run(
            command(data, base / "reference", base / "reference.log"),
            capture_output=True,
            text=True,
            check=False,
        )
        duration = time.perf_counter() - started
        if clean.returncode != 0:
            print(clean.stderr, file=sys.stderr)
            return 1
        reference = outputs(base / "reference")
        cases = sum(1 for p in data.iterdir() if p.is_dir())
        print(f"{cases} cases, {len(reference)} tables; a clean 2-worker run: {duration:.1f} s")
        print(f"{'trial':>5} {'signal':>8} {'kill at s':>10} {'left':>5} {'resume':>10} "
              f"{'tmp':>4}  resume said")  # fmt: skip
        signals = [signal.SIGKILL, signal.SIGTERM]
        rng.shuffle(signals)
        failed = 0
        totals = {"left": 0, "inexact": 0, "tmp": 0}
        for number in range(1, args.trials + 1):
            sig = signals[number % 2]
            moment = rng.uniform(0.02, 0.95) * duration
            left, exact, temporary, said = trial(
                data, base / f"trial{number:02d}", reference, moment, sig
            )
            ok = left == 0 and exact and temporary == 0
            failed += not ok
            totals["left"] += left
            totals["inexact"] += not exact
            totals["tmp"] += temporary
            name = signal.Signals(sig).name
            print(f"{number:>5} {name:>8} {moment:>10.2f} {left:>5} "
                  f"{'identical' if exact else 'DIFFERS':>10} {temporary:>4}  {said}")  # fmt: skip
        print(
            f"{args.trials} trials: {failed} failed; processes left {totals['left']}, "
            f"resumes not identical {totals['inexact']}, temporary files {totals['tmp']}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
