"""Report samples shared by the report tests: the spec's ACK line, the typed columns the
readers give, and hypothesis strategies for reply files that stress the CSV."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
from hypothesis import strategies as st

from smsdrop.reports import write_reply_line

SPEC_ACK = (
    "VZBL6259;+33787789959;Logement;http://www.URL.com/fr/ref-VSQR0339 4P 79m2 3ème étage"
    " Imm ancien 2Chbres Volumes vue Parfait état;2 ;sent;92c30692-705b-4433-8789- 92a1e78104b4"
).encode()

ACK_DTYPES = {
    "idremote": pd.ArrowDtype(pa.string()),
    "msisdn": pd.ArrowDtype(pa.string()),
    "oadc": pd.ArrowDtype(pa.string()),
    "msg": pd.ArrowDtype(pa.string()),
    "idstatus": pd.ArrowDtype(pa.int64()),
    "status": pd.ArrowDtype(pa.string()),
    "ackoperator": pd.ArrowDtype(pa.string()),
}
REPLY_DTYPES = {
    "msisdn": pd.ArrowDtype(pa.string()),
    "date": pd.ArrowDtype(pa.date32()),
    "hour": pd.ArrowDtype(pa.time32("s")),
    "message": pd.ArrowDtype(pa.string()),
    "idremote": pd.ArrowDtype(pa.string()),
    "received_at": pd.ArrowDtype(pa.timestamp("s", tz="Europe/Paris")),
}


# Message text that stresses the CSV: delimiters, quotes, CR/LF, multi-byte characters.
MESSAGES = st.text(
    alphabet=st.sampled_from(list('ab ;"\r\n') + ["é", "€", "😀", "\u00a0", "\ufeff"]),
    max_size=12,
)
WHEN = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC, microsecond=0)
)
WHEN_0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
RECORDS = st.lists(
    st.tuples(
        st.from_regex(r"\+33[67][0-9]{8}", fullmatch=True),
        WHEN,
        MESSAGES,
        st.text("AZ09", max_size=4),
    ),
    max_size=8,
)


def reply_file(records: list[tuple[str, datetime, str, str]], bom: bool, lf: bool) -> bytes:
    data = b"".join(write_reply_line(*r) for r in records)
    if lf:  # the provider may use LF: outside quotes CRLF → LF (quoted CRs stay)
        data = data.replace(b"\r\n", b"\n")
    return (b"\xef\xbb\xbf" if bom else b"") + data
