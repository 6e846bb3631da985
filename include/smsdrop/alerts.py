"""Alerts people act on: what a campaign owner is told, in figures, never in personal data.

The provider's own notices are two (spec, "Campaign status notification by email"): the file was accepted, and the
campaign started with how many SMS programmed. A campaign owner also needs to hear of what
went wrong — a rejected file, a failed data contract, a budget stop, a stale opt-out list —
and of a campaign that "succeeded" while most messages were not delivered: the ACK
thresholds (:class:`Thresholds`). Each alert is built here, as data (:class:`Alert`);
``smsdrop.airflow.alerting`` only carries it (SMTP, a chat webhook).

An alert holds counts, rates, file names and campaign ids. It never holds a phone number
or a message body: its builders take no such argument, and the tests read every mail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

__all__ = ["Alert", "Level", "Thresholds", "ack_alerts"]


class Level(StrEnum):
    INFO = "info"
    FAILURE = "failure"


@dataclass(frozen=True)
class Alert:
    """One message to the campaign's owners: a subject line and a few lines of facts."""

    kind: str
    level: Level
    campaign_id: str
    subject: str
    lines: tuple[str, ...] = ()
    figures: Mapping[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return "\n".join([self.subject, "", *self.lines])

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "level": self.level.value,
            "campaign_id": self.campaign_id,
            "subject": self.subject,
            "lines": list(self.lines),
            "figures": dict(self.figures),
        }


def _alert(
    kind: str,
    level: Level,
    campaign_id: str,
    what: str,
    lines: tuple[str, ...],
    figures: Mapping[str, Any] | None = None,
) -> Alert:
    """An alert whose subject says its level, its campaign and ``what`` happened."""
    mark = "FAILED" if level is Level.FAILURE else "ok"
    subject = f"[smsdrop {mark}] campaign {campaign_id}: {what}"
    return Alert(kind, level, campaign_id, subject, lines, dict(figures or {}))


def accepted(campaign_id: str, send_file: str, records: int) -> Alert:
    """The provider accepted a SEND file (``.done``)."""
    line = f"The provider accepted {send_file} ({records:,} SMS)."
    figures = {"send_file": send_file, "records": records}
    return _alert("accepted", Level.INFO, campaign_id, f"{send_file} accepted", (line,), figures)


def started(campaign_id: str, programmed: int, files: int, send_at: str) -> Alert:
    """Every file is accepted: the campaign is programmed."""
    line = f"{programmed:,} SMS in {files} file(s) are programmed for {send_at}."
    figures = {"programmed": programmed, "files": files, "send_at": send_at}
    what = f"{programmed:,} SMS programmed"
    return _alert("started", Level.INFO, campaign_id, what, (line,), figures)


def rejected(campaign_id: str, send_file: str) -> Alert:
    lines = (
        f"The provider renamed {send_file} to .reject: none of its SMS will be sent.",
        "Check the file with `smsdrop check`, fix the audience and trigger a new campaign.",
    )
    what = f"{send_file} rejected by the provider"
    return _alert("rejected", Level.FAILURE, campaign_id, what, lines, {"send_file": send_file})


def failure(campaign_id: str, kind: str, what: str, detail: str) -> Alert:
    """A stop before anything was sent: contract failure, budget stop, stale opt-outs…"""
    lines = (detail, "Nothing was uploaded for this campaign.")
    return _alert(kind, Level.FAILURE, campaign_id, what, lines)


@dataclass(frozen=True)
class Thresholds:
    """Rates an ACK is judged by (fractions 0..1); None turns a check off.

    Defaults: a campaign whose delivered share of sent SMS is under 80 %, whose not-sent
    share of acknowledged records is over 10 %, or whose STOP replies are over 2 % of sent
    SMS is not silently a success.
    """

    min_delivery_rate: float | None = 0.80
    max_not_sent_rate: float | None = 0.10
    max_stop_rate: float | None = 0.02


#: (figure, threshold field, "below"/"above", what it means)
_CHECKS: Final = (
    ("delivery_rate", "min_delivery_rate", "below", "delivered / sent"),
    ("not_sent_rate", "max_not_sent_rate", "above", "not sent / acknowledged"),
    ("stop_rate", "max_stop_rate", "above", "STOP replies / sent"),
)


def _rate(part: Any, whole: Any) -> float | None:
    return float(part) / float(whole) if whole else None


def _counts(figures: Mapping[str, int]) -> str:
    return (
        f"acknowledged {figures['acked']:,}, sent {figures['sent']:,}, delivered "
        f"{figures['delivered']:,}, not sent {figures['not_sent']:,}, "
        f"STOP replies {figures['stop_replies']:,}."
    )


def ack_alerts(campaign_id: str, stats: Mapping[str, Any], limits: Thresholds) -> list[Alert]:
    """The alerts a campaign's delivery figures call for (``sms_campaign_stats`` row).

    Rates are computed from the counts, not read, so they mean the same on every engine.
    """
    acked, sent = int(stats.get("acked") or 0), int(stats.get("sent") or 0)
    figures = {
        "acked": acked,
        "sent": sent,
        "delivered": int(stats.get("delivered") or 0),
        "not_sent": int(stats.get("not_sent") or 0),
        "stop_replies": int(stats.get("stop_replies") or 0),
    }
    rates = {
        "delivery_rate": _rate(figures["delivered"], sent),
        "not_sent_rate": _rate(figures["not_sent"], acked),
        "stop_rate": _rate(figures["stop_replies"], sent),
    }
    alerts = []
    for name, limit_name, side, meaning in _CHECKS:
        limit, value = getattr(limits, limit_name), rates[name]
        if limit is None or value is None:
            continue
        if (value < limit) if side == "below" else (value > limit):
            what = f"{name.replace('_', ' ')} {value:.1%} {side} {limit:.1%}"
            lines = (f"{meaning}: {value:.1%} (threshold {limit:.1%}).", _counts(figures))
            numbers = {**figures, name: round(value, 4), "threshold": limit}
            alerts.append(_alert(name, Level.FAILURE, campaign_id, what, lines, numbers))
    return alerts
