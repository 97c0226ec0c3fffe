"""Whole-process start-up of the CLIs: ``hyperctl --help`` and ``hyperctl schedules list``
(local services, SQLite in a fresh data directory, no schedules).

Target: each under 0.6 s wall (median). Every run is a new process, timed from fork to exit;
the runs alternate with a reference measured in the same run, ``python -c pass`` (the
interpreter's own start-up), so a busy machine slows both alike. Printed per command: the median
wall time and CPU time (user + system, from ``os.wait4``), and both as ratios to the reference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

TARGET_SECONDS = 0.6
BIN = Path(sys.executable).parent
COMMANDS = {
    "hyperctl --help": [str(BIN / "hyperctl"), "--help"],
    "hyperctl schedules list": [str(BIN / "hyperctl"), "schedules", "list"],
}
REFERENCE = ("python -c pass", [sys.executable, "-c", "pass"])


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process, which must exit 0."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}: {error.strip()}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (median of these)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cli-startup-") as data_dir:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "HYPERSDK_DAEMON_URL")
        }
        env |= {"HYPERSDK_DATA_DIR": data_dir, "DJANGO_SETTINGS_MODULE": "hypersdk.settings"}
        # The schema once, so the timed runs read an existing database.
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, check=True, cwd=ROOT
        )
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in [REFERENCE[0], *COMMANDS]}
        for name, argv in COMMANDS.items():
            timed(argv, env)  # warm the page cache and the bytecode
            for _ in range(args.runs):
                samples[REFERENCE[0]].append(timed(REFERENCE[1], env))
                samples[name].append(timed(argv, env))

    reference_wall = statistics.median(wall for wall, _ in samples[REFERENCE[0]])
    reference_cpu = statistics.median(cpu for _, cpu in samples[REFERENCE[0]])
    print(f"{REFERENCE[0]:<26} wall {reference_wall:.3f} s  cpu {reference_cpu:.3f} s  (reference)")
    met_all = True
    for name in COMMANDS:
        wall = statistics.median(sample[0] for sample in samples[name])
        cpu = statistics.median(sample[1] for sample in samples[name])
        met = wall <= TARGET_SECONDS
        met_all &= met
        print(
            f"{name:<26} wall {wall:.3f} s ({wall / reference_wall:.1f}x)  "
            f"cpu {cpu:.3f} s ({cpu / max(reference_cpu, 1e-3):.1f}x)  "
            f"target <= {TARGET_SECONDS} s wall: {'met' if met else 'MISSED'}"
        )
        record(
            "cli_startup",
            f"{name} (median of {args.runs}, cpu {cpu:.3f} s)",
            f"{wall:.3f} s",
            reference=f"{REFERENCE[0]} {reference_wall:.3f} s",
            ratio=wall / reference_wall,
            target=f"<= {TARGET_SECONDS} s",
            met=met,
        )
    if not met_all:
        sys.exit(1)


if __name__ == "__main__":
    main()
