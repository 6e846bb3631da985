"""Benchmark of the whole campaign pipeline, DuckDB in, SFTP out: seconds per stage, peak memory.

What the ``sms_campaign`` DAG's tasks call (include/smsdrop/airflow/campaign_tasks.py), on
the domain functions directly, without Airflow, for 1,000,000 and 10,000,000 recipients:

1. **seed** (not a stage of the pipeline, reported apart): ``synthetic.audience`` in chunks
   of 1,000,000 rows (a seed per chunk, customer keys numbered on) into the ``audience``
   table of a DuckDB warehouse file, ~1 % of the numbers as earlier opt-outs;
2. **extract**: ``campaign.extract_audience`` into the staging folder (Parquet);
3. **prepare**: ``campaign.prepare_staged(contract=True)`` (SEND files, rejects to the
   warehouse, the contract checked beside it in its own process), with ``prepare``'s own
   sub-stage timings;
4. **contract**: the task's gate on that result; then, as the baseline in the same child,
   **prepare_alone** (without the contract) and **contract_after** (``check_files`` on its
   files, great-expectations imported in the stage: the contract task before session 10);
   the contract's cost is ``prepare - prepare_alone + contract``;
5. **upload**: per SEND file what one mapped ``upload`` task does: a new
   ``MTargetHook`` session, ``remote_state``, ``upload_atomic`` — one file after another
   (the mapped tasks on a 2-core worker), then again with 2 uploads at a time (2 worker
   processes) for comparison.

The pipeline runs in a fresh subprocess per size, stage after stage as the tasks do (each
opens the warehouse itself); its peak RSS is read from VmHWM, reset before each stage
(``/proc/self/clear_refs``) so each stage's own peak is known too, and the process's RSS
with its children's (the contract process) is sampled every 20 ms (``BENCH_RSS_TRACE=dir``
writes each stage's samples there). The server is the
sandbox in its own process (``smsdrop sandbox serve``, as bench/bench_transfer.py starts it);
files go to a scratch folder it never processes (the provider is another machine: its
work is not ours to time). Target (the issue): 10,000,000 recipients prepared and uploaded
(extract + prepare + contract + upload) in under 2 minutes, peak memory under 2 GB.

    AIRFLOW_HOME=$PWD .venv/bin/python -m bench.bench_pipeline [ROWS ...]   # ~2 minutes

Everything under var/bench/pipeline/ (GBs of synthetic personal data) is removed at the end;
one run at a time (var/bench/pipeline.lock): a second one stops at once.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

os.environ.setdefault("AIRFLOW_HOME", str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

WORK = Path("var/bench/pipeline").resolve()
#: Held while a run uses WORK: a second run would remove the first one's files.
LOCK = WORK.with_suffix(".lock")
CHUNK = 1_000_000
TARGET_ROWS, TARGET_SECONDS, TARGET_MB = 10_000_000, 120.0, 2048.0
STAGES = ("extract", "prepare", "contract", "upload")
#: The last commit whose contract read each SEND file whole (``--contract-baseline``).
CONTRACT_BASELINE = "75e8e56"
#: Issue 13: the contract under this share of prepare's time at 10M.
CONTRACT_SHARE = 0.25
REQUEST = {
    "campaign_id": "bench",
    "service_id": "12345",
    "audience": "audience",
    "message": "Bonjour {first_name}, -20% ce samedi dans votre magasin de {city} ! STOP au 36111",
    "sender": "SMSDROP",
    "send_at": "2026-12-01T09:00:00+01:00",
    "encoding_policy": "transliterate",
}


# --- in the child process ----------------------------------------------------------------


def peak_mb(field: str = "VmHWM") -> float:
    """This process's peak RSS (VmHWM) in MB since it started or since :func:`reset_peak`;
    ``field="VmRSS"``: its RSS now."""
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith(field))
    return int(line.split()[1]) / 1024


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            line = next(x for x in status if x.startswith("VmRSS"))
    except (OSError, StopIteration):  # gone meanwhile
        return 0.0
    return int(line.split()[1]) / 1024


def _children() -> list[int]:
    pid = os.getpid()
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                found += [int(c) for c in children.read().split()]
        except OSError:
            pass
    return found


class TreeRss:
    """The peak of this process's RSS plus its children's (the contract process), sampled
    every 20 ms on a thread: what the machine holds for the stage at once."""

    def __init__(self) -> None:
        self.peak = 0.0
        self.samples: list[tuple[float, float, float]] = []  # seconds in, own MB, children's
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        start = time.perf_counter()
        while not self._stop.wait(0.02):
            own, children = _rss_mb(os.getpid()), sum(_rss_mb(c) for c in _children())
            self.peak = max(self.peak, own + children)
            self.samples.append((time.perf_counter() - start, own, children))


class Stages:
    """Seconds and peak RSS per stage of one process (and with its children, sampled)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.start_mb: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        self.tree_peak_mb: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.start_mb[name] = peak_mb("VmRSS")
        reset_peak()
        start, cpu = time.perf_counter(), _cpu_seconds()
        with TreeRss() as tree:
            yield
        if os.environ.get("BENCH_RSS_TRACE"):
            Path(os.environ["BENCH_RSS_TRACE"], f"{name}.json").write_text(json.dumps(tree.samples))
        self.seconds[name] = time.perf_counter() - start
        self.cpu[name] = _cpu_seconds() - cpu
        self.peak_mb[name] = peak_mb()
        self.tree_peak_mb[name] = max(tree.peak, self.peak_mb[name])


def _cpu_seconds() -> float:
    """The process's CPU seconds (user + system, all threads): over a stage's wall
    seconds, the cores it kept busy."""
    times = os.times()
    return times.user + times.system


def seed(rows: int, db: Path) -> dict:
    """The ``audience`` table and ~1 % opt-outs, 1,000,000 rows at a time."""
    import duckdb
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from smsdrop import synthetic
    from smsdrop.warehouse import DuckDBWarehouse

    start = time.perf_counter()
    optouts = 0
    with DuckDBWarehouse(db) as warehouse:
        warehouse.migrate()
    for number, offset in enumerate(range(0, rows, CHUNK)):
        frame = synthetic.audience(min(CHUNK, rows - offset), seed=7 + number)
        if offset:  # customer keys go on from the previous chunk (C000000000, …)
            keys = np.char.add(
                "C", np.char.zfill(np.arange(offset, offset + len(frame)).astype(str), 9)
            )
            bad = frame["idremote"].str.endswith("-X").to_numpy()
            frame["idremote"] = pd.Series(
                np.where(bad, np.char.add(keys, "-X"), keys), dtype="string[pyarrow]"
            )
        table = pa.Table.from_pandas(frame, preserve_index=False)
        with DuckDBWarehouse(db) as warehouse:
            if offset == 0:
                warehouse.replace_table("audience", table)
            sample = synthetic.optouts_for(frame, seed=11 + number)
            optouts += warehouse.upsert_optouts(pd.DataFrame({"msisdn": sample}), "import").new
        if offset:
            con = duckdb.connect(str(db))
            con.register("chunk", table)
            con.execute("INSERT INTO audience SELECT * FROM chunk")
            con.close()
        del frame, table
    with DuckDBWarehouse(db) as warehouse:
        count = int(warehouse.query_frame("SELECT count(*) AS n FROM audience")["n"][0])
    assert count == rows, (count, rows)
    return {
        "rows": rows,
        "optouts": optouts,
        "seconds": time.perf_counter() - start,
        "mb": db.stat().st_size / 1e6,
        "peak_rss_mb": peak_mb(),
    }


def upload_one(conn_id: str, path: str, name: str) -> dict:
    """What one mapped ``upload`` task does: a session, the remote state, the atomic upload."""
    from smsdrop.airflow.hooks import MTargetHook

    start = time.perf_counter()
    hook = MTargetHook(conn_id)
    with hook.get_managed_conn():
        if hook.remote_state(name).state.submitted:
            raise RuntimeError(f"{name} is on the server already")
        result = hook.upload_atomic(path, name)
    return {"bytes": result["bytes"], "seconds": time.perf_counter() - start, "pid": os.getpid()}


def warm_worker() -> int:
    """Imports a worker needs, before the clock starts (an Airflow worker has them)."""
    import smsdrop.airflow.hooks  # noqa: F401

    time.sleep(0.5)  # both workers start
    return os.getpid()


def worker_peak() -> tuple[int, float]:
    time.sleep(0.2)
    return os.getpid(), peak_mb()


def upload_parallel(conn_id: str, files: list[Path], workers: int) -> dict:
    """The same uploads, ``workers`` at a time, each worker its own process."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        [f.result() for f in [pool.submit(warm_worker) for _ in range(workers)]]
        start = time.perf_counter()
        results = list(pool.map(upload_one, [conn_id] * len(files), map(str, files),
                                [f.name for f in files]))  # fmt: skip
        seconds = time.perf_counter() - start
        peaks = dict(f.result() for f in [pool.submit(worker_peak) for _ in range(workers)])
    return {
        "seconds": seconds,
        "bytes": sum(r["bytes"] for r in results),
        "worker_peak_rss_mb": max(peaks.values()),
    }


def import_gx() -> float:
    """Seconds to import great-expectations, the contract's fixed cost (reported apart)."""
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    start = time.perf_counter()
    import great_expectations  # noqa: F401

    return time.perf_counter() - start


def load_module(name: str, path: Path) -> object:
    """A module from a file: the contract as another commit had it (``--contract-baseline``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def same_counts(before: list[dict], after: list[dict]) -> bool:
    """Whether both contracts found the same counts for every great-expectations check."""

    def counts(items: list[dict]) -> dict:
        return {(e["file"], e["expectation"], e["column"]):
                (e["element_count"], e["unexpected_count"])
                for e in items if e["expectation"].startswith("expect_column_")}  # fmt: skip

    return counts(before) == counts(after)


def pipeline(
    db: Path, staging: Path, conn_id: str, scratch: Path, workers: int, baseline: str = ""
) -> dict:
    """Extract, prepare, contract, upload: as the DAG's tasks, one after another."""
    start = time.perf_counter()
    import pyarrow as pa

    from smsdrop.airflow.hooks import MTargetHook  # noqa: F401  (the upload task's import)
    from smsdrop.campaign import AUDIENCE_FILE, extract_audience, prepare_staged
    from smsdrop.spec import CampaignSpec
    from smsdrop.upload_contract import check_files
    from smsdrop.warehouse import DuckDBWarehouse

    imports = time.perf_counter() - start
    request = CampaignSpec.from_mapping(REQUEST)
    stage = Stages()
    timings: dict[str, float] = {}
    with stage("extract"), DuckDBWarehouse(db, read_only=True) as warehouse:
        rows = extract_audience(warehouse, request, staging / AUDIENCE_FILE)
    child: dict[str, float] = {}  # the contract process's CPU seconds and peak
    with stage("prepare"):  # the task: the contract checked beside it, in its own process
        summary = prepare_staged(
            lambda: DuckDBWarehouse(db), request, staging, timings=timings, contract=True,
            contract_usage=child,
        )  # fmt: skip
    with stage("contract"):  # the task: the result is in prepare's summary
        contract = summary.contract or {}
        if not contract.get("success"):
            raise AssertionError(f"contract broken: {contract}")
    # The baseline, in the same child: the same preparation alone, then the contract after
    # it on its files (as the DAG did before), great-expectations imported in the stage.
    pa.default_memory_pool().release_unused()
    alone_timings: dict[str, float] = {}
    with stage("prepare_alone"):
        summary = prepare_staged(lambda: DuckDBWarehouse(db), request, staging,
                                 timings=alone_timings)  # fmt: skip
    (staging / AUDIENCE_FILE).unlink()  # as the task does: served, personal data
    files = [staging / str(f["name"]) for f in summary.files]
    contract_timings: dict[str, float] = {}
    pa.default_memory_pool().release_unused()  # each contract's peak is its own
    with stage("contract_after"):
        contract_timings["gx_import"] = import_gx()
        with DuckDBWarehouse(db) as warehouse:
            optouts = warehouse.optout_numbers()
        after = check_files(files, request.rules(), optouts)
    contract_timings["same_counts"] = same_counts(after.expectations, contract["expectations"])
    if not after.success or not contract_timings["same_counts"]:
        raise AssertionError("the contract after prepare and beside it disagree")
    if baseline:
        whole = load_module("upload_contract_baseline", Path(baseline))
        pa.default_memory_pool().release_unused()
        with stage("contract_whole"):
            before = whole.check_files(files, request.rules(), optouts)
        contract_timings["same_counts_whole"] = same_counts(before.expectations, after.expectations)
    with stage("upload"):
        uploads = [upload_one(conn_id, str(f), f.name) for f in files]
    sent = sum(u["bytes"] for u in uploads)
    parallel = None
    if workers > 1:
        for path in scratch.iterdir():
            path.unlink()
        parallel = upload_parallel(conn_id, files, workers)
    return {
        "rows": rows,
        "valid": summary.valid,
        "rejected": summary.rejected,
        "opted_out": summary.opted_out,
        "files": len(files),
        "send_mb": sent / 1e6,
        "imports": imports,
        "seconds": stage.seconds,
        "prepare_timings": timings,
        "prepare_alone_timings": alone_timings,
        "contract_timings": contract_timings,
        "contract_process": child,
        "contract_baseline": Path(baseline).stem.removeprefix("upload_contract_") or None,
        "stage_cpu_seconds": stage.cpu,
        "stage_start_rss_mb": stage.start_mb,
        "stage_peak_rss_mb": stage.peak_mb,
        # The pipeline's stages, each process with its children (prepare's contract
        # process), sampled; and the bound of both processes' peaks at once.
        "peak_rss_mb": max(stage.tree_peak_mb[name] for name in STAGES),
        "stage_tree_peak_rss_mb": stage.tree_peak_mb,
        "prepare_peaks_summed_mb": stage.peak_mb["prepare"] + child.get("peak_mb", 0.0),
        "uploads": [round(u["seconds"], 3) for u in uploads],
        "parallel": parallel,
    }


def child(argv: list[str]) -> None:
    if argv[0] == "seed":
        result = seed(int(argv[1]), Path(argv[2]))
    else:
        result = pipeline(Path(argv[1]), Path(argv[2]), argv[3], Path(argv[4]), int(argv[5]),
                          *argv[6:7])  # fmt: skip
    print(json.dumps(result))


# --- in the parent -----------------------------------------------------------------------


def contract_baseline(rev: str) -> str:
    """The file of ``upload_contract.py`` as commit ``rev`` had it ('' for none): the
    whole-file contract, timed on the same files in the same child."""
    if not rev:
        return ""
    path = WORK / f"upload_contract_{rev}.py"
    source = subprocess.run(["git", "show", f"{rev}:include/smsdrop/upload_contract.py"],
                            check=True, stdout=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[1]).stdout  # fmt: skip
    path.write_bytes(source)
    return str(path)


def run_child(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench.bench_pipeline", "--child", *args],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(rows: int, seeded: dict, result: dict) -> list[str]:
    s = result["seconds"]
    total = sum(s[name] for name in STAGES)
    print(
        f"\n{rows:,} recipients: prepared and uploaded in {total:.1f} s "
        f"({rows / total:,.0f} rows/s), peak RSS {result['peak_rss_mb']:.0f} MB; "
        f"{result['valid']:,} valid in {result['files']} SEND file(s) "
        f"({result['send_mb']:.0f} MB), {result['rejected']:,} rejected "
        f"({result['opted_out']:,} opted out)"
    )
    print(
        f"  seed      {seeded['seconds']:6.1f} s  (DuckDB file {seeded['mb']:.0f} MB, "
        f"{seeded['optouts']:,} opt-outs, peak RSS {seeded['peak_rss_mb']:.0f} MB)"
    )
    print(f"  imports   {result['imports']:6.1f} s  (child start, not counted)")
    for name in STAGES:
        print(
            f"  {name:<9} {s[name]:6.1f} s  RSS {result['stage_start_rss_mb'][name]:5.0f} MB "
            f"at the start, peak {result['stage_peak_rss_mb'][name]:5.0f} MB "
            f"(with its children, sampled: {result['stage_tree_peak_rss_mb'][name]:5.0f} MB)"
        )
        if name == "prepare":
            sub = result["prepare_timings"]
            for key, value in sub.items():
                print(f"    {key:<9} {value:6.2f} s")
            print(f"    {'other':<9} {s['prepare'] - sum(sub.values()):6.2f} s  "
                  "(opt-outs read, rejects to the warehouse)")  # fmt: skip
        if name == "contract":
            report_contract(result)
        if name == "upload":
            print(f"    {result['send_mb'] / s['upload']:.0f} MB/s; per file: "
                  f"{', '.join(f'{u:.2f}' for u in result['uploads'])} s")  # fmt: skip
    parallel = result["parallel"]
    if parallel:
        print(
            f"  upload, 2 at a time: {parallel['seconds']:.1f} s "
            f"({parallel['bytes'] / 1e6 / parallel['seconds']:.0f} MB/s, "
            f"workers' peak RSS {parallel['worker_peak_rss_mb']:.0f} MB each at most)"
        )
    if rows >= TARGET_ROWS:
        scaled = total * TARGET_ROWS / rows
        met = scaled < TARGET_SECONDS and result["peak_rss_mb"] < TARGET_MB
        print(
            f"  target 10M < {TARGET_SECONDS:.0f} s and < {TARGET_MB:.0f} MB: "
            f"{'MET' if met else 'NOT MET'} ({total:.1f} s, {result['peak_rss_mb']:.0f} MB)"
        )
    p = result["prepare_timings"]
    sub = " / ".join(f"{p.get(k, 0):.1f}" for k in ("read", "render", "validate", "dedupe",
                                                     "rejects", "write"))  # fmt: skip
    par = f"{parallel['seconds']:.1f} s" if parallel else "–"
    beside = s["prepare"] - s["prepare_alone"] + s["contract"]
    line = (
        f"| {rows:,} | {seeded['seconds']:.0f} s | {s['extract']:.1f} s | {s['prepare']:.1f} s "
        f"({sub}) | {s['contract']:.1f} s (+{beside:.1f} s beside prepare; after it: "
        f"{s['contract_after']:.1f} s) | {s['upload']:.1f} s ({par}) | **{total:.1f} s** | "
        f"{rows / total:,.0f} | {result['peak_rss_mb']:.0f} MB |"
    )
    return [line]


def report_contract(result: dict) -> None:
    """The contract's cost (issue 13's target): what checking it beside prepare added to
    prepare, against prepare alone in the same child; and the contract after prepare (the
    baseline), and the whole-file contract of ``--contract-baseline`` when asked."""
    s, start, peak = result["seconds"], result["stage_start_rss_mb"], result["stage_peak_rss_mb"]
    alone, child = s["prepare_alone"], result["contract_process"]
    cost = s["prepare"] - alone + s["contract"]
    met = cost < CONTRACT_SHARE * alone
    print(
        f"    beside prepare: +{cost:.2f} s over prepare alone ({alone:.1f} s) = {cost / alone:.0%}"
        f" (target < {CONTRACT_SHARE:.0%}: {'MET' if met else 'NOT MET'}); waited for the last"
        f" files {result['prepare_timings'].get('contract', 0):.2f} s; its process "
        f"{child.get('cpu_seconds', 0):.1f} CPU s, peak {child.get('peak_mb', 0):.0f} MB"
    )
    gx = result["contract_timings"]["gx_import"]
    after = s["contract_after"]
    print(
        f"    after prepare (the baseline): {after:.1f} s (gx import {gx:.2f} s) = "
        f"{after / alone:.0%} of prepare alone; peak over the start "
        f"{peak['contract_after'] - start['contract_after']:.0f} MB; same counts: "
        f"{result['contract_timings']['same_counts']}"
    )
    whole = s.get("contract_whole")
    if whole is not None:
        print(
            f"  contract, whole files ({result['contract_baseline']}): {whole:.1f} s + the "
            f"import = {whole + gx:.1f} s; peak over the start "
            f"{peak['contract_whole'] - start['contract_whole']:.0f} MB; same counts: "
            f"{result['contract_timings']['same_counts_whole']}"
        )


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@contextmanager
def one_run_at_a_time() -> Iterator[None]:
    """A second run stops at once, saying so: two would share WORK (and the 2 cores)."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(f"another bench_pipeline is running ({LOCK} is held): wait for it")
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", type=int, default=[1_000_000, TARGET_ROWS])
    parser.add_argument("--workers", type=int, default=2, help="parallel uploads (1: none)")
    parser.add_argument("--keep", action="store_true", help="keep var/bench/pipeline/")
    parser.add_argument(
        "--contract-baseline",
        default="",
        metavar="REV",
        help=f"also run the contract as commit REV had it, on the same files (the whole-file "
        f"contract: {CONTRACT_BASELINE})",
    )
    args = parser.parse_args()
    with one_run_at_a_time():
        run(args)


def run(args: argparse.Namespace) -> None:
    from bench import common
    from bench.bench_transfer import CONN, start_sandbox

    load_before = os.getloadavg()[0]
    WORK.mkdir(parents=True, exist_ok=True)
    key = common.client_key(WORK)
    sandbox, server = start_sandbox(WORK, key)
    server.connection(key)  # AIRFLOW_CONN_MTARGET_BENCH, inherited by the children
    baseline = contract_baseline(args.contract_baseline)
    rows_out: list[str] = []
    results: dict[str, object] = {}
    print(f"pipeline benchmark ({', '.join(f'{n:,}' for n in args.rows)} recipients)")
    try:
        for rows in args.rows:
            folder = WORK / str(rows)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            db, staging = folder / "warehouse.duckdb", folder / "staging"
            seeded = run_child("seed", str(rows), str(db))
            result = run_child(
                "pipeline",
                str(db),
                str(staging),
                CONN,
                str(server.local_dir),
                str(args.workers),
                baseline,
            )
            rows_out += report(rows, seeded, result)
            results[str(rows)] = {"seed": seeded, **result}
            server.clean()
            if not args.keep:
                shutil.rmtree(folder)
    finally:
        sandbox.terminate()
        sandbox.wait(60)
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    results["load_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(_rounded(results), indent=1))
    print(
        "\n| recipients | seed | extract | prepare (read / render / validate / dedupe / "
        "rejects / write) | contract | upload (2 at a time) | prepared + uploaded | rows/s "
        "| peak RSS |"
    )
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows_out))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        main()
