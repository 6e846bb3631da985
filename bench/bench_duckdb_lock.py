"""Concurrent tasks on the embedded DuckDB warehouse: do they all get through, and what do
they pay for taking turns?

Each of ``--workers`` processes does ``--rounds`` of what a campaign task does to the
warehouse: open it (waiting while another process holds the file), a migrate check, one
small write in a transaction, close. The baseline is the same work done by one process,
in the same command. Reported: failures (must be 0), the total wall time of both, their
ratio, and the longest single wait for the lock.

    .venv/bin/python -m bench.bench_duckdb_lock [--workers 6] [--rounds 20]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path


def _task(path: str, rounds: int, worker: int) -> tuple[int, float]:
    from smsdrop.warehouse import DuckDBWarehouse

    failures, longest = 0, 0.0
    for i in range(rounds):
        started = time.perf_counter()
        try:
            with DuckDBWarehouse(path, lock_timeout=120) as warehouse:
                longest = max(longest, time.perf_counter() - started)
                warehouse.migrate()
                warehouse.record_campaign(
                    f"w{worker}r{i}", "12345", status="preparing", parameters={"i": i}
                )
        except Exception:  # noqa: BLE001 - counted: the figure is "none failed"
            failures += 1
    return failures, longest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    from smsdrop.warehouse import DuckDBWarehouse

    with tempfile.TemporaryDirectory() as temp:
        path = str(Path(temp) / "wh.duckdb")
        with DuckDBWarehouse(path) as warehouse:
            warehouse.migrate()
        started = time.perf_counter()
        serial = _task(path, args.workers * args.rounds, 99)
        serial_s = time.perf_counter() - started
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            results = pool.starmap(_task, [(path, args.rounds, w) for w in range(args.workers)])
        parallel_s = time.perf_counter() - started
        with DuckDBWarehouse(path, read_only=True) as warehouse:
            _, rows = warehouse._query("SELECT count(*) FROM sms_campaigns")
    failures = sum(f for f, _ in results) + serial[0]
    expected = 2 * args.workers * args.rounds
    print(f"{args.workers} processes × {args.rounds} warehouse tasks each, one DuckDB file")
    print(f"  failures: {failures}; campaigns recorded {rows[0][0]:,} of {expected:,}")
    print(f"  one process, same work: {serial_s:.2f} s")
    print(
        f"  {args.workers} processes at once: {parallel_s:.2f} s "
        f"({parallel_s / serial_s:.2f}× the serial time, spawn start-up included)"
    )
    print(f"  longest wait for the lock: {max(w for _, w in results):.2f} s")


if __name__ == "__main__":
    main()
