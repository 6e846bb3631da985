"""Price lists and cost estimates: exact figures, and hostile price files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdrop.errors import InputError
from smsdrop.pricing import DEFAULT_PRICES, PriceList, SegmentTally, budget_problem

PRICES = PriceList("EUR", {"FR": Decimal("0.05"), "BE": Decimal("0.1")})


def _tally() -> SegmentTally:
    tally = SegmentTally()
    # Two batches: FR 190 gsm7 + 10 ucs2 segments, BE 15 gsm7 + 10 ucs2.
    tally.add(pa.array(["FR"] * 90 + ["BE"] * 5), pa.array(["gsm7"] * 95), pa.array([2] * 95))
    tally.add(
        pa.array(["FR", "FR", "BE", "BE"]),
        pa.array(["gsm7", "ucs2", "gsm7", "ucs2"]),
        pa.array([10, 10, 5, 10]),
    )
    return tally


def test_the_estimate_by_country_and_by_encoding() -> None:
    cost = PRICES.cost(_tally())
    assert cost.as_dict() == {
        "currency": "EUR",
        "total": 12.5,
        "by_country": {"BE": 2.5, "FR": 10.0},
        "by_encoding": {"gsm7": 11.0, "ucs2": 1.5},
    }
    assert cost.total == Decimal("12.50")


def test_an_unlisted_country_takes_the_default_or_is_an_error(tmp_path: Path) -> None:
    tally = SegmentTally()
    tally.add(pa.array(["US"]), pa.array(["gsm7"]), pa.array([3]))
    with pytest.raises(InputError, match="no price for US and no default"):
        PRICES.cost(tally)
    with_default = PriceList("EUR", PRICES.countries, Decimal("0.10"))
    assert with_default.cost(tally).as_dict()["total"] == pytest.approx(0.3)


def test_the_shipped_example_is_marked_and_loads() -> None:
    text = DEFAULT_PRICES.read_text()
    assert "EXAMPLE PRICES" in text
    prices = PriceList.load(DEFAULT_PRICES)
    assert (prices.currency, prices.default) == ("EUR", Decimal("0.1"))
    assert prices.countries == {"FR": Decimal("0.045"), "BE": Decimal("0.07")}


def test_budget_cap() -> None:
    cost = PRICES.cost(_tally())
    assert budget_problem(cost, None) is None
    assert budget_problem(cost, 12.5) is None
    problem = budget_problem(cost, Decimal(12))
    assert problem is not None
    assert "estimated cost 12.50 EUR is over the cap max_cost=12 EUR" in problem


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("currency: EUR\ncountries: {FR: -1}\n", "field countries.FR: must be a price", None),
        ("currency: EUR\ncountries: {FR: true}\n", "field countries.FR: must be a price", None),
        ("currency: EUR\ncountries: {FR: .nan}\n", "field countries.FR: must be a price", None),
        ("currency: euro\n", "field currency: must be a 3-letter currency code", None),
        ("currency: EUR\ncountries: {France: 1}\n", "France is not an ISO 3166", None),
        ("currency: EUR\nprice: 1\n", "unknown key(s): price", None),
        ("- EUR\n", "must be a mapping", None),
        ("currency: EUR\ncountries: {FR: [1\n", "not valid YAML", 3),
        ("currency: EUR\ndefault: abc\n", "field default: must be a price", None),
    ],
)
def test_bad_price_lists_name_the_file_and_field(
    tmp_path: Path, text: str, fragment: str, line: int | None
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        PriceList.load(path)
    assert fragment in str(caught.value)
    assert caught.value.file == str(path)
    assert caught.value.line == line


def test_unreadable_and_huge_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the price list"):
        PriceList.load(tmp_path / "missing.yaml")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (2 << 20))
    with pytest.raises(InputError, match="not a price list"):
        PriceList.load(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not UTF-8"):
        PriceList.load(binary)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_give_a_price_list_or_a_clear_error(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "prices.yaml"
    path.write_bytes(data)
    try:
        prices = PriceList.load(path)
    except InputError as error:
        assert error.file == str(path)
    else:
        assert len(prices.currency) == 3
