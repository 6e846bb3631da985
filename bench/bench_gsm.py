"""Benchmark of ``smsdrop.gsm.check_messages`` against a straightforward per-row Python loop.

Two campaign shapes of 1,000,000 rows: one template (every row the same ~100-char French
text) and personalised texts (every row distinct: first name, amount, code; ~100-120 chars,
about three quarters need UCS-2 or transliteration). ``check_messages`` is timed as the
median of several runs. The baseline is what one would write first: for each row,
``transliterate`` (under that policy) then ``text_facts`` and the reason rules, in Python. It
takes ~10 s a million rows, so it runs on 100,000 rows and is scaled up (it is linear: no
state between rows).

Run: ``cd /work/main && PYTHONPATH=include .venv/bin/python bench/bench_gsm.py [rows]``
(or ``make bench``, which runs every benchmark in turn).
"""

from __future__ import annotations

import statistics
import sys
import time
from functools import partial

import numpy as np
import pandas as pd

from smsdrop.gsm import (
    GSM_BASIC,
    GSM_EXTENSION,
    MAX_LONG_SEGMENTS,
    EncodingPolicy,
    check_messages,
    text_facts,
    transliterate,
)
from smsdrop.reasons import Reason

ROWS = 1_000_000
BASELINE_ROWS = 100_000
RUNS = 5
SEED = 20261125
POLICIES = (EncodingPolicy.REJECT, EncodingPolicy.TRANSLITERATE)

TEMPLATE = (
    "Bonjour Hélène, la fête des mères approche : -20% sur tout le magasin jusqu’au 12/05 "
    "avec le code FETE20. STOP au 36111"
)
GREETINGS = ("Bonjour ", "Salut ", "Chère ", "Cher ", "")
FIRST_NAMES = (
    "Marie", "Jérôme", "François", "Hélène", "Loïc", "Anaïs", "Zoé", "Gaëlle", "Noël", "Benoît",
    "Léa", "Chloé", "Thomas", "Cécile", "Raphaël", "Jean", "Ève", "Maëlle", "Céline", "Paul",
)  # fmt: skip
OFFERS = (
    ", profitez de -",
    ", votre fidélité est récompensée : ",
    ", la fête des mères approche ! Découvrez nos idées cadeaux à -",
    " ! Ce week-end, ventes privées jusqu'à -",
    ", goûtez notre nouvelle crêpe « caramel » à -",
    ", vos 10€ offerts dès 50€ d'achat et -",
)
CLOSINGS = (
    "% jusqu’au 12/03 avec le code ",
    "% sur tout le magasin, le 14/03 seulement. Réf ",
    "% avant dimanche… Code ",
    "% dès 30€ d'achat. Code ",
)


def personalised(rows: int, seed: int = SEED) -> pd.Series:
    """Distinct French marketing texts, built with vectorised string concatenation."""
    rng = np.random.default_rng(seed)

    def pick(options: tuple[str, ...]) -> pd.Series:
        chosen = np.array(options, dtype=object)[rng.integers(0, len(options), rows)]
        return pd.Series(chosen, dtype="str")

    def number(low: int, high: int) -> pd.Series:
        return pd.Series(rng.integers(low, high, rows).astype(str), dtype="str")

    return (
        pick(GREETINGS) + pick(FIRST_NAMES) + pick(OFFERS) + number(5, 70) + pick(CLOSINGS)
        + "X" + number(10**7, 10**8) + ". STOP au 36111"
    )  # fmt: skip


def per_row_loop(msgs: list[str | None], policy: EncodingPolicy, long_sms: bool) -> list:
    """The straightforward way: the per-text reference functions on every row."""
    limit = MAX_LONG_SEGMENTS if long_sms else 1
    out = []
    for msg in msgs:
        if msg is None:
            out.append((None, "gsm7", 0, Reason.MSG_EMPTY))
            continue
        final = transliterate(msg) if policy is EncodingPolicy.TRANSLITERATE else msg
        facts = text_facts(final)
        reason = None
        if not final.strip():
            reason = Reason.MSG_EMPTY
        elif not facts.gsm7 and policy is not EncodingPolicy.UCS2:
            reason = Reason.MSG_NOT_GSM
        elif facts.segments > limit:
            reason = Reason.MSG_TOO_LONG
        out.append((final, facts.encoding, facts.segments, reason))
    return out


def minimal_loop(msgs: list[str | None]) -> list:
    """Less than the job, for scale: septets and a GSM flag only (no UCS-2, no exact walk)."""
    septets_of = {c: 1 for c in GSM_BASIC if c != "\x1b"} | {c: 2 for c in GSM_EXTENSION}
    out = []
    for msg in msgs:
        septets, gsm7 = 0, True
        for char in msg or "":
            septets_char = septets_of.get(char)
            if septets_char is None:
                gsm7 = False
                break
            septets += septets_char
        out.append((gsm7, septets))
    return out


def median_seconds(fn, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else ROWS
    shapes = {
        "one template": pd.Series([TEMPLATE] * rows, dtype="str"),
        "distinct texts": personalised(rows),
    }
    print(f"rows: {rows:,}; check_messages median of {RUNS} runs; per-row Python loop timed on "
          f"{BASELINE_ROWS:,} rows and scaled x{rows / BASELINE_ROWS:g}")  # fmt: skip
    for shape, msgs in shapes.items():
        distinct = msgs.nunique()
        chars = msgs.str.len().mean()
        ucs2 = (check_messages(msgs, EncodingPolicy.UCS2, True)["encoding"] == "ucs2").mean()
        print(f"\n{shape}: {distinct:,} distinct, {chars:.0f} chars on average, "
              f"{ucs2:.0%} not GSM-7 as written")  # fmt: skip
        sample = msgs.iloc[:BASELINE_ROWS].tolist()
        for policy in POLICIES:
            ours = median_seconds(partial(check_messages, msgs, policy, True))
            started = time.perf_counter()
            per_row_loop(sample, policy, True)
            theirs = (time.perf_counter() - started) * rows / len(sample)
            print(f"  {policy.value:<14} check_messages {ours:7.3f} s   per-row loop "
                  f"{theirs:7.2f} s (scaled)   ratio {theirs / ours:6.0f}x")  # fmt: skip
        started = time.perf_counter()
        minimal_loop(sample)
        minimal = (time.perf_counter() - started) * rows / len(sample)
        print(f"  (a minimal per-row loop, septets + GSM flag only: {minimal:.2f} s scaled, "
              f"{minimal / median_seconds(partial(check_messages, msgs, 'reject', True), 3):.0f}x"
              " check_messages under reject)")  # fmt: skip


if __name__ == "__main__":
    main()
