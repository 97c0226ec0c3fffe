"""Print the headline figures every benchmark recorded in $BENCH_RESULTS as one table.

Exit status 1 if a figure with a target missed it, so `make bench` says so plainly.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BENCH_RESULTS", ""))
    if not path.is_file():
        print(f"no benchmark results at {path}", file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    table = Table(title="HyperSDK benchmarks (figures measured in this run)")
    for column in ("bench", "figure", "value", "reference (same run)", "ratio", "target", "met"):
        table.add_column(column, justify="right" if column == "ratio" else "left")
    for row in rows:
        met = {True: "yes", False: "NO", None: ""}[row["met"]]
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        table.add_row(row["bench"], row["figure"], row["value"], row["reference"], ratio, row["target"], met)
    Console(width=200).print(table)
    return 1 if any(row["met"] is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
