"""The whole preparation: every row ends in a SEND file or the rejects, with a reason."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pandas as pd
import pytest

from smsdrop import naming, synthetic
from smsdrop.csvfile import read_records
from smsdrop.errors import InputError
from smsdrop.gsm import EncodingPolicy
from smsdrop.intake_check import check_file
from smsdrop.prepare import first_allowed_slot, read_optouts, render, template_fields
from smsdrop.prepare import prepare as _prepare
from smsdrop.record_rules import Rules
from tests.campaigns import campaign_spec

MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 10:00 in Paris
CAMPAIGN = campaign_spec(message="Bonjour {first_name} de {city}", send_at=MONDAY_9.isoformat())
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # the Saturday before: MONDAY_9 is ahead


def prepare(*args, **kwargs):
    """``prepare`` with the clock at :data:`NOW` (a send time in the past plans from now)."""
    return _prepare(*args, **{"now": NOW, **kwargs})


def write(frame: pd.DataFrame, path) -> object:
    return synthetic.write_audience(frame, path)


def send_rows(out) -> pd.DataFrame:
    tables = [
        read_records(p.read_bytes(), p.name).table.to_pandas()
        for p in sorted(out.glob("SEND-*.csv"))
    ]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def test_template_fields_and_render() -> None:
    assert template_fields("Hi {name}, {{literal}} {city}!") == ["name", "city"]
    frame = pd.DataFrame(
        {"name": ["Ann", None, " "], "city": ["Lyon", "Nantes", "Brest"]}, dtype="string[pyarrow]"
    )
    message, missing = render("Hi {name}, {{x}} {city}!", frame)
    assert message.tolist() == ["Hi Ann, {x} Lyon!", "Hi , {x} Nantes!", "Hi  , {x} Brest!"]
    assert missing.tolist() == [False, True, True]


@pytest.mark.parametrize("template", ["{0}", "{a!r}", "{a:>5}", "{", "{a.b}"])
def test_template_with_anything_but_plain_columns_is_refused(template) -> None:
    with pytest.raises(InputError, match="template"):
        template_fields(template)


def test_every_row_lands_once_with_its_reason(tmp_path) -> None:
    frame = synthetic.audience(20_000, seed=3)
    audience = write(frame, tmp_path / "a.parquet")
    optouts = synthetic.optouts_for(frame, share=0.02)
    summary = prepare(
        audience,
        CAMPAIGN,
        tmp_path / "out",
        optouts=read_optouts(_csv(optouts, tmp_path)),
        batch_size=3_000,
    )
    sent = send_rows(tmp_path / "out")
    rejects = pd.read_csv(tmp_path / "out" / "rejects.csv", dtype=str)
    assert summary.recipients == len(frame) == len(sent) + len(rejects)
    # Each audience row is referenced exactly once: by its idremote in a SEND file or by
    # its row number in the rejects.
    sent_rows = frame.reset_index().set_index("idremote").loc[sent["idremote"], "index"] + 1
    assert sorted([*sent_rows.tolist(), *rejects["row"].astype(int).tolist()]) == list(
        range(1, len(frame) + 1)
    )
    assert sent["msisdn"].is_unique
    assert set(rejects["reason"]) >= {
        "MSISDN_INVALID",
        "MSISDN_NOT_MOBILE",
        "MSISDN_DUPLICATE",
        "IDREMOTE_INVALID",
        "OPTED_OUT",
    }
    assert summary.rejects_by_reason == rejects["reason"].value_counts().sort_index().to_dict()
    # No opted-out number is sent, and masked numbers only in the rejects.
    opted = set(read_optouts(_csv(optouts, tmp_path)))
    assert not set(sent["msisdn"]) & opted
    assert (rejects["msisdn"].fillna("").str.count(r"\d") <= 5).all()
    assert rejects["msisdn"].str.contains("*", regex=False).all()
    # The SEND files pass the provider's checks.
    for path in (tmp_path / "out").glob("SEND-*.csv"):
        assert check_file(path, Rules(EncodingPolicy.UCS2)).ok
    stored = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert stored["valid"] == summary.valid == len(sent)


def test_duplicates_keep_the_first_occurrence_across_batches(tmp_path) -> None:
    frame = pd.DataFrame(
        {
            "idremote": ["A1", "A2", "A3", "A4", "A5"],
            "msisdn": ["+33612345678", "0612345679", "06 12 34 56 78", "bad", "0033612345679"],
            "first_name": ["a", "b", "c", "d", "e"],
            "city": ["x"] * 5,
        }
    )
    summary = prepare(write(frame, tmp_path / "a.csv"), CAMPAIGN, tmp_path / "o", batch_size=2)
    sent = send_rows(tmp_path / "o")
    assert sent["idremote"].tolist() == ["A1", "A2"]
    assert summary.rejects_by_reason == {"MSISDN_DUPLICATE": 2, "MSISDN_INVALID": 1}


def test_split_into_files_with_distinct_names(tmp_path) -> None:
    frame = synthetic.audience(2_500, faults=synthetic.Faults(0, 0, 0, 0))
    campaign = replace(CAMPAIGN, encoding_policy=EncodingPolicy.UCS2.value)
    summary = prepare(
        write(frame, tmp_path / "a.parquet"), campaign, tmp_path / "o", max_records=1_000
    )
    names = [naming.parse_name(f["name"]) for f in summary.files]
    assert [f["rows"] for f in summary.files] == [1_000, 1_000, 500]
    assert len({n.campaign_id for n in names}) == 3
    assert all(n.local == datetime(2026, 11, 30, 10, 0) for n in names)


def test_send_time_outside_the_window_moves_to_the_next_allowed_minute(tmp_path) -> None:
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    frame = synthetic.audience(10, faults=synthetic.Faults(0, 0, 0, 0))
    campaign = replace(CAMPAIGN, send_at=sunday.isoformat())
    summary = prepare(write(frame, tmp_path / "a.parquet"), campaign, tmp_path / "o")
    assert summary.send_at == "2026-11-30T08:00:00+01:00"
    assert summary.files[0]["name"] == "SEND-12345-20261130-0800-promo.csv"
    assert first_allowed_slot(sunday, ["FR"], "20:00") == datetime.fromisoformat(
        "2026-11-30T08:00:00+01:00"
    )


def test_no_valid_recipient_writes_no_file(tmp_path) -> None:
    frame = pd.DataFrame(
        {"idremote": ["A"], "msisdn": ["nope"], "first_name": ["x"], "city": ["y"]}
    )
    summary = prepare(write(frame, tmp_path / "a.csv"), CAMPAIGN, tmp_path / "o")
    assert summary.files == [] and summary.rejected == 1
    assert not list((tmp_path / "o").glob("SEND-*"))


def test_bad_input_is_a_clear_error(tmp_path) -> None:
    frame = pd.DataFrame({"idremote": ["A"], "phone": ["0612345678"]})
    with pytest.raises(InputError, match="lacks column.*msisdn"):
        prepare(write(frame, tmp_path / "a.csv"), CAMPAIGN, tmp_path / "o")
    with pytest.raises(InputError, match="SERVICEID"):
        prepare(
            tmp_path / "a.csv",
            replace(CAMPAIGN, service_id="12"),
            tmp_path / "o",
        )
    (tmp_path / "b.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="Parquet"):
        prepare(tmp_path / "b.parquet", CAMPAIGN, tmp_path / "o")


def test_numbers_with_a_leading_zero_survive_csv_type_inference(tmp_path) -> None:
    frame = pd.DataFrame(
        {"idremote": ["A"], "msisdn": ["0612345678"], "first_name": ["x"], "city": ["y"]}
    )
    summary = prepare(write(frame, tmp_path / "a.csv"), CAMPAIGN, tmp_path / "o")
    assert send_rows(tmp_path / "o")["msisdn"].tolist() == ["+33612345678"]
    assert summary.valid == 1


def _csv(numbers: pd.Series, tmp_path) -> object:
    path = tmp_path / "optouts.csv"
    numbers.rename("msisdn").to_frame().to_csv(path, index=False)
    return path
