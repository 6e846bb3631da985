"""GSM 03.38 facts for SMS texts: alphabet, septets, UCS-2 units, segments, transliteration.

Why this module exists: the provider (see ``shared/spec/mtarget-sftp.md``, "Character count")
bills per SMS segment and only promises delivery of GSM 03.38 text. A message that is one
character too long, or holds one character outside the alphabet (``ê``, a curly apostrophe),
silently costs twice as much or is mangled ("The characters that are not received will
automatically be replaced"). So every message is checked before it reaches a SEND file.

The rules, as implemented here
------------------------------
* GSM-7 alphabet = :data:`GSM_BASIC` (1 septet each; ESC at 0x1B is a prefix, never a text
  character) plus :data:`GSM_EXTENSION` (ESC + code: 2 septets each, e.g. ``€``).
* GSM-7 segments: 1 if the text has at most 160 septets, else 153 septets per segment, and an
  escape pair is never split across two segments (so one ``€`` at the boundary moves to the
  next segment).
* A text with any non-GSM character must go as UCS-2: counted in UTF-16 code units (an emoji
  outside the BMP is a surrogate pair = 2 units), 1 segment if at most 70 units, else 67 units
  per segment, a surrogate pair never split.
* Long SMS (an account option): at most :data:`MAX_LONG_SEGMENTS` segments (5 x 153 = 765
  septets, 5 x 67 = 335 units); without it a message must fit in one segment.

Transliteration (:data:`TRANSLITERATION`, used by the ``transliterate`` policy) maps common
non-GSM characters of French (and other Latin-script) texts to GSM look-alikes. It never touches
a character that IS in GSM (``é è à ù Ç É`` stay). What remains non-GSM after it is an error.

* letters: ``ê ë â î ï ô û ç`` and the other accented Latin letters outside GSM -> the bare
  letter (``ê``->``e``, ``Ê``->``E``, ``ç``->``c``); ``œ``->``oe``, ``Œ``->``OE``;
* quotes: ``‘ ’ ‚ ‛ ′ ´ ` ‹ ›`` -> ``'``; ``“ ” „ ‟ ″ « »`` -> ``"``;
* dashes: hyphen, non-breaking hyphen, figure/en/em dash, horizontal bar, minus -> ``-``;
* ``…`` -> ``...``;
* spaces: tab, no-break space, narrow no-break space, the U+2000..U+200A spaces, U+205F,
  U+3000, U+1680 -> space; line/paragraph separators and NEL -> line feed;
* invisible: soft hyphen, zero-width space, word joiner, BOM -> removed.

Every value is plain ASCII, in the GSM basic table, and no longer in UTF-8 bytes than its key:
that is what lets the vectorised path rewrite all texts' UTF-8 bytes with one compaction and
know the new counts without rescanning (tests enforce it).
The decisions behind the table are in ``docs/PROTOCOL.md``.

Two implementations, on purpose
-------------------------------
:func:`text_facts` and :func:`transliterate` work on one Python string and are written to be
read: they are the reference (and what ``smsdrop segments`` shows). :func:`check_messages` is
the bulk path for a campaign column: it factorizes the column first (a million rows from one
template cost one text), then computes the facts of the distinct texts with numpy over the
Arrow UTF-8 buffer, without any Python work per text, including the exact segment walk. The
tests check that both agree and that both agree with the independent ``gsm0338`` codec.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

# --------------------------------------------------------------------------------------------
# Tables (data). GSM_BASIC[i] is the character of septet i (3GPP TS 23.038, default alphabet).
# --------------------------------------------------------------------------------------------

#: The GSM 03.38 default alphabet, in septet order (index = septet value). Index 0x1B is ESC,
#: the escape to the extension table: it is in the table but is not a text character.
GSM_BASIC: str = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

#: The GSM 03.38 default extension table: each character is sent as ESC + code (2 septets).
GSM_EXTENSION: str = "\f^{}\\[~]|€"

#: Septet code of each extension character (after ESC), for reference and the oracle tests.
_EXTENSION_CODE: dict[str, int] = {
    "\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
    "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65,
}  # fmt: skip

_ESC = "\x1b"

#: Septets per GSM character; a character absent from this mapping is not GSM-7.
_SEPTETS: dict[str, int] = {c: 1 for c in GSM_BASIC if c != _ESC} | {c: 2 for c in GSM_EXTENSION}

GSM7_SINGLE, GSM7_PART = 160, 153  # septets: one SMS / one part of a concatenated SMS
UCS2_SINGLE, UCS2_PART = 70, 67  # UTF-16 code units: the same for UCS-2
MAX_LONG_SEGMENTS = 5  # the provider allows "up to 5 * 153 GSM characters"

# Accented Latin letters outside GSM, grouped by the bare letter they become.
_LETTERS: dict[str, str] = {
    "a": "áâãāăą", "A": "ÀÁÂÃĀĂĄ",
    "c": "çćĉċč", "C": "ĆĈĊČ",
    "d": "ďđ", "D": "ĎĐ",
    "e": "êëēĕėęě", "E": "ÈÊËĒĔĖĘĚ",
    "g": "ĝğġģ", "G": "ĜĞĠĢ",
    "h": "ĥħ", "H": "ĤĦ",
    "i": "íîïĩīĭįı", "I": "ÌÍÎÏĨĪĬĮİ",
    "j": "ĵ", "J": "Ĵ",
    "k": "ķ", "K": "Ķ",
    "l": "ĺļľŀł", "L": "ĹĻĽĿŁ",
    "n": "ńņň", "N": "ŃŅŇ",
    "o": "óôõōŏő", "O": "ÒÓÔÕŌŎŐ",
    "r": "ŕŗř", "R": "ŔŖŘ",
    "s": "śŝşšș", "S": "ŚŜŞŠȘ",
    "t": "ţťŧț", "T": "ŢŤŦȚ",
    "u": "úûũūŭůűų", "U": "ÙÚÛŨŪŬŮŰŲ",
    "w": "ŵ", "W": "Ŵ",
    "y": "ýÿŷ", "Y": "ÝŶŸ",
    "z": "źżž", "Z": "ŹŻŽ",
    "oe": "œ", "OE": "Œ",
}  # fmt: skip

# Punctuation, spaces and invisible characters, grouped by their replacement.
_SYMBOLS: dict[str, str] = {
    "'": "\u2018\u2019\u201a\u201b\u2032\u00b4`\u2039\u203a",
    '"': "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb",
    "-": "\u2010\u2011\u2012\u2013\u2014\u2015\u2212",
    "...": "\u2026",
    " ": "\t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u202f\u205f\u3000",
    "\n": "\u2028\u2029\u0085",
    "": "\u00ad\u200b\u2060\ufeff",
}

#: Non-GSM character -> GSM-7 replacement (see the module docstring for the list and rules).
TRANSLITERATION: dict[str, str] = {
    key: value for table in (_LETTERS, _SYMBOLS) for value, keys in table.items() for key in keys
}

_TRANSLATE = str.maketrans(TRANSLITERATION)

#: Exactly the characters for which Python's ``str.isspace()`` is true (a test checks it):
#: a message made only of these is empty.
_WHITESPACE = (
    "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


class EncodingPolicy(StrEnum):
    """What a campaign does with a message that is not GSM-7.

    REJECT: the row is rejected (MSG_NOT_GSM). TRANSLITERATE: apply :data:`TRANSLITERATION`,
    reject what is still not GSM-7. UCS2: send it as UCS-2 (70/67 units per segment; the
    account must have Unicode enabled by the provider).
    """

    REJECT = "reject"
    TRANSLITERATE = "transliterate"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class TextFacts:
    """What the network will make of one text.

    ``encoding`` is "gsm7" when every character is GSM-7, else "ucs2"; ``segments`` counts the
    SMS parts in that encoding (the billing unit); ``septets`` is None when not GSM-7;
    ``non_gsm`` lists the offending characters once each, in order of appearance.
    """

    encoding: str
    gsm7: bool
    septets: int | None
    ucs2_units: int
    segments: int
    non_gsm: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Reference implementation: one text, plain Python.
# --------------------------------------------------------------------------------------------


def _walk_segments(weights: Iterable[int], single: int, part: int) -> int:
    """Count segments greedily: a 2-unit character that does not fit goes to the next part.

    This is the exact rule of the spec (an escape pair or a surrogate pair is never split),
    which ``ceil(total / part)`` gets wrong whenever such a pair straddles a boundary.
    """
    weights = list(weights)
    if sum(weights) <= single:
        return 1
    segments, used = 1, 0
    for weight in weights:
        if used + weight > part:
            segments, used = segments + 1, 0
        used += weight
    return segments


def text_facts(text: str) -> TextFacts:
    """Encoding, septets, UCS-2 units, segments and non-GSM characters of one text.

    Plain Python on purpose: this is the readable reference the vectorised
    :func:`check_messages` is tested against, and what ``smsdrop segments`` prints.
    """
    non_gsm = tuple(dict.fromkeys(c for c in text if c not in _SEPTETS))
    units = [2 if ord(c) > 0xFFFF else 1 for c in text]
    if non_gsm:
        segments = _walk_segments(units, UCS2_SINGLE, UCS2_PART)
        return TextFacts("ucs2", False, None, sum(units), segments, non_gsm)
    septets = [_SEPTETS[c] for c in text]
    segments = _walk_segments(septets, GSM7_SINGLE, GSM7_PART)
    return TextFacts("gsm7", True, sum(septets), sum(units), segments, ())


def transliterate(text: str) -> str:
    """Replace the non-GSM characters of :data:`TRANSLITERATION` by their GSM look-alikes.

    Idempotent, and a text that is already GSM-7 comes back unchanged.
    """
    return text.translate(_TRANSLATE)


# The bulk path (numpy over the Arrow UTF-8 buffers of a column) is smsdrop.gsm_arrays,
# imported on first use: a command that needs one text's facts starts in milliseconds.
_BULK = ("check_messages",)


def __getattr__(name: str) -> object:
    """``check_messages`` and the bulk path's internals, from :mod:`smsdrop.gsm_arrays`."""
    if name.startswith("__"):
        raise AttributeError(name)
    from smsdrop import gsm_arrays

    try:
        return getattr(gsm_arrays, name)
    except AttributeError:
        raise AttributeError(f"module 'smsdrop.gsm' has no attribute {name!r}") from None
