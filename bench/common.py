"""Pieces the benchmarks share: the SFTP benchmarks' file and client key, and the
``smsdrop prepare`` command line with its reject-heavy audience."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from smsdrop.csvfile import encode_records
from smsdrop.sandbox.cli import serve_command

#: The campaign text of the prepare benchmarks (personalised, one template).
TEMPLATE = "Bonjour {first_name}, -20% ce samedi dans votre magasin de {city} ! STOP au 36111"
FIRST = ("Marie", "Jean", "Hélène", "Anaïs", "Léa", "Chloé", "Lucas", "Hugo", "Jérôme", "Emma")
CITY = ("Paris", "Lyon", "Marseille", "Nantes", "Besançon", "Nîmes", "Orléans", "Brest")


def send_file(path: Path, records: int, start: int = 0) -> Path:
    """A valid SEND file of distinct French mobiles and personalised texts, built once;
    its records are numbered from ``start`` on (files started apart: no number repeats)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1 + start)
    index = np.arange(start, start + records)
    first = np.array(FIRST)[rng.integers(0, len(FIRST), records)]
    city = np.array(CITY)[rng.integers(0, len(CITY), records)]
    msg = np.char.add(np.char.add(np.char.add("Bonjour ", first), ", -20% ce samedi a "), city)
    msg = np.char.add(msg, " sur tout le magasin, venez nombreux ! STOP au 36111")
    table = pa.table(
        {
            "idremote": pa.array(np.char.add("C", np.char.zfill(index.astype(str), 9))),
            "msisdn": pa.array(
                np.char.add("+336", np.char.zfill((10_000_000 + index).astype(str), 8))
            ),
            "oadc": pa.array(np.full(records, "SMSDROP")),
            "msg": pa.array(msg),
        }
    )
    path.write_bytes(encode_records(table))
    return path


def client_key(work: Path) -> Path:
    """An ed25519 client key under ``work`` (made once)."""
    key = work / "id_ed25519"
    if not key.exists():
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def sandbox_serve_command(root: Path, port: int, authorized: Path, start: str) -> list[str]:
    """``smsdrop sandbox serve`` in its own process, quiet, with the benchmark's client key."""
    return serve_command(
        root, port, "--authorized-keys", str(authorized), "--start", start, "-q",
        "--scratch", "bench",
    )  # fmt: skip


def reject_heavy(clean: Path, path: Path) -> Path:
    """``clean``'s audience with 60 % non-GSM first names (``MSG_NOT_GSM`` under the
    ``reject`` policy) and 8 % invalid numbers: most rows go to the rejects."""
    if path.exists():
        return path
    table = pq.read_table(clean)
    rows = table.num_rows
    rng = np.random.default_rng(11)
    names = np.array(table["first_name"].to_pylist(), dtype=object)
    names[rng.random(rows) < 0.60] = "Zoë Ŝtraße 😀"
    numbers = np.array(table["msisdn"].to_pylist(), dtype=object)
    numbers[rng.random(rows) < 0.08] = "+33 1 23"
    for name, values in (("first_name", names), ("msisdn", numbers)):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pa.array(values, pa.string()))
    pq.write_table(table, path)
    return path


def prepare_args(audience: Path, out: Path, policy: str) -> list[str]:
    """``smsdrop prepare``'s arguments for the benchmarks' campaign (``out`` emptied)."""
    shutil.rmtree(out, ignore_errors=True)
    return [
        "prepare", str(audience), "--service-id", "12345", "--campaign", "bench",
        "--sender", "SMSDROP", "--message", TEMPLATE, "--encoding-policy", policy,
        "--send-at", "2026-12-01T09:00:00+01:00", "--out", str(out),
    ]  # fmt: skip
