"""The rule of every campaign field, written once: its syntax, limits, default and meaning.

One table (:data:`CAMPAIGN`) says what a campaign request may hold. Everything that checks
or shows a field reads it from here: the campaign spec's checks (:mod:`smsdrop.spec`), the
SERVICEID and CAMPAIGNID parts of a file name (:data:`smsdrop.naming.PARTS`), the OADC and
IDREMOTE rules of a SEND record (:data:`smsdrop.record_rules.FIELD_PATTERNS`) and the
``sms_campaign`` DAG's form, whose Params are built from :meth:`Field.param_schema`.
A new campaign field is a row here and its attribute on the spec (a test holds the two
equal).

Standard library only (and :mod:`smsdrop.gsm`'s enum, itself stdlib only): the DAG files
import this module when they are parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from smsdrop.gsm import EncodingPolicy

CAMPAIGN_ID_MAX: Final = 20
#: A time of day on the minute, 00:00 to 23:59.
HHMM: Final = "(?:[01][0-9]|2[0-3]):[0-5][0-9]"
#: The form's section of the fields most campaigns leave as they are.
OPTIONS: Final = "Options"

_TYPES: Final[dict[str, type]] = {"string": str, "boolean": bool, "integer": int}


@dataclass(frozen=True)
class Field:
    """One field: its rule, and how the form shows it.

    ``type`` is the JSON Schema type (``string``, ``boolean``, ``integer``). ``pattern`` is
    a full match, written with ``[0-9]``/``[A-Za-z0-9]`` rather than ``\\d``/``\\w``: those
    accept non-ASCII digits and letters, which the provider does not. ``choices`` are the
    only values allowed; ``offered`` the values the form offers when the rule allows more;
    ``part`` the label of the file name part the field fills (its refusals then read as the
    name's do).
    """

    name: str
    description: str
    default: Any = ""
    type: str = "string"
    pattern: str | None = None
    expected: str = ""  # the rule in words, for a refusal
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    offered: tuple[str, ...] = ()
    required: bool = False
    nullable: bool = False  # the form may leave it empty (None): the default then
    option: bool = False  # shown in the form's Options section
    multiline: bool = False
    part: str | None = None

    def problem(self, value: object) -> str | None:
        """Why ``value`` breaks the field's rule, or None."""
        if self.type == "integer":
            whole = isinstance(value, int) and not isinstance(value, bool)
            if not whole or not self.minimum <= value <= self.maximum:  # type: ignore[operator]
                return f"must be a whole number {self.minimum}..{self.maximum}, got {value!r}"
            return None
        if not isinstance(value, _TYPES[self.type]):
            return f"must be {'true or false' if self.type == 'boolean' else 'text'}, got {value!r}"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        if self.pattern is not None and not re.fullmatch(self.pattern, str(value)):
            return self.refusal(value)
        return None

    def refusal(self, value: object) -> str:
        """The refusal of a value off the pattern; a file name part's reads as the name's."""
        if self.part:
            return f"expected {self.expected}, found {value!r}"
        return f"must be {self.expected}, got {value!r}"

    @property
    def form_default(self) -> Any:
        """What the form shows before anything is typed."""
        return None if self.nullable else self.default

    def param_schema(self) -> dict[str, Any]:
        """The field as JSON Schema keywords: what the DAG form's ``Param`` checks.

        A list of values is the whole rule (the form shows a choice); a pattern is anchored
        with ``^…$``, since a JSON Schema pattern matches anywhere in the value.
        """
        schema: dict[str, Any] = {}
        if self.choices or self.offered:
            schema["enum"] = list(self.offered or self.choices)
        else:
            schema["type"] = ["null", self.type] if self.nullable else self.type
            if self.pattern is not None:  # the pattern says whether empty is allowed
                schema["pattern"] = f"^{self.pattern}$"
            elif self.required:
                schema["minLength"] = 1
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.multiline:
            schema["format"] = "multiline"
        if self.option:
            schema["section"] = OPTIONS
        return schema


SERVICE_ID: Final = Field(
    "service_id",
    "your MTarget SERVICEID (5 letters or digits)",
    pattern="[A-Za-z0-9]{5}",
    expected="exactly 5 ASCII letters or digits",
    required=True,
    part="SERVICEID",
)
CAMPAIGN_ID: Final = Field(
    "campaign_id",
    "1 to 20 letters or digits; a campaign id is sent once, ever",
    pattern=f"[A-Za-z0-9]{{1,{CAMPAIGN_ID_MAX}}}",
    expected=f"1 to {CAMPAIGN_ID_MAX} ASCII letters or digits",
    required=True,
    part="CAMPAIGNID",
)
#: The OADC of every record.
SENDER: Final = Field(
    "sender",
    "OADC: 1 to 11 letters or digits",
    pattern="[A-Za-z0-9]{1,11}",
    expected="1 to 11 ASCII letters or digits",
    required=True,
)
#: Not a campaign field: the recipient's key in each SEND record, echoed by the reports.
IDREMOTE: Final = Field(
    "idremote",
    "the recipient's key, echoed in the provider's reports",
    pattern="[A-Za-z0-9]{1,40}",
    expected="1 to 40 ASCII letters or digits",
)
WINDOW_END: Final = Field(
    "window_end",
    "end of the French marketing window",
    default="22:00",
    pattern=HHMM,
    expected="HH:MM",
    offered=("22:00", "21:00", "20:00"),
    option=True,
)

#: The fields of a campaign request, in the form's order.
CAMPAIGN: Final[tuple[Field, ...]] = (
    CAMPAIGN_ID,
    SERVICE_ID,
    Field(
        "audience",
        "a table (audience, schema.audience) or a .sql file of include/sql/audience/ (a SELECT "
        "only where the deployment allows it); columns idremote, msisdn and the message's "
        "placeholders",
        required=True,
    ),
    Field(
        "message",
        "the text; {column} is replaced by the audience's column",
        required=True,
        multiline=True,
    ),
    SENDER,
    Field(
        "send_at",
        "ISO 8601 (no offset = Paris time); empty: as soon as allowed. A time outside the send "
        "window moves to the next allowed minute",
        nullable=True,
    ),
    Field(
        "long_sms",
        "allow up to 5 segments (the account must allow it)",
        default=False,
        type="boolean",
        option=True,
    ),
    Field(
        "encoding_policy",
        "texts outside GSM 03.38: reject the row, transliterate, or send UCS-2",
        default=EncodingPolicy.REJECT.value,
        choices=tuple(p.value for p in EncodingPolicy),
        option=True,
    ),
    WINDOW_END,
    Field(
        "default_region",
        "country of numbers written without +",
        default="FR",
        pattern="[A-Z]{2}",
        expected="2 capital letters (ISO 3166, e.g. FR)",
        option=True,
    ),
    Field(
        "dry_run",
        "prepare and check everything, upload nothing",
        default=False,
        type="boolean",
    ),
    Field(
        "upload_lead_minutes",
        "upload this many minutes before the slot, not earlier: opt-outs published until then "
        "are honoured (the provider cannot cancel a file)",
        default=15,
        type="integer",
        minimum=0,
        maximum=7 * 24 * 60,
        option=True,
    ),
    Field(
        "max_days_ahead",
        "refuse a send_at further ahead than this",
        default=7,
        type="integer",
        minimum=1,
        maximum=7,
        option=True,
    ),
    Field(
        "optout_max_age_minutes",
        "if the opt-out refresh before an upload fails, upload only while the last complete "
        "opt-out load is younger than this",
        default=30,
        type="integer",
        minimum=1,
        maximum=24 * 60,
        option=True,
    ),
    Field(
        "optout_mention",
        "the opt-out mention every marketing SMS to a French number must carry, e.g. "
        "STOP au 36111 (accents, case and spacing forgiven); empty: the account's mention "
        "(the mtarget_default connection's optout_mention or STOP au <optout_short_code>)",
        option=True,
    ),
    Field(
        "frequency_cap",
        "at most N messages per number in D days across campaigns, as N/D (e.g. 3/7); "
        "off: no cap; empty: the deployment's default (SMSDROP_FREQUENCY_CAP). Numbers at "
        "the cap are rejected FREQUENCY_CAPPED",
        pattern="(?:off|[0-9]{1,4}/[0-9]{1,3})?",
        expected="N/D such as 3/7, off, or empty",
        option=True,
    ),
    Field(
        "transactional",
        "a transactional message (an order, a code), not marketing: no French send window, "
        "no opt-out mention check, no frequency cap",
        default=False,
        type="boolean",
        option=True,
    ),
    Field(
        "max_cost",
        "stop before the upload when the estimated cost is over this amount, in the price "
        "list's currency (e.g. 250 or 99.50); empty: no cap",
        pattern="(?:[0-9]{1,9}(?:\\.[0-9]{1,4})?)?",
        expected="an amount such as 250 or 99.50, or empty",
        option=True,
    ),
    *(
        Field(
            name,
            f"{what}: the ACK's figures past this percentage send an alert and fail "
            "load_acks (the run is not a silent success); off: no check",
            default=default,
            pattern="(?:off|100|[0-9]{1,2}(?:\\.[0-9]{1,2})?)",
            expected="a percentage 0 to 100 (e.g. 80 or 2.5), or off",
            option=True,
        )
        for name, what, default in (
            ("min_delivery_rate", "lowest share of sent SMS delivered, %", "80"),
            ("max_not_sent_rate", "highest share of acknowledged records not sent, %", "10"),
            ("max_stop_rate", "highest share of sent SMS answered STOP, %", "2"),
        )
    ),
    Field(
        "alert_connections",
        "Airflow connections the campaign's alerts go to (smtp, http), comma-separated; "
        "empty: the deployment's SMSDROP_ALERT_CONNECTIONS",
        pattern="(?:[A-Za-z0-9_.-]{1,64}(?: *, *[A-Za-z0-9_.-]{1,64}){0,9})?",
        expected="connection ids separated by commas, or empty",
        option=True,
    ),
    Field(
        "lock_deadline_minutes",
        "a SEND file still .csv or .lock this long after its upload fails the run, naming it "
        "(the provider processes a file in minutes)",
        default=120,
        type="integer",
        minimum=1,
        maximum=24 * 60,
        option=True,
    ),
)
#: The campaign fields by name.
BY_NAME: Final[dict[str, Field]] = {f.name: f for f in CAMPAIGN}
