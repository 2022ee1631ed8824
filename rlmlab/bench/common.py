"""What every benchmark suite shares: where results go, how repeats are summarised."""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import pandas as pd

from .. import __version__


def suite_dir(out: str | Path, suite: str) -> Path:
    path = Path(out) / suite
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine_info() -> dict:
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "rlmlab": __version__,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_results(directory: Path, rows: list[dict] | pd.DataFrame, summary: dict, name: str = "results") -> Path:
    """Write tidy rows as Parquet (and CSV, for eyes and diffs) and the summary as JSON."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    frame.to_parquet(directory / f"{name}.parquet", index=False)
    frame.to_csv(directory / f"{name}.csv", index=False)
    summary = {"machine": machine_info(), **summary}
    (directory / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return directory / "summary.json"


def median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")
