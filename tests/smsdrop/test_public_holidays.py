"""The holiday table is the ``holidays`` package's answer, kept as data for start-up speed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import holidays
import pytest

from smsdrop import public_holidays
from smsdrop.public_holidays import TABLE_YEARS, build_table, calendar
from smsdrop.windows import SUBDIVISION_ALIASES, WINDOWS


def test_the_table_is_what_the_installed_package_says() -> None:
    """Fails when a ``holidays`` release changes a French holiday: regenerate the table
    (``python -m smsdrop.public_holidays``) and review its diff."""
    stored = public_holidays._table()
    built = build_table()
    assert stored["years"] == list(TABLE_YEARS)
    assert stored["calendars"].keys() == built["calendars"].keys()
    for key, entry in built["calendars"].items():
        assert stored["calendars"][key] == entry, key


def test_every_window_and_alias_is_in_the_table() -> None:
    keys = public_holidays._table()["calendars"]
    for window in WINDOWS.values():
        assert public_holidays._key(window.holidays_country, window.subdivision) in keys
    for country, aliases in SUBDIVISION_ALIASES.items():
        for subdivision in aliases.values():
            assert public_holidays._key(country, subdivision) in keys


@pytest.mark.parametrize(
    ("country", "subdivision", "day", "name"),
    [
        ("FR", None, date(2026, 12, 25), "Noël"),
        ("FR", None, date(2026, 12, 26), None),
        ("FR", "6AE", date(2026, 12, 26), "Saint-Étienne"),
        ("FR", "974", date(2026, 12, 20), "Abolition de l'esclavage"),
        ("FR", None, date(2075, 7, 14), "Fête nationale"),  # outside the table: the package
        ("FR", None, date(2075, 7, 15), None),
        ("BE", None, date(2026, 7, 21), "Nationale feestdag"),  # not in the table
    ],
)
def test_a_day_by_table_or_package(country, subdivision, day, name) -> None:
    assert calendar(country, subdivision).get(day) == name


def test_the_package_answers_outside_the_table_and_refuses_what_it_does_not_know() -> None:
    assert (calendar("FR", None).start_year, calendar("FR", None).end_year) == (
        holidays.country_holidays("FR").start_year,
        holidays.country_holidays("FR").end_year,
    )
    with pytest.raises(ValueError, match="subdivision"):
        calendar("FR", "99")


def test_a_command_on_the_table_does_not_load_the_package() -> None:
    probe = (
        "import sys, json; from datetime import date; from smsdrop import windows; "
        "d = windows.check(__import__('datetime').datetime(2026, 12, 25, 10, "
        "tzinfo=__import__('datetime').timezone.utc), 'RE'); "
        "print(json.dumps([d.allowed, 'holidays' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert json.loads(done.stdout) == [False, False]
