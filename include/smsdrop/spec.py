"""A campaign as it was asked for, checked once and carried whole: :class:`CampaignSpec`.

Every request (the DAG's form, a nightly entry, the CLI's arguments) becomes one spec. The
DAG's first task checks it (:meth:`CampaignSpec.from_mapping`) and hands
:meth:`~CampaignSpec.to_dict` on through XCom; the later tasks rebuild it with
:meth:`~CampaignSpec.from_dict`, which trusts what was checked. What the preparation and
the record checks need (the send time, the window end, the audience columns, the
:class:`~smsdrop.record_rules.Rules`) is derived here, so a campaign has no second shape.
The rule of each field is data, in :mod:`smsdrop.fields`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from smsdrop import fields
from smsdrop.account import Account
from smsdrop.audience import audience_query
from smsdrop.audience_files import AUDIENCE_REQUIRED
from smsdrop.errors import InputError, printable
from smsdrop.frequency import FrequencyCap, deployment_cap
from smsdrop.gsm import EncodingPolicy
from smsdrop.naming import PARIS
from smsdrop.optout_mention import mention_problem
from smsdrop.prepare import template_fields
from smsdrop.record_rules import Rules

_DEFAULT = {f.name: f.default for f in fields.CAMPAIGN}


@dataclass(frozen=True)
class CampaignSpec:
    """One campaign. :meth:`from_mapping` checks every field; the constructor checks none
    (it serves data checked already, and the CLI, whose arguments ``prepare`` checks)."""

    campaign_id: str
    service_id: str
    audience: str  # a table or a .sql file of include/sql/audience/ (see smsdrop.audience)
    message: str  # template with {column} placeholders
    sender: str
    send_at: str = _DEFAULT["send_at"]  # ISO 8601; no offset = Paris; empty = when allowed
    long_sms: bool = _DEFAULT["long_sms"]
    encoding_policy: str = _DEFAULT["encoding_policy"]
    window_end: str = _DEFAULT["window_end"]
    default_region: str = _DEFAULT["default_region"]
    dry_run: bool = _DEFAULT["dry_run"]
    upload_lead_minutes: int = _DEFAULT["upload_lead_minutes"]  # upload this long before
    max_days_ahead: int = _DEFAULT["max_days_ahead"]  # the furthest slot a run may plan
    optout_max_age_minutes: int = _DEFAULT["optout_max_age_minutes"]  # oldest list usable
    optout_mention: str = _DEFAULT["optout_mention"]  # "" = the account's mention
    frequency_cap: str = _DEFAULT["frequency_cap"]  # "" = SMSDROP_FREQUENCY_CAP; off; N/D
    transactional: bool = _DEFAULT["transactional"]  # no window, mention or cap
    max_cost: str = _DEFAULT["max_cost"]  # "" = no cap; an amount in the prices' currency
    min_delivery_rate: str = _DEFAULT["min_delivery_rate"]  # % of sent; off
    max_not_sent_rate: str = _DEFAULT["max_not_sent_rate"]  # % of acknowledged; off
    max_stop_rate: str = _DEFAULT["max_stop_rate"]  # % of sent; off
    alert_connections: str = _DEFAULT["alert_connections"]  # "" = SMSDROP_ALERT_CONNECTIONS
    lock_deadline_minutes: int = _DEFAULT["lock_deadline_minutes"]  # .csv/.lock this long fails

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CampaignSpec:
        """Build and check a spec from what a user gave: unknown keys are refused (a typo is
        not a default), ``None`` stands for the default, text is trimmed."""
        unknown = sorted(set(values) - set(fields.BY_NAME))
        if unknown:
            raise InputError(f"unknown campaign parameter(s): {', '.join(unknown)}")
        given = {k: v for k, v in values.items() if v is not None}
        for field in fields.CAMPAIGN:
            if field.required and not str(given.get(field.name, "")).strip():
                raise InputError("is required", field=field.name)
        spec = cls(**{k: (v.strip() if isinstance(v, str) else v) for k, v in given.items()})
        spec.check()
        return spec

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CampaignSpec:
        """The spec :meth:`to_dict` gave, not checked again: it was, once."""
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON values: for XCom, a run's conf and the warehouse's record."""
        return asdict(self)

    def check(self) -> None:
        """Refuse the first field that breaks its rule, naming the field."""
        for field in fields.CAMPAIGN:
            problem = field.problem(getattr(self, field.name))
            if problem:
                raise InputError(problem, field=field.name)
        self.placeholders()
        self.send_time()
        self.mention_problem()
        audience_query(self.audience)

    def mention_problem(self) -> None:
        """Refuse an opt-out mention the check could not use: too long, a control character,
        or only spaces (it would match every message)."""
        text = self.optout_mention
        problem = mention_problem(text) if text else None
        if problem is not None:
            shown = f", got {printable(text)}" if problem.startswith("must") else ""
            raise InputError(problem + shown, field="optout_mention")

    def marketing(self, account: Account | None = None) -> bool:
        """Whether the campaign is marketing traffic: only marketing gets the French window,
        the opt-out mention check and the frequency cap. An account of transactional traffic
        makes every campaign transactional; without one, a campaign is marketing unless it
        says it is transactional."""
        return (account.marketing if account else True) and not self.transactional

    def mention(self, account: Account | None = None) -> str | None:
        """The opt-out mention to look for: the campaign's, else the account's, else None."""
        return self.optout_mention or (account.mention if account else None)

    def cap(self) -> FrequencyCap | None:
        """The campaign's frequency cap: its own, else the deployment's; None when off."""
        if self.frequency_cap:
            return FrequencyCap.parse(self.frequency_cap)
        return deployment_cap()

    def cost_cap(self) -> Decimal | None:
        """``max_cost`` as an amount, or None for no cap."""
        problem = fields.BY_NAME["max_cost"].problem(self.max_cost)
        if problem:
            raise InputError(problem, field="max_cost")
        return Decimal(self.max_cost) if self.max_cost else None

    def send_time(self) -> datetime | None:
        """The requested send time (aware), or None for as soon as allowed."""
        if not self.send_at:
            return None
        try:
            when = datetime.fromisoformat(self.send_at)
        except ValueError:
            raise InputError(
                f"not an ISO 8601 date-time: {self.send_at!r}", field="send_at"
            ) from None
        return when if when.tzinfo else when.replace(tzinfo=PARIS)

    @property
    def narrowed_end(self) -> str | None:
        """The window end ("HH:MM") when it narrows the destinations' own windows; None for
        the default, which leaves every country to its own rules."""
        return None if self.window_end == fields.WINDOW_END.default else self.window_end

    def placeholders(self) -> list[str]:
        """The ``{column}`` placeholders of the message."""
        return template_fields(self.message)

    def columns(self) -> list[str]:
        """The audience columns the campaign reads."""
        return list(dict.fromkeys([*AUDIENCE_REQUIRED, *self.placeholders()]))

    def rules(self) -> Rules:
        """The campaign's options that change what a valid record is."""
        return Rules(EncodingPolicy(self.encoding_policy), self.long_sms, self.default_region)
