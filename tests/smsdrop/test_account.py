"""The account's options from connection extras: checked, and one to one with the sandbox."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdrop.account import ACCOUNT_EXTRAS, Account
from smsdrop.errors import InputError


def test_defaults_are_the_spec_no_option_activated() -> None:
    account = Account.from_extras({"host_key": "ssh-ed25519 AAAA", "send_dir": "Send"})
    assert account == Account()
    assert (account.marketing, account.long_sms, account.unicode) == (True, False, False)
    assert account.mention is None


def test_extras_as_json_booleans_or_strings() -> None:
    account = Account.from_extras(
        {
            "service_id": "SVC01",
            "marketing": "false",
            "long_sms": True,
            "unicode": "yes",
            "optout_short_code": 36111,
        }
    )
    assert account == Account("SVC01", False, True, True, "36111")
    assert account.mention == "STOP au 36111"
    assert Account(optout_short_code="36111", optout_mention="STOP 36111").mention == "STOP 36111"


@pytest.mark.parametrize(
    ("extras", "message"),
    [
        ({"marketing": "maybe"}, "extra marketing: must be true or false, got maybe"),
        ({"long_sms": 2}, "extra long_sms: must be true or false, got 2"),
        ({"service_id": "SVC"}, "extra service_id: must be exactly 5 ASCII letters or digits"),
        ({"service_id": "SVC0é"}, "extra service_id: must be exactly 5 ASCII letters or digits"),
        ({"optout_short_code": "36 111"}, "must be a short code of 4 to 8 digits"),
        ({"optout_short_code": True}, "extra optout_short_code: must be text"),
        ({"optout_mention": "x" * 61}, "extra optout_mention: must be 1 to 60 characters"),
        ({"optout_mention": "STOP\x1b[2J"}, "must be 1 to 60 characters, got STOP\\x1b[2J"),
        ({"unicode": ["yes"]}, "extra unicode: must be true or false"),
    ],
)
def test_bad_extras_name_the_connection_and_the_extra(
    extras: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError) as caught:
        Account.from_extras(extras, "mtarget_prod")
    assert "connection 'mtarget_prod'" in str(caught.value)
    assert message in str(caught.value)


def test_campaign_options_only_where_the_account_allows() -> None:
    assert Account().campaign_problems(long_sms=False, ucs2=False) == []
    problems = dict(Account().campaign_problems(long_sms=True, ucs2=True))
    assert set(problems) == {"long_sms", "encoding_policy"}
    assert Account(long_sms=True, unicode=True).campaign_problems(long_sms=True, ucs2=True) == []


def test_the_sandbox_options_map_one_to_one() -> None:
    from smsdrop.sandbox.config import SandboxConfig

    sandbox = {f.name: f.default for f in dataclasses.fields(SandboxConfig)}
    options = Account().sandbox_options()
    assert options and set(options) <= set(ACCOUNT_EXTRAS)
    for name, value in options.items():
        assert sandbox[name] == value, name  # same name, same default
    wider = Account("SVC01", False, True, True).sandbox_options()
    assert wider == {"service_id": "SVC01", "marketing": False, "long_sms": True, "unicode": True}


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*ACCOUNT_EXTRAS, "other"]),
        st.none() | st.booleans() | st.integers() | st.text(max_size=70) | st.lists(st.integers()),
    )
)
def test_any_extras_give_an_account_or_a_clear_error(extras: dict[str, object]) -> None:
    try:
        account = Account.from_extras(extras)
    except InputError as error:
        assert str(error).startswith("connection 'mtarget_default' extra ")
    else:
        assert isinstance(account.marketing, bool)
