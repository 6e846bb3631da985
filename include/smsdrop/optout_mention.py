"""The opt-out mention a French marketing SMS must carry ("STOP au 36xxx").

French practice for marketing SMS (the CNIL's guidance on commercial SMS, and the
operators' code of practice the provider applies) requires every message to say how to
stop receiving them, free of charge: "STOP au" and the account's short code. The spec's
opening warning says the same ("a 'STOP' Opt Out response on a Shortcode or a long number
in the message sent"). A message without it is rejected ``MSG_NO_OPTOUT_MENTION``: sending
it would break the rule for every recipient at once.

The comparison forgives what a copywriter changes without meaning to: accents ("Stop" /
"STÔP"), case, and spacing ("STOP au 36 111", "stop au36111", a non-breaking space). It does
not forgive another word or another number. The mention is part of the message, so it
counts in the message's segments like any other text.

Which numbers need it is data: :data:`MENTION_COUNTRIES`, the French numbering regions
(metropolitan France and the territories of docs/PROTOCOL.md). All the work is Arrow
compute kernels on the batch, no per-row Python.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Final

__all__ = ["MENTION_COUNTRIES", "MENTION_MAX", "mention_problem", "missing_mention", "normalised"]

#: The longest mention accepted (an SMS is 160 characters; the mention is a short part).
MENTION_MAX: Final = 60

#: Destinations whose marketing SMS must carry the mention (ISO 3166 alpha-2).
MENTION_COUNTRIES: Final = frozenset(
    {"FR", "RE", "YT", "GP", "BL", "MF", "MQ", "GF", "PM", "PF", "NC", "WF"}
)
#: Combining marks (accents once NFKD has split them off) and every kind of space.
_MARKS: Final = r"\p{Mn}"
#: Python's ``str.split`` spaces, written for RE2 so both sides remove the same characters.
_SPACES: Final = r"[\t\n\x0b\f\r\x1c-\x1f\x85\p{Zs}\x{2028}\x{2029}]+"


def normalised(text: str) -> str:
    """``text`` as the comparison sees it: no accents, lower case, no spaces (Python side,
    for the mention itself; :func:`missing_mention` does the same with Arrow kernels)."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(kept.lower().split())


def mention_problem(text: str) -> str | None:
    """Why ``text`` cannot serve as the mention (a campaign's or an account's), or None.

    Too long, a control character, or nothing left once accents and spaces are removed
    (it would match every message).
    """
    if len(text) > MENTION_MAX or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return f"must be at most {MENTION_MAX} characters without control characters"
    if not normalised(text):
        return "holds nothing to look for (only spaces or accents)"
    return None


def missing_mention(messages: Any, countries: Any, mention: str) -> Any:
    """A boolean Arrow array: True where a message to a French number lacks ``mention``.

    ``messages`` and ``countries`` are equal-length string arrays (Arrow or anything pyarrow
    takes); a null message or country never counts as missing (other rules reject it).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = normalised(mention)
    if not wanted:
        raise ValueError("the opt-out mention is empty")
    messages = (
        pa.array(messages, type=pa.large_string())
        if not isinstance(messages, pa.Array | pa.ChunkedArray)
        else messages
    )
    text = pc.utf8_normalize(messages, form="NFKD")
    text = pc.replace_substring_regex(text, _MARKS, "")
    text = pc.replace_substring_regex(pc.utf8_lower(text), _SPACES, "")
    present = pc.match_substring(text, wanted)
    french = pc.is_in(countries, value_set=pa.array(sorted(MENTION_COUNTRIES)))
    missing = pc.and_kleene(french, pc.invert(present))
    return pc.fill_null(missing, False)
