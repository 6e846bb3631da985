"""Run every benchmark in turn (one at a time: the machine has two cores)."""

from __future__ import annotations

import runpy
import sys

BENCHMARKS = (
    "bench.bench_startup",
    "bench.bench_prepare",
    "bench.bench_gsm",
    "bench.bench_msisdn",
    "bench.bench_sftp",
    "bench.bench_transfer",
    "bench.bench_contract",
    "bench.bench_pipeline",
    "bench.bench_duckdb_lock",
)

for module in BENCHMARKS:
    print(f"\n=== {module} ===", flush=True)
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__")
