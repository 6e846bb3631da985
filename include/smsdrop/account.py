"""The provider account's options, described once: in the ``mtarget_default`` connection.

The spec makes several behaviours per account ("if the option is activated on your
account"): long SMS (up to 5 segments), Unicode (UCS-2 texts rather than replaced
characters), marketing or transactional traffic (the French window applies to marketing
only), the SERVICEID of the file names, and the short code recipients answer STOP to.
A deployment writes them in the connection's extras (docs/AIRFLOW.md); the sandbox has
options of the same names and meaning (:meth:`Account.sandbox_options`), so a campaign
tested on the sandbox meets the rules of the account it will run on.

Extras come from people (the UI, a JSON blob, an environment variable), so every value is
checked here and a refusal names the connection and the extra.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from smsdrop import naming
from smsdrop.errors import InputError, printable
from smsdrop.optout_mention import MENTION_MAX, mention_problem

__all__ = ["ACCOUNT_EXTRAS", "Account"]

_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off", "")

_SERVICE_ID: Final = next(p for p in naming.PARTS if p.label == "SERVICEID")


@dataclass(frozen=True)
class Account:
    """What the provider account allows; the defaults are the spec's (no option activated)."""

    service_id: str | None = None
    marketing: bool = True
    long_sms: bool = False
    unicode: bool = False
    optout_short_code: str | None = None
    #: The mention a French marketing SMS must carry; default "STOP au <short code>".
    optout_mention: str | None = None

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any], source: str = "mtarget_default") -> Account:
        """The account described by a connection's extras (other extras are not ours)."""
        values: dict[str, Any] = {}
        for spec in fields(cls):
            if spec.name not in extras or extras[spec.name] is None:
                continue
            raw = extras[spec.name]
            where = f"connection {source!r} extra {spec.name}"
            if spec.type == "bool":
                values[spec.name] = _flag(raw, where)
            else:
                values[spec.name] = _text(spec.name, raw, where)
        return cls(**values)

    @property
    def mention(self) -> str | None:
        """The opt-out mention to look for, or None when the account names none."""
        if self.optout_mention:
            return self.optout_mention
        return f"STOP au {self.optout_short_code}" if self.optout_short_code else None

    def campaign_problems(self, *, long_sms: bool, ucs2: bool) -> list[tuple[str, str]]:
        """(field, why) for each campaign option the account does not allow."""
        problems = []
        if long_sms and not self.long_sms:
            problems.append(
                ("long_sms", "the account has no long SMS option (long_sms extra): 1 segment only")
            )
        if ucs2 and not self.unicode:
            problems.append(
                (
                    "encoding_policy",
                    "the account has no Unicode option (unicode extra): transliterate or reject",
                )
            )
        return problems

    def sandbox_options(self) -> dict[str, Any]:
        """The sandbox's options for this account (:class:`smsdrop.sandbox.SandboxConfig`)."""
        return {
            "service_id": self.service_id,
            "marketing": self.marketing,
            "long_sms": self.long_sms,
            "unicode": self.unicode,
        }


#: The extras this module reads, for docs and for the connection form's help.
ACCOUNT_EXTRAS: Final = tuple(f.name for f in fields(Account))


def _flag(raw: object, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(f"{where}: must be true or false, got {printable(raw)}")


def _text(name: str, raw: object, where: str) -> str:
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise InputError(f"{where}: must be text, got {printable(raw)}")
    value = str(raw).strip()
    pattern, expected = _TEXT_RULES[name]
    if not pattern.fullmatch(value):
        raise InputError(f"{where}: must be {expected}, got {printable(value)}")
    problem = mention_problem(value) if name == "optout_mention" else None
    if problem is not None:
        raise InputError(f"{where}: {problem}, got {printable(value)}")
    return value


#: The syntax of each text extra and how a refusal says it.
_TEXT_RULES: Final[dict[str, tuple[re.Pattern[str], str]]] = {
    "service_id": (_SERVICE_ID.regex, _SERVICE_ID.expected),
    "optout_short_code": (re.compile(r"[0-9]{4,8}"), "a short code of 4 to 8 digits"),
    "optout_mention": (
        re.compile(f"[^\\x00-\\x1f]{{1,{MENTION_MAX}}}"),
        f"1 to {MENTION_MAX} characters",
    ),
}
