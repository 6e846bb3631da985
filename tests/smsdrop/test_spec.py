"""The campaign spec: checked once from what a user gave, carried whole through XCom, and
every field's rule read from one table (smsdrop.fields)."""

from __future__ import annotations

import json
from dataclasses import fields as dataclass_fields
from dataclasses import replace

import pytest

from smsdrop import fields, naming
from smsdrop.errors import InputError
from smsdrop.gsm import EncodingPolicy
from smsdrop.record_rules import FIELD_PATTERNS, Rules
from smsdrop.spec import CampaignSpec

GOOD = {
    "campaign_id": "spring",
    "service_id": "12345",
    "audience": "audience",
    "message": "Bonjour {first_name}",
    "sender": "SHOP",
}


def test_a_good_request_is_taken_and_names_its_columns() -> None:
    request = CampaignSpec.from_mapping({**GOOD, "send_at": "2026-12-01T10:00"})
    assert request.columns() == ["idremote", "msisdn", "first_name"]
    assert request.send_time().utcoffset().total_seconds() == 3600  # naive = Paris (CET)
    assert CampaignSpec.from_mapping({**GOOD, "send_at": None}).send_time() is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"campaign_id": "spring-2026"}, "campaign_id"),
        ({"service_id": "123"}, "service_id"),
        ({"sender": ""}, "sender"),
        ({"encoding_policy": "latin1"}, "encoding_policy"),
        ({"window_end": "8pm"}, "window_end"),
        ({"send_at": "tomorrow"}, "send_at"),
        ({"message": "Hi {first name}"}, "MSG"),
        ({"audience": "../../etc/passwd.sql"}, "audience"),
    ],
)
def test_a_bad_request_names_the_field(change: dict, field: str) -> None:
    with pytest.raises(InputError) as caught:
        CampaignSpec.from_mapping({**GOOD, **change})
    assert caught.value.field == field, str(caught.value)


def test_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(InputError, match="unknown campaign parameter"):
        CampaignSpec.from_mapping({**GOOD, "sendat": "2026-12-01T10:00+01:00"})


def test_the_spec_has_the_table_s_fields_in_order_with_its_defaults() -> None:
    attributes = dataclass_fields(CampaignSpec)
    assert [a.name for a in attributes] == [f.name for f in fields.CAMPAIGN]
    for attribute in attributes:
        rule = fields.BY_NAME[attribute.name]
        if rule.required:
            assert attribute.default is attribute.default_factory  # both MISSING
        else:
            assert attribute.default == rule.default, attribute.name


def test_the_xcom_round_trip_gives_the_same_spec() -> None:
    spec = CampaignSpec.from_mapping(
        {**GOOD, "send_at": "2026-12-01T10:00", "long_sms": True, "window_end": "20:00"}
    )
    data = json.loads(json.dumps(spec.to_dict()))  # what XCom stores
    assert CampaignSpec.from_dict(data) == spec
    assert data == {f.name: getattr(spec, f.name) for f in fields.CAMPAIGN}


def test_the_campaign_rules_are_derived_from_the_spec() -> None:
    spec = CampaignSpec.from_mapping({**GOOD, "encoding_policy": "ucs2", "long_sms": True})
    assert spec.rules() == Rules(EncodingPolicy.UCS2, True, "FR")
    assert spec.narrowed_end is None  # 22:00: each country keeps its own window
    assert replace(spec, window_end="20:00").narrowed_end == "20:00"


def _bad_value(rule: fields.Field) -> object:
    if rule.type == "integer":
        return int(rule.maximum or 0) + 1
    if rule.type == "boolean":
        return "yes"
    if rule.choices:
        return "nope"
    if rule.pattern is not None:
        return "no such value!"
    return 12345  # not text


@pytest.mark.parametrize("rule", fields.CAMPAIGN, ids=lambda rule: rule.name)
def test_a_refusal_names_its_field(rule: fields.Field) -> None:
    with pytest.raises(InputError) as caught:
        CampaignSpec.from_mapping({**GOOD, rule.name: _bad_value(rule)})
    assert caught.value.field == rule.name, str(caught.value)
    if rule.required:
        with pytest.raises(InputError, match="is required") as caught:
            CampaignSpec.from_mapping({**GOOD, rule.name: " "})
        assert caught.value.field == rule.name


def test_file_names_and_records_use_the_table_s_patterns() -> None:
    parts = {p.label: p for p in naming.PARTS}
    assert parts["SERVICEID"].regex.pattern == fields.SERVICE_ID.pattern
    assert parts["CAMPAIGNID"].regex.pattern == fields.CAMPAIGN_ID.pattern
    assert parts["CAMPAIGNID"].expected == fields.CAMPAIGN_ID.expected
    assert FIELD_PATTERNS == {"idremote": fields.IDREMOTE.pattern, "oadc": fields.SENDER.pattern}
    with pytest.raises(InputError) as caught:
        CampaignSpec.from_mapping({**GOOD, "campaign_id": "spring-2026"})
    assert caught.value.reason == "expected 1 to 20 ASCII letters or digits, found 'spring-2026'"
