"""The reference and the samples shared by the msisdn tests.

phonenumbers one row at a time is the reference (``reference``); ``build_sample`` writes
example numbers of every type, mutated, in every accepted format, deterministically.
"""

from __future__ import annotations

import random
import re
import re._constants as sre_c
import re._parser as sre_parse

import pandas as pd
import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType
from phonenumbers.phonenumberutil import NumberParseException

from smsdrop.msisdn import MsisdnStatus, classify

SEED = 20261104
SAMPLE_SIZE = 60_000

# Regions of the agreement sample: the brief's list plus regions that exercise special
# metadata (shared calling codes, national prefix transform rules, leading zeros).
_REGION_CODES = """
FR BE DE ES IT GB IE NL CH PT US CA RU KZ BR MX AR IN CN JP AU ZA MA SN RE GP YT MQ GF
PM NC PF BL MF VA SM GG IM JE AG BS PR JM DO MG GA CC CX NF AT PL SE NO SJ FI AX DZ TN
CI CM HK SG NZ KR IL TR EH SX CW BQ CO PE CL VE NG KE EG SA AE AI AS BB BM DM GD GU KN
KY LC MP MS TC TT VC VG VI BY LT UZ
"""
REGIONS = tuple(_REGION_CODES.split())
# Default regions for numbers written with an international prefix: different IDDs ("00",
# "011", "010", "810", Australia's and Brazil's patterns…). Few of them keeps the test fast
# (the cost of classify is per distinct country within a call).
INTL_DEFAULTS = ("FR", "US", "CA", "GB", "IT", "DE", "JP", "RU", "KZ", "AU", "BR", "AR", "SN")
# Regions with national prefix transform rules or carrier codes, sampled more often.
_SPECIAL_CODES = "AR BR JP MG GA SM NF CC CX GG IM JE AG BS CN CO AU MX RU BY IT"
SPECIAL = tuple(_SPECIAL_CODES.split())
NON_GEO = (800, 808, 870, 878, 881, 882, 883, 888, 979)
TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)
SEPARATORS = (" ", " ", ".", "-", "\u00a0", "/")
MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def _metadata(key: str | int) -> PhoneMetadata:
    if isinstance(key, int):
        return PhoneMetadata.metadata_for_nongeo_region(key)
    return PhoneMetadata.metadata_for_region(key)


def _examples(key: str | int) -> list[str]:
    md = _metadata(key)
    found = []
    for name in TYPES:
        desc = getattr(md, name, None)
        if desc is not None and desc.example_number:
            found.append(desc.example_number)
    return found or ["123456789"]


# --------------------------------------------------------------------------------------------
# The reference: phonenumbers, one row at a time.
# --------------------------------------------------------------------------------------------


def reference(raw: object, region: str) -> tuple[str | None, str, str | None]:
    """(e164, status, country) as phonenumbers gives them, with our documented "00" rule."""
    if not isinstance(raw, str):
        return None, MsisdnStatus.INVALID, None
    digits = re.sub(r"[^0-9]", "", raw)
    idd = PhoneMetadata.metadata_for_region(region).international_prefix
    try:
        # Decision (docs/PROTOCOL.md): "00" + non-zero digit is an international prefix
        # whatever the default region; phonenumbers only knows the region's own prefix.
        if re.match("00[1-9]", digits) and not (idd and re.match(idd, digits)):
            number = phonenumbers.parse("+" + digits[2:], None)
        else:
            number = phonenumbers.parse(raw, region)
    except NumberParseException:
        return None, MsisdnStatus.INVALID, None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(number):
        return e164, MsisdnStatus.INVALID, None
    kind = phonenumbers.number_type(number)
    status = MsisdnStatus.MOBILE if kind in MOBILE_TYPES else MsisdnStatus.NOT_MOBILE
    return e164, status, phonenumbers.region_code_for_number(number)


# --------------------------------------------------------------------------------------------
# The sample: example numbers of every type, mutated, written in every accepted format.
# --------------------------------------------------------------------------------------------


def _mutate(rnd: random.Random, nsn: str, md: PhoneMetadata) -> str:
    roll = rnd.random()
    digits = list(nsn)
    if roll < 0.30:
        return nsn
    if roll < 0.55:
        for _ in range(rnd.randint(1, 3)):
            digits[rnd.randrange(len(digits))] = rnd.choice("0123456789")
        return "".join(digits)
    if roll < 0.75:
        for _ in range(rnd.randint(1, 2)):
            if rnd.random() < 0.5 and len(digits) > 1:
                del digits[rnd.randrange(len(digits))]
            else:
                digits.insert(rnd.randrange(len(digits) + 1), rnd.choice("0123456789"))
        return "".join(digits)
    lengths = md.general_desc.possible_length or (len(nsn),)
    length = max(1, rnd.choice(lengths) + rnd.choice((-1, 0, 0, 0, 1)))
    keep = nsn[: rnd.randint(0, min(3, length))]
    return keep + "".join(rnd.choice("0123456789") for _ in range(length - len(keep)))


def random_match(pattern: str, rnd: random.Random) -> tuple[str, bool]:
    """A random string matching ``pattern`` (digits only), and whether it hit a "$".

    Independent of smsdrop.msisdn: it walks Python's own parse tree of the pattern. Used to
    write national prefixes, carrier codes and international prefixes of every shape the
    metadata describes.
    """
    out: list[str] = []
    ended = False

    def walk(items: object) -> None:
        nonlocal ended
        for op, av in items:
            if op is sre_c.LITERAL:
                out.append(chr(av))
            elif op is sre_c.IN:
                choices = []
                for sub_op, sub_av in av:
                    if sub_op is sre_c.LITERAL:
                        choices.append(chr(sub_av))
                    elif sub_op is sre_c.RANGE:
                        choices.extend(chr(c) for c in range(sub_av[0], sub_av[1] + 1))
                    elif sub_op is sre_c.CATEGORY:
                        choices.extend("0123456789")
                out.append(rnd.choice(choices))
            elif op is sre_c.CATEGORY:
                out.append(rnd.choice("0123456789"))
            elif op is sre_c.SUBPATTERN:
                walk(av[-1])
            elif op is sre_c.BRANCH:
                walk(rnd.choice(av[1]))
            elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
                low, high, body = av
                for _ in range(rnd.randint(low, min(high, low + 3))):
                    walk(body)
            elif op is sre_c.AT:
                ended = True

    walk(sre_parse.parse(pattern))
    return "".join(out), ended


def _national_variants(rnd: random.Random, key: str, nsn: str) -> str:
    """Ways people dial at home, including carrier codes and transform-rule local numbers."""
    md = _metadata(key)
    prefix = md.national_prefix or ""
    roll = rnd.random()
    if roll < 0.3:
        return prefix + nsn
    if roll < 0.55 and md.national_prefix_for_parsing:
        text, ended = random_match(md.national_prefix_for_parsing, rnd)
        if ended:  # e.g. NANPA territories: a 7-digit local number, completed by the rule
            return text
        return text + nsn
    if roll < 0.7:
        return nsn
    if roll < 0.85:
        return nsn[-rnd.randint(4, 8) :]  # local number: NANPA, GG/JE/IM, MG, CC/CX, SM, NF…
    if key == "AR":
        cut = rnd.randint(2, 4)
        return "0" + nsn.lstrip("9")[:cut] + "15" + nsn.lstrip("9")[cut:]
    if key == "BR":
        return rnd.choice(("0", "90")) + rnd.choice(("12", "14", "15", "21", "31", "41")) + nsn
    if key == "JP":
        return "000" + rnd.choice("2569") + nsn[: rnd.randint(4, 6)]
    return rnd.choice(("0", "1", "9", "00", "01", "015", "8")) + nsn


def _decorate(rnd: random.Random, text: str) -> str:
    """Separators between digits and whitespace around, as people type them."""
    if rnd.random() < 0.5:
        out = []
        for i, ch in enumerate(text):
            if i and rnd.random() < 0.25:
                out.append(rnd.choice(SEPARATORS))
            out.append(ch)
        text = "".join(out)
    if rnd.random() < 0.15:
        text = rnd.choice((" ", "\t", "\u00a0", "  ")) + text + rnd.choice(("", " ", "\t"))
    return text


def _edge_case(rnd: random.Random) -> str:
    choices = (
        "",
        "1",
        "12",
        "+1",
        "+12",
        "+123",
        "00",
        "000",
        "+0",
        "0",
        "+",
        "++",
        "+00 33 6 12 34 56 78",
        "+0033612345678",
        "(06) 12 34 56 78",
        "(+33) 612345678",
        "+33 6",
        "0 6",
        "1 2",
        "(12)",
        "33612345678",
        "330612345678",
        "0000612345678",
    )
    if rnd.random() < 0.5:
        return rnd.choice(choices)
    length = rnd.randint(1, 22)
    body = "".join(rnd.choice("0123456789") for _ in range(length))
    return rnd.choice(("", "+", "00", "0")) + body


def build_sample(size: int, seed: int = SEED) -> list[tuple[str, str]]:
    """(raw input, default region) pairs: deterministic, ~0.3 s for 60,000."""
    rnd = random.Random(seed)
    keys: list[str | int] = [*REGIONS, *NON_GEO]
    examples = {key: _examples(key) for key in keys}
    out = []
    for _ in range(size):
        key = rnd.choice(SPECIAL if rnd.random() < 0.15 else keys)
        md = _metadata(key)
        cc = str(md.country_code)
        nsn = _mutate(rnd, rnd.choice(examples[key]), md)
        own = key if isinstance(key, str) else rnd.choice(REGIONS)
        default = rnd.choice(INTL_DEFAULTS)
        form = rnd.random()
        if form < 0.25:
            text = "+" + cc + nsn
        elif form < 0.35:
            prefix = md.national_prefix or "0"
            text = rnd.choice(("+" + cc + prefix + nsn, f"+{cc} ({prefix}) {nsn}"))
        elif form < 0.45:
            text = "00" + cc + nsn
        elif form < 0.5:
            idd = PhoneMetadata.metadata_for_region(default).international_prefix
            text = (random_match(idd, rnd)[0] if idd else "00") + cc + nsn
        elif form < 0.75 and isinstance(key, str):
            text, default = _national_variants(rnd, key, nsn), own
        elif form < 0.85:
            text, default = cc + rnd.choice(("", md.national_prefix or "0")) + nsn, own
        elif form < 0.95:
            text = rnd.choice(("", "0")) + nsn
            default = own if rnd.random() < 0.7 else default
        else:
            text = _edge_case(rnd)
        out.append((_decorate(rnd, text), default))
    return out


def run_ours(sample: list[tuple[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(sample, columns=["raw", "region"])
    parts = [classify(group["raw"], region) for region, group in frame.groupby("region")]
    return pd.concat(parts).reindex(frame.index)


def disagreements(sample: list[tuple[str, str]], ours: pd.DataFrame) -> list[tuple[object, ...]]:
    """Rows where (e164, status, country) differ from phonenumbers'."""
    bad = []
    for (raw, region), e164, status, country in zip(
        sample,
        ours["e164"].tolist(),
        ours["status"].tolist(),
        ours["country"].tolist(),
        strict=True,
    ):
        got = (None if e164 is pd.NA else e164, status, None if country is pd.NA else country)
        want = reference(raw, region)
        if got != want:
            bad.append((raw, region, got, want))
    return bad


VALID_E164 = [
    e
    for e, status, _ in (reference(raw, region) for raw, region in build_sample(3_000, seed=11))
    if status != MsisdnStatus.INVALID
]


def mobile_sample(size: int, seed: int) -> list[str]:
    """E.164 numbers written from the regions' mobile patterns: mostly valid mobiles."""
    rnd = random.Random(seed)
    mobile = {r: _metadata(r).mobile for r in REGIONS}
    regions = [r for r, desc in mobile.items() if desc and desc.national_number_pattern]
    out = []
    for _ in range(size):
        region = rnd.choice(regions)
        nsn, _ended = random_match(mobile[region].national_number_pattern, rnd)
        out.append(f"+{_metadata(region).country_code}{nsn}")
    return out
