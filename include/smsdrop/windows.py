"""Send windows: when a marketing SMS may be scheduled, per destination country.

Why this is a guard and not a nicety: the provider *queues* a French marketing SMS due
outside 08:00–22:00 to the next day 08:00 and *rejects* one due on a Sunday or a public
holiday. A slot we plan must therefore never be one the provider would move or refuse:
:func:`check` decides, :func:`next_allowed` finds the first acceptable slot.

Rules are data (:data:`WINDOWS`); the code only interprets a :class:`SendWindow`.
Windows are half-open, ``[start, end)`` in the country's wall time: 08:00 is allowed, 22:00
is not. A country without an entry has no rule we know of and is always allowed (see
docs/PROTOCOL.md); ``end == 00:00`` means midnight at the end of the
day (24:00).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smsdrop.naming import require_aware, to_instant
from smsdrop.public_holidays import calendar as _calendar

__all__ = [
    "MIDNIGHT",
    "SUBDIVISION_ALIASES",
    "WEEKDAY_NAMES",
    "WINDOWS",
    "SendWindow",
    "WindowDecision",
    "calendar_years",
    "check",
    "narrowed",
    "next_allowed",
    "provider_window",
    "window_for",
]

#: As an ``end``: midnight at the end of the day (24:00).
MIDNIGHT: Final = time(0)
WEEKDAY_NAMES: Final = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
#: How far :func:`next_allowed` looks before declaring a window unsatisfiable.
MAX_SEARCH_DAYS: Final = 400
#: Names people use for a subdivision → the code the ``holidays`` package knows. Bas-Rhin
#: (67) and Haut-Rhin (68) are "6AE" (Collectivité européenne d'Alsace); Moselle is "57".
SUBDIVISION_ALIASES: Final[dict[str, dict[str, str]]] = {
    "FR": {"67": "6AE", "68": "6AE"},
}


def _hhmm(t: time, *, end: bool = False) -> str:
    return "24:00" if end and t == MIDNIGHT else t.strftime("%H:%M")


@dataclass(frozen=True)
class SendWindow:
    """Where and when sending is allowed: ``weekdays`` (0 = Monday) from ``start`` to ``end``
    in ``timezone``, except the public holidays of ``holidays_country``/``subdivision``.

    Configure with :meth:`replace` (e.g. ``end=time(20)`` where operators apply 20:00).
    """

    country: str
    timezone: str
    weekdays: frozenset[int]
    start: time
    end: time
    holidays_country: str | None
    subdivision: str | None = None
    #: Another window that must allow the send too: the provider's own (Paris time) for
    #: French numbers outside metropolitan France (:data:`PROVIDER_WINDOW_FOR`).
    bound_by: SendWindow | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise ValueError(f"weekdays must be a non-empty subset of 0..6, got {self.weekdays}")
        for label, t in (("start", self.start), ("end", self.end)):
            if t.tzinfo is not None or t.second or t.microsecond:
                raise ValueError(f"{label} must be a naive time on the minute, got {t!r}")
        if self.end != MIDNIGHT and self.end <= self.start:
            raise ValueError(
                f"end {_hhmm(self.end)} must be after start {_hhmm(self.start)} "
                "(windows do not cross midnight; use end=00:00 for 24:00)"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None
        if self.holidays_country is None:
            if self.subdivision is not None:
                raise ValueError("a subdivision needs holidays_country")
        else:
            _calendar(self.holidays_country, self.subdivision)  # fail now, not at check time

    def replace(self, **changes: Any) -> SendWindow:
        """A copy with some fields changed, validated like any window."""
        return dataclasses.replace(self, **changes)

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def label(self) -> str:
        """``08:00–22:00``: how reasons and errors show the hours."""
        return f"{_hhmm(self.start)}–{_hhmm(self.end, end=True)}"

    @property
    def full_day(self) -> bool:
        """00:00–24:00: days touch at midnight, so a send may run from one into the next."""
        return self.start == MIDNIGHT and self.end == MIDNIGHT

    @property
    def unrestricted(self) -> bool:
        """Every instant is allowed: nothing to compute."""
        return self.full_day and len(self.weekdays) == 7 and self.holidays_country is None

    @property
    def length(self) -> timedelta:
        """Nominal length of a day's window (wall clock; a DST day may differ by an hour)."""
        end = timedelta(days=1) if self.end == MIDNIGHT else _as_delta(self.end)
        return end - _as_delta(self.start)

    @property
    def chain(self) -> tuple[SendWindow, ...]:
        """This window and every window it is bound by: a send must fit them all."""
        return (self,) if self.bound_by is None else (self, *self.bound_by.chain)

    def closed_reason(self, day: date) -> str | None:
        """Why the whole local ``day`` is closed (weekday, holiday), or None if it is open."""
        if day.weekday() not in self.weekdays:
            return WEEKDAY_NAMES[day.weekday()]
        if self.holidays_country is not None:
            name = _calendar(self.holidays_country, self.subdivision).get(day)
            if name:
                return f"public holiday: {name}"
        return None

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        """The window of a local ``day`` as UTC instants ``[start, end)`` (DST-safe)."""
        start = to_instant(datetime.combine(day, self.start), self.tz)
        end_day = day + timedelta(days=1) if self.end == MIDNIGHT else day
        return start, to_instant(datetime.combine(end_day, self.end), self.tz)


def _as_delta(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute)


_ALL_WEEK: Final = frozenset(range(7))

_MON_SAT: Final = frozenset(range(6))
#: The provider's window: marketing SMS "from Monday to Saturday between 8am and 10pm
#: (CET/CEST) and forbidden on Sundays and bank holidays" (spec, "Destinations").
FRANCE: Final = SendWindow("FR", "Europe/Paris", _MON_SAT, time(8), time(22), "FR")


def _overseas(country: str, timezone: str, subdivision: str) -> SendWindow:
    """A French territory: the same hours in its own wall time and its own public holidays,
    bound by the provider's Paris-time window (docs/PROTOCOL.md, "French numbers outside
    metropolitan France")."""
    return SendWindow(country, timezone, _MON_SAT, time(8), time(22), "FR", subdivision, FRANCE)


#: Known rules per destination country (ISO 3166 alpha-2, as `smsdrop.msisdn` classifies a
#: number). France: the provider's window. French numbering outside metropolitan France
#: (+262, +590, +594, +596, +508, +689, +687, +681): the French rule in local time with the
#: territory's holidays (the `holidays` package's French subdivisions), and the provider's
#: window as well, since it states one rule in Paris time for French numbers.
WINDOWS: Final[dict[str, SendWindow]] = {
    "FR": FRANCE,
    "RE": _overseas("RE", "Indian/Reunion", "974"),
    "YT": _overseas("YT", "Indian/Mayotte", "976"),
    "GP": _overseas("GP", "America/Guadeloupe", "971"),
    "BL": _overseas("BL", "America/St_Barthelemy", "BL"),
    "MF": _overseas("MF", "America/Marigot", "MF"),
    "MQ": _overseas("MQ", "America/Martinique", "972"),
    "GF": _overseas("GF", "America/Cayenne", "973"),
    "PM": _overseas("PM", "America/Miquelon", "PM"),
    "PF": _overseas("PF", "Pacific/Tahiti", "PF"),
    "NC": _overseas("NC", "Pacific/Noumea", "NC"),
    "WF": _overseas("WF", "Pacific/Wallis", "WF"),
}


def window_for(
    country: str,
    *,
    start: time | None = None,
    end: time | None = None,
    subdivision: str | None = None,
) -> SendWindow:
    """The window of ``country``, with deployment overrides.

    An unknown country gets an unrestricted window (every day, 00:00–24:00, no holidays):
    we know no rule for it, and refusing would block every foreign campaign. Overrides apply
    to that window too (``end=time(20)`` for an unknown country means 00:00–20:00 daily).
    ``subdivision`` accepts the ``holidays`` codes and :data:`SUBDIVISION_ALIASES`
    (``"57"``, ``"67"``, ``"68"`` for Alsace-Moselle: Good Friday and 26 December).
    """
    code = country.strip().upper()
    window = WINDOWS.get(code) or SendWindow(code, "UTC", _ALL_WEEK, MIDNIGHT, MIDNIGHT, None)
    changes: dict[str, Any] = {}
    if start is not None:
        changes["start"] = start
    if end is not None:
        changes["end"] = end
    if subdivision is not None:
        aliases = SUBDIVISION_ALIASES.get(window.holidays_country or "", {})
        changes["subdivision"] = aliases.get(subdivision, subdivision)
    return window.replace(**changes) if changes else window


def provider_window(country: str, end: time | None = None) -> SendWindow | None:
    """The window the provider itself applies to ``country`` (None: it applies none).

    The last window of the chain: for French overseas numbers, the provider's Paris-time
    window, not the territory's local one (the sandbox plays the provider).
    """
    if country not in WINDOWS:
        return None
    own = WINDOWS[country].chain[-1]
    return own.replace(end=end) if end is not None else own


def narrowed(country: str, end: time) -> SendWindow:
    """The window of ``country`` ending at ``end``, which may only narrow it, never widen it.

    A deployment may end earlier than the law (20:00 where operators apply it); a later end
    would plan sends the provider queues to the next day. ``end`` must be on the minute,
    after the window's start and no later than its own end (00:00 stands for 24:00).
    """
    own = window_for(country)
    if end.tzinfo is not None or end.second or end.microsecond:
        raise ValueError(f"the window end must be a time on the minute (HH:MM), not {end}")
    own_end = timedelta(days=1) if own.end == MIDNIGHT else _as_delta(own.end)
    new_end = timedelta(days=1) if end == MIDNIGHT else _as_delta(end)
    if not _as_delta(own.start) < new_end <= own_end:
        raise ValueError(
            f"the window end {_hhmm(end, end=True)} is outside the {own.country} window "
            f"{own.label}: it can only end earlier, after {_hhmm(own.start)}"
        )
    return own if new_end == own_end else own.replace(end=end)


def calendar_years(window: SendWindow) -> tuple[int, int] | None:
    """The years the window's holiday calendar knows (None: no holidays to know)."""
    if window.holidays_country is None:
        return None
    calendar = _calendar(window.holidays_country, window.subdivision)
    return calendar.start_year, calendar.end_year


@dataclass(frozen=True)
class WindowDecision:
    """The answer of :func:`check`: allowed or not, why, and the first acceptable instant.

    ``next`` is ``at`` itself when allowed, else a UTC-aware instant (UTC so that comparing
    and adding durations are exact; ``.astimezone`` to display).
    """

    allowed: bool
    next: datetime
    reason: str


def check(
    at: datetime,
    country: str = "FR",
    window: SendWindow | None = None,
    duration: timedelta = timedelta(0),
) -> WindowDecision:
    """May a send start at ``at`` (aware) and run for ``duration`` inside one window?

    The send occupies ``[at, at + duration)``: it fits when ``at`` is in the day's window
    and ``at + duration <= end`` (half-open, like the window: a one-hour send started at
    21:00 ends by 22:00). ``window`` wins over ``country`` when given.
    """
    require_aware(at, "at")
    w = window if window is not None else window_for(country)
    for bound in w.chain:
        _check_duration(bound, duration)
    chain = [bound for bound in w.chain if not bound.unrestricted]
    if not chain:
        return WindowDecision(True, at, f"allowed: no send window rules for {w.country}")
    instant = at.astimezone(UTC)
    for bound in chain:
        reason = _refusal(bound, instant, duration)
        if reason is not None:
            if bound is not w:
                reason = f"{reason} in {bound.timezone} (the provider's window)"
            return WindowDecision(False, _search_all(chain, instant, duration), reason)
    return WindowDecision(True, at, "allowed")


def next_allowed(
    at: datetime,
    country: str = "FR",
    window: SendWindow | None = None,
    duration: timedelta = timedelta(0),
) -> datetime:
    """The first instant ``>= at`` at which :func:`check` allows a send of ``duration``."""
    return check(at, country, window, duration).next


def _check_duration(w: SendWindow, duration: timedelta) -> None:
    if duration < timedelta(0):
        raise ValueError(f"duration must not be negative, got {duration}")
    if not w.full_day and duration > w.length:
        raise ValueError(f"a send of {duration} never fits in the {w.country} window {w.label}")


def _refusal(w: SendWindow, at: datetime, duration: timedelta) -> str | None:
    """Why ``at`` (UTC) is refused, or None. Day closures first: they are the rejections."""
    day = at.astimezone(w.tz).date()
    closed = w.closed_reason(day)
    if closed is not None:
        return closed
    start, end = w.bounds(day)
    if not start <= at < end:
        return f"outside {w.label}"
    if not _fits(w, day, end, at + duration):
        local = at.astimezone(w.tz).strftime("%H:%M")
        return f"a send of {duration} from {local} ends after {_hhmm(w.end, end=True)}"
    return None


def _fits(w: SendWindow, day: date, end: datetime, finish: datetime) -> bool:
    """Does a send finishing at ``finish`` stay in the window (through midnight if full-day)?"""
    while finish > end:
        day += timedelta(days=1)
        if not w.full_day or w.closed_reason(day) is not None:
            return False
        end = w.bounds(day)[1]
    return True


def _search_all(chain: list[SendWindow], at: datetime, duration: timedelta) -> datetime:
    """Earliest instant >= ``at`` (UTC) that every window of ``chain`` allows.

    Each window's own search only moves forward, so going round until none moves reaches
    the first instant they all allow.
    """
    limit = at + timedelta(days=MAX_SEARCH_DAYS)
    while at <= limit:
        moved = at
        for w in chain:
            if _refusal(w, moved, duration) is not None:
                moved = _search(w, moved, duration)
        if moved == at:
            return at
        at = moved
    labels = " and ".join(f"{w.label} {w.timezone}" for w in chain)
    raise ValueError(f"no allowed slot within {MAX_SEARCH_DAYS} days in the windows {labels}")


def _search(w: SendWindow, at: datetime, duration: timedelta) -> datetime:
    """Earliest instant >= ``at`` (UTC) where a send of ``duration`` is allowed."""
    day = at.astimezone(w.tz).date()
    for _ in range(MAX_SEARCH_DAYS):
        if w.closed_reason(day) is None:
            start, end = w.bounds(day)
            candidate = max(at, start)
            if candidate < end and _fits(w, day, end, candidate + duration):
                return candidate
        day += timedelta(days=1)
    raise ValueError(f"no allowed slot within {MAX_SEARCH_DAYS} days in the window {w.label}")
