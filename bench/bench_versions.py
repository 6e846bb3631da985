"""This checkout against an earlier commit, in the same command: is a refactor as fast?

The earlier code is checked out (``git worktree``) under ``var/bench/rev-<commit>`` and run
from the same venv with ``PYTHONPATH`` pointing at its ``include/`` (ahead of this
checkout's editable install). Each case runs the whole ``smsdrop`` command on the same
input, old and new alternately, ``--repeat`` times; the figure is the ratio of the
medians (new / old: below 1.0 is faster).

Cases: ``prepare`` of a clean audience and of a reject-heavy one (60 % non-GSM names
under ``--encoding-policy reject``, 8 % invalid numbers), and ``check`` of the written files.

``--pipeline N`` runs instead each commit's own ``bench/bench_pipeline.py`` (warehouse →
extract → prepare → contract → upload, N recipients) from its worktree, alternately, and
compares the stages' sums: round 1's pipeline against this one, each as it was built.

    .venv/bin/python -m bench.bench_versions [--rev OLD] [--new NEW] [--rows N] [--repeat K]
    .venv/bin/python -m bench.bench_versions --rev eb9705d --pipeline 10000000 --repeat 2
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

from bench.common import prepare_args, reject_heavy
from smsdrop import synthetic

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "bench"
#: The last commit before issue 11's refactor.
DEFAULT_REV = "36a28f7"
#: Round 1's last commit: the baseline of issue 13's pipeline target.
ROUND_1 = "eb9705d"
#: The pipeline's stages from the warehouse to the drop box (bench_pipeline's names).
PIPELINE_STAGES = ("extract", "prepare", "contract", "upload")


def worktree(rev: str) -> Path:
    path = WORK / f"rev-{rev}"
    if not (path / "include" / "smsdrop").is_dir():
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=True)
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-f", str(path), rev],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    return path


def audiences(rows: int) -> dict[str, Path]:
    WORK.mkdir(parents=True, exist_ok=True)
    clean = WORK / f"versions-clean-{rows}.parquet"
    if not clean.exists():
        synthetic.write_audience(synthetic.audience(rows, seed=7), clean)
    heavy = reject_heavy(clean, WORK / f"versions-heavy-{rows}.parquet")
    return {"clean": clean, "reject-heavy": heavy}


def run(include: Path | None, args: list[str]) -> float:
    env = dict(os.environ)
    if include is not None:
        env["PYTHONPATH"] = str(include)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "smsdrop", *args], env=env, check=True, capture_output=True
    )
    return time.perf_counter() - start


def pipeline(tree: Path, rows: int) -> dict:
    """One run of ``tree``'s own pipeline benchmark; its result for ``rows``."""
    env = dict(os.environ, PYTHONPATH=f"{tree / 'include'}{os.pathsep}{tree}")
    env.setdefault("AIRFLOW_HOME", str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_pipeline", str(rows), "--workers", "1"],
        cwd=tree, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    start = lines.index("{")
    end = start + lines[start:].index("}")
    return json.loads("\n".join(lines[start : end + 1]))[str(rows)]


def compare_pipelines(old: Path, new: Path, rows: int, repeat: int) -> None:
    """Old and new pipelines alternately; the medians of their totals and stages."""
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for _ in range(repeat):
        for label, tree in (("old", old), ("new", new)):
            result = pipeline(tree, rows)
            seconds = {name: result["seconds"][name] for name in PIPELINE_STAGES}
            runs[label].append({**seconds, "total": sum(seconds.values()),
                                "peak_mb": result["peak_rss_mb"]})  # fmt: skip
            shown = "  ".join(f"{k} {v:6.1f}" for k, v in runs[label][-1].items())
            print(f"  {label}: {shown}  (load {os.getloadavg()[0]:.1f})", flush=True)
    for key in (*PIPELINE_STAGES, "total", "peak_mb"):
        old_v = statistics.median(r[key] for r in runs["old"])
        new_v = statistics.median(r[key] for r in runs["new"])
        ratio = f"{old_v / new_v:5.2f}" if new_v else "    –"  # a stage that costs nothing now
        print(f"{key:9} old {old_v:8.1f}  new {new_v:8.1f}  old/new {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default=DEFAULT_REV, help="the earlier commit (old)")
    parser.add_argument("--new", help="a commit to run as new instead of this checkout")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pipeline", type=int, metavar="N", help="compare bench_pipeline at N")
    args = parser.parse_args()
    if args.pipeline:
        new_tree = worktree(args.new) if args.new else ROOT
        print(f"pipeline, {args.pipeline:,} recipients: new {args.new or 'this checkout'}, "
              f"old {args.rev}, {args.repeat} runs each, one upload at a time")  # fmt: skip
        compare_pipelines(worktree(args.rev), new_tree, args.pipeline, args.repeat)
        return
    old = worktree(args.rev) / "include"
    new = worktree(args.new) / "include" if args.new else None
    shown = args.new or "this checkout"
    print(f"new: {shown}; old: {args.rev}; {args.rows:,} rows; {args.repeat} runs each")
    for name, audience in audiences(args.rows).items():
        policy = "reject" if name == "reject-heavy" else "transliterate"
        times: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(args.repeat):
            for label, include in (("old", old), ("new", new)):
                out = WORK / f"versions-out-{name}-{label}"
                times[label].append(run(include, prepare_args(audience, out, policy)))
        old_s, new_s = statistics.median(times["old"]), statistics.median(times["new"])
        print(
            f"prepare {name:13} old {old_s:6.2f} s  new {new_s:6.2f} s  new/old {new_s / old_s:.2f}"
        )
    files = sorted(str(p) for p in (WORK / "versions-out-clean-new").glob("SEND-*.csv"))
    times = {"old": [], "new": []}
    for _ in range(args.repeat):
        for label, include in (("old", old), ("new", new)):
            times[label].append(run(include, ["check", *files]))
    old_s, new_s = statistics.median(times["old"]), statistics.median(times["new"])
    print(
        f"check   {'SEND files':13} old {old_s:6.2f} s  new {new_s:6.2f} s  new/old {new_s / old_s:.2f}"
    )


if __name__ == "__main__":
    main()
