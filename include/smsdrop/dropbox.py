"""The drop-box's rules: how a SEND file moves, what comes back, and when.

One home for what the provider's SFTP protocol says about files (docs/PROTOCOL.md, the
spec in ``shared/spec/mtarget-sftp.md``), so the hook, the sensors, the triggers, the
warehouse and the sandbox all speak the same types:

* at most :data:`MAX_RECORDS` records a SEND file;
* the four file kinds (:class:`FileKind`) and the extensions each may carry
  (:data:`EXTENSIONS`; :mod:`smsdrop.naming` builds and parses the names);
* a SEND file's lifecycle in ``Send/``, ``tmp`` → ``csv`` → ``lock`` → ``done`` | ``reject``
  (:class:`RemoteState`), and the order in which it is probed (:data:`PROBE_ORDER`);
* the states the warehouse records, ``planned`` then the same lifecycle (:class:`FileState`),
  and the rule that they only move forward (:func:`advances`);
* the reports and their timing: the ACK once, 1 day after the send below 10,000 SMS and
  4 days at or above (:func:`ack_delay`); STOP and SMSMO in real time, growing files;
* the verdict of one look at ``Send/`` or ``Report/`` (:func:`file_verdict`,
  :func:`report_verdict`): the synchronous sensors and the asynchronous triggers only
  gather what is there and ask these functions what it means.

No I/O and no Airflow here: everything is a function of what was found.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Final, NamedTuple

__all__ = [
    "ACK_LARGE_DELAY",
    "ACK_LARGE_FROM",
    "ACK_SMALL_DELAY",
    "EXTENSIONS",
    "FILE_STATES",
    "FINAL",
    "GROWING_REPORTS",
    "MAX_RECORDS",
    "PROBE_ORDER",
    "REPORT_KINDS",
    "SUBMITTED",
    "FileKind",
    "FileState",
    "RemoteState",
    "Verdict",
    "ack_delay",
    "advances",
    "file_verdict",
    "latest_state",
    "report_verdict",
    "state_file",
    "stem_of",
]


#: The provider's limit on the records of one SEND file ("up to 1 million recipients.
#: Beyond that, it is necessary to send several files").
MAX_RECORDS: Final = 1_000_000


class FileKind(StrEnum):
    """The four file families of the protocol; the value is the literal name prefix."""

    SEND = "SEND"
    ACK = "ACK"
    STOP = "STOP"
    SMSMO = "SMSMO"


#: What the provider writes back to ``Report/``, one file of each per SEND file.
REPORT_KINDS: Final = (FileKind.ACK, FileKind.STOP, FileKind.SMSMO)
#: Reports the provider appends to in real time (read from a byte offset, never "complete"),
#: STOP first: they are what the suppression list is made of. The ACK comes once, whole.
GROWING_REPORTS: Final = (FileKind.STOP, FileKind.SMSMO)


class RemoteState(StrEnum):
    """Where a SEND name is in the provider's ``Send/`` folder; the value is the extension.

    The provider only moves a file forward: ``tmp`` (ours, uploading) → ``csv`` (handed
    over) → ``lock`` (taken) → ``done`` | ``reject``. ``absent``: none of these exist.
    """

    ABSENT = "absent"
    TMP = "tmp"
    CSV = "csv"
    LOCK = "lock"
    DONE = "done"
    REJECT = "reject"

    @property
    def submitted(self) -> bool:
        """Handed to the provider: uploading the name again could send the campaign twice."""
        return self in SUBMITTED

    @property
    def final(self) -> bool:
        return self in FINAL


#: Handed over: from the rename to ``.csv`` on, the provider may send it at any moment.
SUBMITTED: Final = frozenset(
    {RemoteState.CSV, RemoteState.LOCK, RemoteState.DONE, RemoteState.REJECT}
)
#: The provider's verdict: nothing moves after these.
FINAL: Final = frozenset({RemoteState.DONE, RemoteState.REJECT})

#: The order in which the states are probed: the order in which a file moves. Probing in
#: the same direction as the file can never miss it (a file seen in none of the probes would
#: have had to move backwards), whereas a directory listing is not atomic on every server.
PROBE_ORDER: Final = (
    RemoteState.TMP,
    RemoteState.CSV,
    RemoteState.LOCK,
    RemoteState.DONE,
    RemoteState.REJECT,
)

#: Extensions each kind may carry: a SEND file's are its states; reports are ``.csv`` only.
EXTENSIONS: Final[dict[FileKind, tuple[str, ...]]] = {
    FileKind.SEND: tuple(state.value for state in PROBE_ORDER),
    **{kind: (RemoteState.CSV.value,) for kind in REPORT_KINDS},
}


def stem_of(name: str) -> str:
    """``name`` without its lifecycle extension (a stem is returned as it is)."""
    base, dot, ext = name.rpartition(".")
    return base if dot and ext in EXTENSIONS[FileKind.SEND] else name


def state_file(stem: str, state: RemoteState) -> str:
    """The file name of SEND ``stem`` in ``state``: the extension is the state."""
    return f"{stem}.{state.value}"


def latest_state(found: Mapping[str, int]) -> RemoteState:
    """The most advanced state among the extensions found (``done``/``reject`` win)."""
    state = RemoteState.ABSENT
    for candidate in PROBE_ORDER:
        if candidate.value in found:
            state = candidate
    return state


#: A SEND file's state as the warehouse records it: ``planned`` (named, not handed over
#: yet), then the remote lifecycle. ``absent`` is never recorded: a planned name that is
#: absent remotely is still planned.
FileState = StrEnum(
    "FileState",
    [("PLANNED", "planned"), *((state.name, state.value) for state in PROBE_ORDER)],
    module=__name__,
    qualname="FileState",
)


#: The order the recorded states happen in; ``done`` and ``reject`` are both last (final).
FILE_STATES: Final[dict[FileState, int]] = {
    FileState.PLANNED: 0,
    FileState.TMP: 1,
    FileState.CSV: 2,
    FileState.LOCK: 3,
    FileState.DONE: 4,
    FileState.REJECT: 4,
}


def advances(current: FileState | str, new: FileState | str) -> bool:
    """Whether recording ``new`` over ``current`` moves the file: states only move forward
    (a retried task recording an earlier state changes nothing) and a final state is final."""
    current, new = FileState(current), FileState(new)
    return current not in FINAL and FILE_STATES[new] > FILE_STATES[current]


#: The spec: stats "1 day after for a volume of less than 10 000 SMS", "4 days after for
#: more than 10 000". Exactly 10,000 is not covered; the longer wait is the safe side.
ACK_LARGE_FROM: Final = 10_000
ACK_SMALL_DELAY: Final = timedelta(days=1)
ACK_LARGE_DELAY: Final = timedelta(days=4)


def ack_delay(
    sms_count: int | None,
    *,
    small: timedelta = ACK_SMALL_DELAY,
    large: timedelta = ACK_LARGE_DELAY,
    large_from: int = ACK_LARGE_FROM,
) -> timedelta:
    """How long after the send the ACK comes: ``small`` below ``large_from`` SMS, else
    ``large``. An unknown count takes the long delay: a short wait would fail a good
    campaign, a long one only waits. (The sandbox passes its own configured values.)"""
    return small if sms_count is not None and sms_count < large_from else large


class Verdict(NamedTuple):
    """What one look at ``Send/`` or ``Report/`` means for a wait.

    ``status`` is ``success`` or ``error`` when the wait is over, None to look again;
    ``reason`` names an error (``rejected``, ``absent``, ``stuck``); ``state`` is the remote state
    found (``present`` for a report); ``path`` the remote file found, or awaited;
    ``message`` says it, for the log and the error.
    """

    status: str | None
    reason: str | None
    state: str
    path: str
    size: int | None
    message: str

    @property
    def over(self) -> bool:
        return self.status is not None


def file_verdict(
    name: str,
    folder: str,
    found: Mapping[str, int],
    *,
    waited: timedelta | None = None,
    deadline: timedelta | None = None,
) -> Verdict:
    """The verdict on SEND ``name`` from the sizes of its files in ``folder`` by extension
    (what probing :data:`PROBE_ORDER` found): ``done`` succeeds; ``reject`` and a name
    under no extension are errors; anything else waits — except a file handed over
    (``csv``, ``lock``) that has waited ``deadline`` or longer since the upload
    (``waited``): the provider processes a file in minutes, so one still unprocessed after
    the deadline is an error (``stuck``) a person must look into, not a longer wait."""
    stem = stem_of(name)
    state = latest_state(found)
    path = posixpath.join(folder, state_file(stem, state))
    size = found.get(state.value)
    if state is RemoteState.DONE:
        return Verdict(
            "success", None, state.value, path, size, f"{path}: the provider accepted {name}"
        )
    if state is RemoteState.REJECT:
        return Verdict(
            "error",
            "rejected",
            state.value,
            path,
            size,
            f"{path}: the provider REJECTED {name}; nothing of it was sent. "
            "Fix the file and submit it under a new name (this one is spent).",
        )
    if state is RemoteState.ABSENT:
        return Verdict(
            "error",
            "absent",
            state.value,
            posixpath.join(folder, state_file(stem, RemoteState.DONE)),
            None,
            f"{name} is not in {folder}/ under any extension: it was never uploaded "
            "(or the provider's retention deleted it)",
        )
    if state in SUBMITTED and deadline is not None and waited is not None and waited >= deadline:
        return Verdict(
            "error",
            "stuck",
            state.value,
            path,
            size,
            f"{path}: {name} is still .{state} {_minutes(waited)} min after its upload "
            f"(deadline {_minutes(deadline)} min, lock_deadline_minutes): the provider has "
            "not processed it. It may still be sent: do not upload it again; ask the "
            "provider what became of it.",
        )
    return Verdict(
        None, None, state.value, path, size, f"{name} is .{state}; waiting for .done or .reject"
    )


def _minutes(span: timedelta) -> int:
    """Whole minutes of ``span``, as a person reads a deadline."""
    return int(span.total_seconds() // 60)


def report_verdict(path: str, size: int | None, size_after: int | None) -> Verdict:
    """The verdict on the report at ``path`` from its size (None: not there) and its size
    a moment later (the same look again, or ``size`` when no wait is asked): a report counts
    once its size holds still, since a real server may be caught writing it."""
    if size is None:
        return Verdict(None, None, "waiting", path, None, f"{path} is not there yet")
    if size_after != size:
        return Verdict(
            None,
            None,
            "waiting",
            path,
            size_after,
            f"{path} is still growing ({size} → {size_after} bytes)",
        )
    return Verdict("success", None, "present", path, size, f"{path} is there ({size} bytes)")
