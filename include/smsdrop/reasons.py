"""Stable reason codes for rejected rows: stored in the warehouse and shown to users.

Never rename a member: analysts' queries and stored rejects depend on these strings.
The order of the members is the order of precedence when a row fails several rules.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a recipient row was not put in a SEND file.

    MSG_TEMPLATE_FIELD: a placeholder of the message template is empty for this row.
    RECORD_MALFORMED: a record of a SEND file without exactly four fields (``check``).
    MSG_NO_OPTOUT_MENTION: a marketing SMS to a French number without the opt-out mention.
    FREQUENCY_CAPPED: the number already had the frequency cap's messages from other
    campaigns in the cap's days (:mod:`smsdrop.frequency`).
    """

    IDREMOTE_INVALID = "IDREMOTE_INVALID"
    MSISDN_INVALID = "MSISDN_INVALID"
    MSISDN_NOT_MOBILE = "MSISDN_NOT_MOBILE"
    OADC_INVALID = "OADC_INVALID"
    MSG_EMPTY = "MSG_EMPTY"
    MSG_NOT_GSM = "MSG_NOT_GSM"
    MSG_TOO_LONG = "MSG_TOO_LONG"
    MSG_TEMPLATE_FIELD = "MSG_TEMPLATE_FIELD"
    MSG_NO_OPTOUT_MENTION = "MSG_NO_OPTOUT_MENTION"
    OPTED_OUT = "OPTED_OUT"
    FREQUENCY_CAPPED = "FREQUENCY_CAPPED"
    MSISDN_DUPLICATE = "MSISDN_DUPLICATE"
    RECORD_MALFORMED = "RECORD_MALFORMED"


#: The field each reason is about, for messages that name file, line and field.
REASON_FIELD: dict[Reason, str] = {
    Reason.IDREMOTE_INVALID: "IDREMOTE",
    Reason.MSISDN_INVALID: "MSISDN",
    Reason.MSISDN_NOT_MOBILE: "MSISDN",
    Reason.OADC_INVALID: "OADC",
    Reason.MSG_EMPTY: "MSG",
    Reason.MSG_NOT_GSM: "MSG",
    Reason.MSG_TOO_LONG: "MSG",
    Reason.MSG_TEMPLATE_FIELD: "MSG",
    Reason.MSG_NO_OPTOUT_MENTION: "MSG",
    Reason.MSISDN_DUPLICATE: "MSISDN",
    Reason.OPTED_OUT: "MSISDN",
    Reason.FREQUENCY_CAPPED: "MSISDN",
    Reason.RECORD_MALFORMED: "record",
}
