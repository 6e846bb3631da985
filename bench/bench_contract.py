"""The upload contract alone (``upload_contract.check_files``) on SEND files already written:
the options left for issue 13's contract target, measured in the same command.

Issue 13 wants the contract under 25 % of ``prepare``'s time at 10,000,000 recipients;
bench/bench_pipeline.py measures that share inside the whole pipeline. This benchmark
takes the contract apart on ``--files`` SEND files of ``--records`` records each (distinct
numbers, no opt-out found), each variant in fresh processes as the ``contract`` task pays
it (great-expectations imported in each):

- **one process**, batches of ``BATCH_ROWS`` (what the task does);
- **one process, one batch per file** (fewer great-expectations runs, a file in memory);
- **two processes**, the files split between them, started together (two cores).

Each line gives the wall time of the variant, and per process the import and the checks;
the last column is the variant's wall time over the first's.

    .venv/bin/python -m bench.bench_contract [--files 4] [--records 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import send_file

WORK = Path("var/bench/contract").resolve()


def child(batch_rows: int, files: list[str]) -> None:
    """Check ``files`` in this process; print its import and checks seconds as JSON."""
    start = time.perf_counter()
    import great_expectations  # noqa: F401  (the task's import, timed apart)
    import pandas as pd

    from smsdrop.record_rules import Rules
    from smsdrop.upload_contract import check_files

    imported = time.perf_counter()
    rules = Rules(long_sms=True)  # common.send_file's texts: up to 2 segments
    no_optouts = pd.Series([], dtype="string")
    result = check_files([Path(f) for f in files], rules, no_optouts, batch_rows=batch_rows)
    assert result.success, result.describe_failures()
    done = time.perf_counter()
    print(json.dumps({"import": imported - start, "checks": done - imported,
                      "rows": result.rows}))  # fmt: skip


def variant(groups: list[list[Path]], batch_rows: int) -> dict[str, object]:
    """One process per group of files, all started together: wall time and each one's."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "bench.bench_contract", "--child", str(batch_rows)]
    children = [
        subprocess.Popen([*command, *map(str, group)], stdout=subprocess.PIPE) for group in groups
    ]
    outputs = [c.communicate()[0] for c in children]
    if any(c.returncode for c in children):
        raise SystemExit("a contract child failed")
    return {"wall": time.perf_counter() - start, "processes": [json.loads(o) for o in outputs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1:])
        return
    from smsdrop.upload_contract import BATCH_ROWS

    files = [
        send_file(WORK / f"SEND-12345-20261201-0900-bench{i}.csv", args.records, i * args.records)
        for i in range(args.files)
    ]
    variants = {
        f"one process, batches of {BATCH_ROWS:,}": ([files], BATCH_ROWS),
        "one process, a batch per file": ([files], args.records),
        f"two processes, batches of {BATCH_ROWS:,}": ([files[0::2], files[1::2]], BATCH_ROWS),
    }
    load = os.getloadavg()[0]
    walls: dict[str, list[float]] = {name: [] for name in variants}
    last: dict[str, dict[str, object]] = {}
    try:
        for _ in range(args.repeat):  # interleaved: the load moves all variants alike
            for name, (groups, batch_rows) in variants.items():
                last[name] = variant(groups, batch_rows)
                walls[name].append(float(last[name]["wall"]))  # type: ignore[arg-type]
    finally:
        shutil.rmtree(WORK, ignore_errors=True)  # synthetic, but phone-number shaped
    print(f"contract on {args.files} files of {args.records:,} records, median of "
          f"{args.repeat} (load {load:.1f} → {os.getloadavg()[0]:.1f})")  # fmt: skip
    first = statistics.median(next(iter(walls.values())))
    for name, times in walls.items():
        wall = statistics.median(times)
        parts = ", ".join(
            f"import {p['import']:.2f} + checks {p['checks']:.2f} s"
            for p in last[name]["processes"]  # type: ignore[union-attr]
        )
        print(f"  {name:36s} {wall:6.2f} s  ({parts})  {wall / first:.2f}×")


if __name__ == "__main__":
    main()
