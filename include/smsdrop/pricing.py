"""What a campaign will cost before it is sent, from a price list that is data.

The provider bills per SMS segment at send time, against the account's balance (spec,
"Destinations"): a campaign owner needs the estimate, and a cap, before anything leaves.
A price list is a YAML file (``include/prices.yaml`` is an example to replace)::

    currency: EUR
    default: 0.10        # countries not listed; without it, an unlisted country is an error
    countries: {FR: 0.045, BE: 0.07}

Sums are :class:`~decimal.Decimal` (a price times a segment count is exact), shown rounded
to :data:`CENTS_DIGITS` decimals; the segments are tallied per country and encoding as
batches stream (:class:`SegmentTally`), so the estimate costs one group-by a batch.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from smsdrop.errors import InputError, printable

__all__ = [
    "DEFAULT_PRICES",
    "BudgetExceeded",
    "Cost",
    "PriceList",
    "SegmentTally",
    "budget_problem",
]

#: The example price list shipped with smsdrop (replace it with the account's prices).
DEFAULT_PRICES: Final = Path(__file__).resolve().parents[1] / "prices.yaml"
#: Decimals kept in the figures a user sees (prices per segment have 3–4).
CENTS_DIGITS: Final = 4
MAX_FILE_BYTES: Final = 1 << 20
_COUNTRY = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_KEYS: Final = {"currency", "default", "countries"}


def _price(value: object, where: str, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(
            f"must be a price (a number ≥ 0), got {printable(value)}", file=path, field=where
        )
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise InputError(
            f"must be a price (a number ≥ 0), got {printable(value)}", file=path, field=where
        ) from None
    if not price.is_finite() or price < 0:
        raise InputError(
            f"must be a price (a number ≥ 0), got {printable(value)}", file=path, field=where
        )
    return price


@dataclass(frozen=True)
class PriceList:
    """Price of one segment per destination country (ISO 3166 alpha-2)."""

    currency: str
    countries: Mapping[str, Decimal]
    default: Decimal | None = None
    source: str = "prices"

    @classmethod
    def load(cls, path: Path) -> PriceList:
        """Read and check a price list; every refusal names the file and the field."""
        import yaml

        name = str(path)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise InputError(f"is over {MAX_FILE_BYTES} bytes: not a price list", file=name)
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot read the price list: {error.strerror}", file=name) from None
        except UnicodeDecodeError:
            raise InputError("is not UTF-8 text", file=name) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(error, "problem", None) or "not valid YAML"
            raise InputError(f"not valid YAML: {problem}", file=name, line=line) from None
        return cls.from_mapping(data, name)

    @classmethod
    def from_mapping(cls, data: object, source: str = "prices") -> PriceList:
        if not isinstance(data, dict):
            raise InputError("must be a mapping with currency, countries and default", file=source)
        unknown = sorted(str(k) for k in set(data) - _KEYS)
        if unknown:
            raise InputError(f"unknown key(s): {printable(', '.join(unknown))}", file=source)
        currency = data.get("currency")
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise InputError(
                f"must be a 3-letter currency code (EUR), got {printable(currency)}",
                file=source,
                field="currency",
            )
        countries = data.get("countries") or {}
        if not isinstance(countries, dict):
            raise InputError("must map country codes to prices", file=source, field="countries")
        prices: dict[str, Decimal] = {}
        for code, value in countries.items():
            if not isinstance(code, str) or not _COUNTRY.fullmatch(code):
                raise InputError(
                    f"{printable(code)} is not an ISO 3166 country code (FR, BE…)",
                    file=source,
                    field="countries",
                )
            prices[code] = _price(value, f"countries.{code}", source)
        default = data.get("default")
        return cls(
            currency,
            prices,
            None if default is None else _price(default, "default", source),
            source,
        )

    def price(self, country: str) -> Decimal:
        """One segment to ``country``; an unlisted country without a default is an error."""
        found = self.countries.get(country, self.default)
        if found is None:
            raise InputError(
                f"no price for {printable(country)} and no default: add it to the price list",
                file=self.source,
                field="countries",
            )
        return found

    def cost(self, tally: SegmentTally) -> Cost:
        """The estimate of everything tallied, by country and by encoding."""
        total = Decimal(0)
        by_country: Counter[str] = Counter()
        by_encoding: Counter[str] = Counter()
        for (country, encoding), segments in sorted(tally.segments.items()):
            amount = self.price(country) * segments
            total += amount
            by_country[country] += amount
            by_encoding[encoding] += amount
        return Cost(self.currency, total, dict(by_country), dict(by_encoding))


@dataclass
class SegmentTally:
    """Segments per (country, encoding), accumulated batch by batch."""

    segments: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, country: Any, encoding: Any, segments: Any) -> None:
        """Tally one batch: three equal-length Arrow arrays (or anything pyarrow takes)."""
        import pyarrow as pa

        table = pa.table({"country": country, "encoding": encoding, "segments": segments})
        if table.num_rows == 0:
            return
        grouped = table.group_by(["country", "encoding"]).aggregate([("segments", "sum")])
        for c, e, s in zip(
            grouped["country"].to_pylist(),
            grouped["encoding"].to_pylist(),
            grouped["segments_sum"].to_pylist(),
            strict=True,
        ):
            self.segments[(c or "", e)] += int(s)


@dataclass(frozen=True)
class Cost:
    """An estimate in one currency; :meth:`as_dict` is what summaries and JSON show."""

    currency: str
    total: Decimal
    by_country: dict[str, Decimal]
    by_encoding: dict[str, Decimal]

    def as_dict(self) -> dict[str, object]:
        def shown(amount: Decimal) -> float:
            return float(round(amount, CENTS_DIGITS))

        return {
            "currency": self.currency,
            "total": shown(self.total),
            "by_country": {k: shown(v) for k, v in sorted(self.by_country.items())},
            "by_encoding": {k: shown(v) for k, v in sorted(self.by_encoding.items())},
        }


class BudgetExceeded(InputError):
    """A campaign whose estimate is over its ``max_cost``: it stops before any upload."""


def budget_problem(cost: Cost, max_cost: Decimal | float | None) -> str | None:
    """Why the campaign must stop before the upload (its estimate is over the cap), or None."""
    if max_cost is None:
        return None
    cap = Decimal(str(max_cost))
    if cost.total <= cap:
        return None
    return (
        f"the estimated cost {round(cost.total, 2)} {cost.currency} is over the cap "
        f"max_cost={cap} {cost.currency}: nothing was sent; raise max_cost or narrow the audience"
    )
