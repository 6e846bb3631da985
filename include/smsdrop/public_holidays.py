"""Public holidays per country and subdivision: the ``holidays`` package's, kept as data.

Why a table: building a calendar with the package imports every calendar it has (Chinese,
Tibetan, Hindu…) and costs ~0.2 s, more than all the rest of ``smsdrop window``. The
years a campaign plans for (:data:`TABLE_YEARS`) of every French calendar are therefore
written once to ``smsdrop/data/public_holidays.json`` (``python -m smsdrop.public_holidays``),
named in French as the package names them; any other country, subdivision or year asks the
package itself. ``tests/smsdrop/test_public_holidays.py`` checks that the table is exactly
what the installed package says, so a new ``holidays`` release cannot drift from it
unseen: regenerate the table when that test fails.
"""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import holidays

#: The years held as data.
TABLE_YEARS: Final = (2020, 2050)
#: The countries held as data, every subdivision included.
TABLE_COUNTRIES: Final = ("FR",)
TABLE_FILE: Final = "data/public_holidays.json"


class Calendar:
    """The public holidays of one country (and subdivision): :meth:`get` a day's name."""

    def __init__(
        self,
        country: str,
        subdivision: str | None,
        days: dict[str, str] | None,
        years: tuple[int, int],
    ) -> None:
        self.country, self.subdivision = country, subdivision
        self._days, self.start_year, self.end_year = days, *years

    def get(self, day: date) -> str | None:
        """The holiday's name on ``day``, or None."""
        first, last = TABLE_YEARS
        if self._days is not None and first <= day.year <= last:
            return self._days.get(day.isoformat())
        return package_calendar(self.country, self.subdivision).get(day)


@cache
def calendar(country: str, subdivision: str | None) -> Calendar:
    """The calendar of ``country``/``subdivision``; ValueError if the package knows none."""
    entry = _table()["calendars"].get(_key(country, subdivision))
    if entry is None:
        package = package_calendar(country, subdivision)
        return Calendar(country, subdivision, None, (package.start_year, package.end_year))
    return Calendar(country, subdivision, entry["days"], tuple(entry["years"]))


@cache
def package_calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    """The ``holidays`` package's calendar, named in the country's own language ("Noël")."""
    import holidays

    try:
        cls = holidays.country_holidays(country, subdiv=subdivision)
        return holidays.country_holidays(country, subdiv=subdivision, language=cls.default_language)
    except NotImplementedError as exc:
        raise ValueError(f"holidays for {country!r} subdivision {subdivision!r}: {exc}") from None


def build_table() -> dict[str, Any]:
    """The table from the installed ``holidays`` package."""
    import holidays

    first, last = TABLE_YEARS
    calendars: dict[str, Any] = {}
    for country in TABLE_COUNTRIES:
        for subdivision in (None, *holidays.country_holidays(country).subdivisions):
            package = package_calendar(country, subdivision)
            days = {
                day.isoformat(): package.get(day)
                for year in range(first, last + 1)
                for day in sorted(package.__class__(years=year, subdiv=subdivision,
                                                    language=package.language))
            }  # fmt: skip
            calendars[_key(country, subdivision)] = {
                "years": [package.start_year, package.end_year],
                "days": days,
            }
    return {"holidays": holidays.__version__, "years": list(TABLE_YEARS), "calendars": calendars}


@cache
def _table() -> dict[str, Any]:
    return json.loads((resources.files("smsdrop") / TABLE_FILE).read_text(encoding="utf-8"))


def _key(country: str, subdivision: str | None) -> str:
    return country if subdivision is None else f"{country}/{subdivision}"


if __name__ == "__main__":
    path = resources.files("smsdrop") / TABLE_FILE
    text = json.dumps(build_table(), ensure_ascii=False, indent=0, sort_keys=True)
    with resources.as_file(path) as target:
        target.parent.mkdir(exist_ok=True)
        target.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {target}")
