"""Send windows: boundaries, Sundays and holidays, DST, configuration, and a brute-force
oracle for next_allowed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdrop.windows import WINDOWS, SendWindow, check, next_allowed, window_for

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


# A plain week: Monday 2026-06-08 … Sunday 2026-06-14, no holiday.
WEEK = [date(2026, 6, 8) + timedelta(days=i) for i in range(7)]


@pytest.mark.parametrize("day", WEEK[:6], ids=lambda d: d.strftime("%A"))
@pytest.mark.parametrize(
    ("hhmmss", "allowed"),
    [
        ((0, 0, 0), False),
        ((7, 59, 0), False),
        ((7, 59, 59), False),
        ((8, 0, 0), True),
        ((12, 0, 0), True),
        ((21, 59, 0), True),
        ((21, 59, 59), True),
        ((22, 0, 0), False),
        ((23, 59, 0), False),
    ],
)
def test_hour_boundaries_monday_to_saturday(
    day: date, hhmmss: tuple[int, int, int], allowed: bool
) -> None:
    at = datetime.combine(day, time(*hhmmss), tzinfo=PARIS)
    decision = check(at)
    assert decision.allowed is allowed
    assert decision.reason == ("allowed" if allowed else "outside 08:00–22:00")
    if allowed:
        assert decision.next == at
    else:
        assert decision.next > at


def test_just_before_eight_and_just_before_ten() -> None:
    assert not check(paris(2026, 6, 8, 7, 59, 59, 999_999)).allowed
    assert check(paris(2026, 6, 8, 21, 59, 59, 999_999)).allowed


def test_sunday_is_closed_all_day() -> None:
    for hour in (0, 8, 12, 21):
        decision = check(paris(2026, 6, 14, hour))
        assert not decision.allowed and decision.reason == "Sunday"
        assert decision.next == paris(2026, 6, 15, 8)


def test_next_allowed_after_saturday_evening_is_monday_eight() -> None:
    assert next_allowed(paris(2026, 6, 13, 22)) == paris(2026, 6, 15, 8)
    assert next_allowed(paris(2026, 6, 13, 7)) == paris(2026, 6, 13, 8)
    assert next_allowed(paris(2026, 6, 13, 9, 30)) == paris(2026, 6, 13, 9, 30)


def test_monday_holiday_pushes_to_tuesday() -> None:
    # Saturday 23 May 2026 22:00; Sunday 24; Monday 25 is Pentecost Monday.
    assert next_allowed(paris(2026, 5, 23, 22)) == paris(2026, 5, 26, 8)
    # Easter: Saturday 4 April → Monday 6 April (Easter Monday) → Tuesday 7 April
    assert next_allowed(paris(2026, 4, 4, 22, 30)) == paris(2026, 4, 7, 8)


FR_2026 = {
    date(2026, 1, 1): "Jour de l'an",
    date(2026, 4, 6): "Lundi de Pâques",
    date(2026, 5, 1): "Fête du Travail",
    date(2026, 5, 8): "Fête de la Victoire",
    date(2026, 5, 14): "Ascension",
    date(2026, 5, 25): "Lundi de Pentecôte",
    date(2026, 7, 14): "Fête nationale",
    date(2026, 8, 15): "Assomption",
    date(2026, 11, 1): "Toussaint",
    date(2026, 11, 11): "Armistice",
    date(2026, 12, 25): "Noël",
}


def test_holidays_package_lists_what_we_expect() -> None:
    """Pinned: a holidays upgrade that changes the French list must be noticed."""
    listed = holidays.country_holidays("FR", years=2026, language="fr")
    assert dict(listed) == FR_2026


@pytest.mark.parametrize(("day", "name"), sorted(FR_2026.items()))
def test_public_holidays_are_closed(day: date, name: str) -> None:
    decision = check(datetime.combine(day, time(10), tzinfo=PARIS))
    assert not decision.allowed
    # 15 August 2026 is a Saturday (holiday wins), 1 November a Sunday (weekday wins).
    assert decision.reason in {f"public holiday: {name}", "Sunday"}
    assert decision.next > datetime.combine(day, time(23), tzinfo=PARIS)


def test_good_friday_and_26_december_only_in_alsace_moselle() -> None:
    good_friday, st_stephen = paris(2026, 4, 3, 10), paris(2026, 12, 26, 10)  # Fri, Sat
    assert check(good_friday).allowed and check(st_stephen).allowed
    for code in ("57", "67", "68", "6AE"):
        w = window_for("FR", subdivision=code)
        assert check(good_friday, window=w).reason == "public holiday: Vendredi saint"
        assert check(st_stephen, window=w).reason == "public holiday: Saint-Étienne"
    assert window_for("FR", subdivision="67").subdivision == "6AE"


def test_end_configurable_to_twenty() -> None:
    w = window_for("FR", end=time(20))
    assert w.label == "08:00–20:00" and w.holidays_country == "FR"
    assert check(paris(2026, 6, 8, 19, 59), window=w).allowed
    decision = check(paris(2026, 6, 8, 20, 0), window=w)
    assert not decision.allowed and decision.reason == "outside 08:00–20:00"
    assert decision.next == paris(2026, 6, 9, 8)
    assert WINDOWS["FR"].replace(end=time(20)) == w
    assert WINDOWS["FR"].end == time(22)  # the shared default is untouched


def test_duration_must_fit_in_the_same_window() -> None:
    assert check(paris(2026, 6, 8, 21), duration=timedelta(hours=1)).allowed
    late = check(paris(2026, 6, 8, 21), duration=timedelta(hours=1, minutes=1))
    assert not late.allowed
    assert late.reason == "a send of 1:01:00 from 21:00 ends after 22:00"
    assert late.next == paris(2026, 6, 9, 8)
    # before the window: the first slot is 08:00 that day
    assert next_allowed(paris(2026, 6, 8, 6), duration=timedelta(hours=14)) == paris(2026, 6, 8, 8)
    with pytest.raises(ValueError, match="never fits"):
        check(paris(2026, 6, 8, 9), duration=timedelta(hours=14, minutes=1))
    with pytest.raises(ValueError, match="negative"):
        check(paris(2026, 6, 8, 9), duration=timedelta(minutes=-1))


def test_dst_days() -> None:
    # Spring: Saturday 28 March 22:00 CET → Monday 30 March 08:00 CEST (06:00Z)
    assert next_allowed(paris(2026, 3, 28, 22)) == datetime(2026, 3, 30, 6, tzinfo=UTC)
    # Autumn: Saturday 24 October 22:00 CEST → Monday 26 October 08:00 CET (07:00Z)
    assert next_allowed(paris(2026, 10, 24, 22)) == datetime(2026, 10, 26, 7, tzinfo=UTC)
    # Both transitions fall on Sundays: a 7-day window is needed to see them.
    every_day = window_for("FR").replace(weekdays=frozenset(range(7)), holidays_country=None)
    assert check(datetime(2026, 3, 29, 5, 59, tzinfo=UTC), window=every_day).reason.startswith(
        "outside"
    )
    assert check(datetime(2026, 3, 29, 6, 0, tzinfo=UTC), window=every_day).allowed  # 08:00 CEST
    assert check(datetime(2026, 10, 25, 6, 59, tzinfo=UTC), window=every_day).allowed is False
    assert check(datetime(2026, 10, 25, 7, 0, tzinfo=UTC), window=every_day).allowed  # 08:00 CET
    full = every_day.replace(start=time(0), end=time(0))
    assert full.bounds(date(2026, 3, 29))[1] - full.bounds(date(2026, 3, 29))[0] == timedelta(
        hours=23
    )
    assert full.bounds(date(2026, 10, 25))[1] - full.bounds(date(2026, 10, 25))[0] == timedelta(
        hours=25
    )


def test_full_day_window_runs_through_midnight_until_a_closed_day() -> None:
    w = SendWindow("FR", "Europe/Paris", frozenset(range(7)), time(0), time(0), "FR")
    assert w.full_day and not w.unrestricted and w.label == "00:00–24:00"
    assert check(paris(2026, 6, 8, 23), window=w, duration=timedelta(hours=30)).allowed
    # 13 July 23:00 for 2 h runs into 14 July (holiday): first slot is 15 July 00:00
    blocked = check(paris(2026, 7, 13, 23), window=w, duration=timedelta(hours=2))
    assert not blocked.allowed and blocked.next == paris(2026, 7, 15, 0)


def test_unknown_country_is_always_allowed() -> None:
    for at in (paris(2026, 6, 14, 3), paris(2026, 12, 25, 23, 59)):
        decision = check(at, "US", duration=timedelta(days=3))
        assert decision == check(at, "us", duration=timedelta(days=3))
        assert decision.allowed and decision.next == at
        assert decision.reason == "allowed: no send window rules for US"
    assert window_for("BE").unrestricted
    limited = window_for("BE", end=time(20))  # overrides still apply
    assert not check(datetime(2026, 6, 14, 20, tzinfo=UTC), window=limited).allowed  # UTC


def test_other_timezones_in_are_converted() -> None:
    at = datetime(2026, 6, 8, 6, 0, tzinfo=UTC)  # 08:00 Paris
    assert check(at).allowed and check(at).next is at
    assert not check(at - timedelta(seconds=1)).allowed
    assert next_allowed(datetime(2026, 6, 8, 0, tzinfo=ZoneInfo("America/New_York"))) == at


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check(datetime(2026, 6, 8, 10))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"end": time(8)}, "must be after start"),
        ({"start": time(23), "end": time(22)}, "must be after start"),
        ({"start": time(8, 0, 30)}, "on the minute"),
        ({"weekdays": frozenset()}, "non-empty"),
        ({"weekdays": frozenset({7})}, "subset of 0..6"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"subdivision": "99"}, "subdivision"),
        ({"holidays_country": None, "subdivision": "57"}, "needs holidays_country"),
    ],
)
def test_invalid_windows_are_refused(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        WINDOWS["FR"].replace(**changes)


# --- brute-force oracle ------------------------------------------------------------------


@cache
def _holidays(country: str | None, subdivision: str | None) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision, years=range(2025, 2029))


def oracle(m: datetime, w: SendWindow, duration: timedelta = timedelta(0)) -> bool:
    """Independent restatement of the rule, minute by minute (FR-like windows only)."""
    tz = ZoneInfo(w.timezone)
    local, finish = m.astimezone(tz), (m + duration).astimezone(tz)
    cal = _holidays(w.holidays_country, w.subdivision)
    return (
        local.weekday() in w.weekdays
        and local.date() not in cal
        and w.start <= local.time()
        and local.time() < w.end
        and finish.date() == local.date()
        and finish.time() <= w.end
    )


CONFIGS = [WINDOWS["FR"], window_for("FR", end=time(20)), window_for("FR", subdivision="57")]


@settings(max_examples=120, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    st.sampled_from(CONFIGS),
    st.sampled_from([timedelta(0), timedelta(minutes=1), timedelta(hours=3)]),
)
def test_next_allowed_is_the_first_allowed_minute(
    naive: datetime, w: SendWindow, duration: timedelta
) -> None:
    x = naive.replace(tzinfo=UTC)
    n = next_allowed(x, window=w, duration=duration)
    assert n >= x
    assert check(n, window=w, duration=duration).allowed
    assert oracle(n, w, duration)
    assert check(x, window=w, duration=duration).allowed == oracle(x, w, duration)
    m = x.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while m < n:
        assert not oracle(m, w, duration), m
        m += timedelta(minutes=1)


# --- French numbers outside metropolitan France (docs/PROTOCOL.md) -----------------------

OVERSEAS = ["RE", "YT", "GP", "BL", "MF", "MQ", "GF", "PM", "PF", "NC", "WF"]


def test_every_french_overseas_calling_code_has_a_window() -> None:
    import phonenumbers

    codes = (262, 590, 594, 596, 508, 689, 687, 681)
    regions = {r for code in codes for r in phonenumbers.region_codes_for_country_code(code)}
    assert regions == set(OVERSEAS)
    for region in regions:
        w = WINDOWS[region]
        assert w.bound_by is WINDOWS["FR"] and w.chain == (w, WINDOWS["FR"])
        assert (w.start, w.end, w.weekdays) == (time(8), time(22), frozenset(range(6)))
        assert ZoneInfo(w.timezone).utcoffset(datetime(2026, 1, 1)) != timedelta(hours=1)


def test_reunion_is_bound_by_the_providers_paris_window() -> None:
    at = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # Monday 10:00 Réunion, 07:00 Paris
    decision = check(at, "RE")
    assert not decision.allowed
    assert decision.reason == "outside 08:00–22:00 in Europe/Paris (the provider's window)"
    assert decision.next == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # 08:00 Paris, 11:00 RE


def test_reunion_evening_is_its_own_window() -> None:
    at = datetime(2026, 12, 7, 18, 30, tzinfo=UTC)  # 22:30 Réunion, 19:30 Paris
    decision = check(at, "RE")
    assert decision.reason == "outside 08:00–22:00"
    # Tuesday 08:00 Réunion is 05:00 Paris: the first minute both allow is 08:00 Paris.
    assert decision.next == datetime(2026, 12, 8, 7, 0, tzinfo=UTC)


def test_local_holidays_close_the_territory_only() -> None:
    monday = datetime(2027, 12, 20, 10, 0, tzinfo=UTC)  # abolition of slavery, Réunion
    assert check(monday, "FR").allowed
    decision = check(monday, "RE")
    assert decision.reason == "public holiday: Abolition de l'esclavage"
    assert decision.next == datetime(2027, 12, 21, 7, 0, tzinfo=UTC)
    mi_careme = datetime(2026, 3, 12, 14, 0, tzinfo=UTC)  # Thursday, Guadeloupe only
    assert check(mi_careme, "FR").allowed and check(mi_careme, "MQ").allowed
    assert check(mi_careme, "GP").reason == "public holiday: Mi-Carême"


def test_new_caledonia_monday_morning_is_paris_sunday() -> None:
    at = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)  # Monday 07:00 Nouméa, Sunday 21:00 Paris
    decision = check(at, "NC")
    assert decision.reason == "outside 08:00–22:00"  # its own window first
    assert decision.next == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # 18:00 Nouméa
    later = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)  # Monday 09:00 Nouméa, Sunday in Paris
    assert check(later, "NC").reason == "Sunday in Europe/Paris (the provider's window)"


def test_polynesia_fits_between_paris_morning_and_tahiti_evening() -> None:
    at = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)  # Monday 12:00 Tahiti, 23:00 Paris
    # Tuesday 08:00 Paris is Monday 21:00 in Tahiti: inside both windows.
    assert next_allowed(at, "PF") == datetime(2026, 12, 8, 7, 0, tzinfo=UTC)


def test_the_sandbox_applies_the_providers_window_only() -> None:
    from smsdrop.windows import provider_window

    assert provider_window("RE") is WINDOWS["FR"]
    assert provider_window("FR", end=time(20)) == window_for("FR", end=time(20))
    assert provider_window("US") is None


def chain_oracle(m: datetime, w: SendWindow) -> bool:
    return all(oracle(m, bound) for bound in w.chain)


@settings(max_examples=150, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    st.sampled_from(OVERSEAS),
)
def test_overseas_next_allowed_is_the_first_minute_both_windows_allow(
    naive: datetime, country: str
) -> None:
    x = naive.replace(tzinfo=UTC)
    w = WINDOWS[country]
    n = next_allowed(x, country)
    assert x <= n < x + timedelta(days=8)
    assert check(n, country).allowed and chain_oracle(n, w)
    assert check(x, country).allowed == chain_oracle(x, w)
    m = x.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while m < n:
        assert not chain_oracle(m, w), m
        m += timedelta(minutes=1)
