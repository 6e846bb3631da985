"""Opt-outs published after the SEND files were written: each file knows the audience row
of each record (its row map), and a number opted out since is removed before the upload."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from smsdrop import synthetic
from smsdrop.campaign import late_optouts, rows_path, write_row_maps
from smsdrop.csvfile import read_records
from smsdrop.msisdn import classify
from smsdrop.prepare import prepare
from tests.campaigns import campaign_spec

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CAMPAIGN = campaign_spec(
    campaign_id="late",
    message='Hi {first_name}; "{city}"',
    send_at=datetime(2026, 11, 30, 9, tzinfo=UTC).isoformat(),
)


@pytest.fixture
def prepared(tmp_path):
    """5,000 people (with faults) prepared into 1,000-record files, with their row maps."""
    frame = synthetic.audience(5_000, seed=11)
    synthetic.write_audience(frame, tmp_path / "a.parquet")
    out = tmp_path / "out"
    summary = prepare(tmp_path / "a.parquet", CAMPAIGN, out, now=NOW, max_records=1_000)
    write_row_maps(out, summary)
    return frame, out, summary


def _records(path):
    return read_records(path.read_bytes(), path.name).table.to_pandas()


def test_row_maps_point_at_the_audience_rows(prepared) -> None:
    frame, out, summary = prepared
    assert len(summary.files) >= 3 and summary.rejected > 1_000
    e164 = classify(frame["msisdn"].astype("string[pyarrow]"))["e164"]
    for entry in summary.files:
        path = out / entry["name"]
        rows = np.load(rows_path(path))
        records = _records(path)
        assert len(rows) == len(records) == entry["rows"]
        assert (frame["idremote"].iloc[rows - 1].to_numpy() == records["idremote"]).all()
        assert (e164.iloc[rows - 1].to_numpy() == records["msisdn"]).all()
        assert oct(rows_path(path).stat().st_mode & 0o777) == "0o600"


def test_a_late_optout_is_removed_and_saved_as_the_reject_of_its_row(prepared) -> None:
    frame, out, summary = prepared
    path = out / summary.files[1]["name"]
    before = _records(path)
    rows_before = np.load(rows_path(path))
    late = before["msisdn"].iloc[[3, 700]].tolist()
    optouts = pd.Series([*late, "+33699999999"], dtype="string[pyarrow]")  # one not in it

    result = late_optouts(path, optouts)

    assert result is not None
    assert _records(path).equals(before)  # nothing written yet: the rejects go first
    result.write(path)
    after = _records(path)
    assert len(after) == len(before) - 2 == result.records
    assert not set(after["msisdn"]) & set(late)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.bytes == path.stat().st_size
    assert path.read_bytes().endswith(b"\r\n") and b'"' in path.read_bytes()  # quoting kept
    assert sorted(result.removed["msisdn"]) == sorted(late)
    assert set(result.removed["reason"]) == {"OPTED_OUT"}
    assert list(result.removed["row"]) == list(rows_before[[3, 700]])
    assert list(frame["idremote"].iloc[result.removed["row"] - 1]) == list(
        result.removed["idremote"]
    )
    rows_after = np.load(rows_path(path))
    assert len(rows_after) == len(after)
    assert (frame["idremote"].iloc[rows_after - 1].to_numpy() == after["idremote"]).all()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # Again: nothing left to remove, the file is not touched.
    mtime = path.stat().st_mtime_ns
    assert late_optouts(path, optouts) is None
    assert path.stat().st_mtime_ns == mtime


def test_a_file_without_late_optouts_is_left_alone(prepared) -> None:
    _, out, summary = prepared
    path = out / summary.files[0]["name"]
    data = path.read_bytes()
    assert late_optouts(path, pd.Series([], dtype="string[pyarrow]")) is None
    assert path.read_bytes() == data
