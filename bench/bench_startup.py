"""Start-up of the quick commands: ``segments``, ``--help``, ``window``, whole processes.

Each command runs as a user runs it (``python -m smsdrop …`` in a fresh process), in turn
with ``python -c pass`` of the same venv, ``--repeat`` rounds; the figures are the medians
and their ratio to the bare interpreter. Issue 13's target: under 0.3 s and at most 15×
``python -c pass``. Run ``make bytecode`` first (``make bench`` does): without bytecode,
our modules are compiled again in every process.

    .venv/bin/python -m bench.bench_startup [--repeat 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "pass": ["-c", "pass"],
    "segments hi": ["-m", "smsdrop", "segments", "hi"],
    "--help": ["-m", "smsdrop", "--help"],
    "window": ["-m", "smsdrop", "window", "--country", "FR", "--at", "2026-12-24T21:00+01:00"],
}
TARGET_SECONDS, TARGET_RATIO = 0.3, 15.0


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    load = os.getloadavg()[0]
    for _ in range(args.repeat):
        for name, command in COMMANDS.items():
            times[name].append(timed(command))
    floor = statistics.median(times["pass"])
    print(f"start-up, median of {args.repeat} (load {load:.1f} → {os.getloadavg()[0]:.1f})")
    print(f"  {'python -c pass':<14} {floor:6.3f} s")
    for name in list(COMMANDS)[1:]:
        median = statistics.median(times[name])
        met = median < TARGET_SECONDS and median / floor <= TARGET_RATIO
        print(
            f"  {name:<14} {median:6.3f} s  {median / floor:5.1f}× pass  "
            f"({'met' if met else 'NOT met'}: < {TARGET_SECONDS} s, ≤ {TARGET_RATIO:.0f}×)"
        )


if __name__ == "__main__":
    main()
