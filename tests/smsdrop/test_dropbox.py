"""The drop-box's rules as pure functions: lifecycle, recorded states, ACK timing, verdicts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smsdrop import dropbox, naming
from smsdrop.dropbox import (
    EXTENSIONS,
    FILE_STATES,
    PROBE_ORDER,
    FileKind,
    FileState,
    RemoteState,
    Verdict,
    ack_delay,
    advances,
    file_verdict,
    latest_state,
    report_verdict,
    state_file,
    stem_of,
)

NAME = "SEND-12345-20261201-0800-box.csv"
STEM = NAME.removesuffix(".csv")
REPORT = "Report/ACK-12345-20261201-0800-box.csv"


def test_latest_state_prefers_the_most_advanced_file() -> None:
    assert latest_state({}) is RemoteState.ABSENT
    assert latest_state({"tmp": 1}) is RemoteState.TMP
    assert latest_state({"tmp": 1, "done": 5}) is RemoteState.DONE
    assert latest_state({"csv": 5, "lock": 5}) is RemoteState.LOCK
    assert [s for s in RemoteState if s.submitted] == ["csv", "lock", "done", "reject"]


def test_the_lifecycle_is_one_table() -> None:
    assert PROBE_ORDER == tuple(s for s in RemoteState if s is not RemoteState.ABSENT)
    assert [s for s in RemoteState if s.final] == ["done", "reject"]
    assert EXTENSIONS[FileKind.SEND] == ("tmp", "csv", "lock", "done", "reject")
    assert all(EXTENSIONS[kind] == ("csv",) for kind in dropbox.REPORT_KINDS)
    assert set(EXTENSIONS) == set(FileKind)
    # The warehouse records "planned", then exactly the remote lifecycle.
    assert [s.value for s in FileState] == ["planned", *EXTENSIONS[FileKind.SEND]]
    assert [s for s in FileState if s in dropbox.FINAL] == ["done", "reject"]
    assert list(FILE_STATES) == list(FileState)
    assert dropbox.GROWING_REPORTS == (FileKind.STOP, FileKind.SMSMO)
    # naming speaks the same types (re-exported, not copied).
    assert naming.FileKind is FileKind and naming.EXTENSIONS is EXTENSIONS


def test_stems_and_state_files() -> None:
    assert stem_of(NAME) == STEM
    assert stem_of(f"{STEM}.lock") == STEM
    assert stem_of(STEM) == STEM  # a stem stays a stem
    assert stem_of("notes.txt") == "notes.txt"  # not a lifecycle extension: kept
    assert state_file(STEM, RemoteState.REJECT) == f"{STEM}.reject"


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        ("planned", "tmp", True),
        ("planned", "done", True),
        ("csv", "lock", True),
        ("lock", "csv", False),  # a retried task records an earlier state: no change
        ("csv", "csv", False),
        ("done", "reject", False),  # a final state is final
        ("reject", "done", False),
        ("done", "planned", False),
    ],
)
def test_recorded_states_only_move_forward(current: str, new: str, moves: bool) -> None:
    assert advances(current, new) is moves


@pytest.mark.parametrize(
    ("sms", "delay"),
    [
        (0, timedelta(days=1)),
        (9_999, timedelta(days=1)),
        (10_000, timedelta(days=4)),  # not covered by the spec: the safe, longer wait
        (250_000, timedelta(days=4)),
        (None, timedelta(days=4)),  # unknown count: the longer wait
    ],
)
def test_ack_delay_follows_the_spec(sms: int | None, delay: timedelta) -> None:
    assert ack_delay(sms) == delay


def test_ack_delay_takes_other_values() -> None:
    rule = {"small": timedelta(hours=1), "large": timedelta(hours=2), "large_from": 5}
    assert ack_delay(4, **rule) == timedelta(hours=1)
    assert ack_delay(5, **rule) == timedelta(hours=2)


# --- the status verdict: one row per state a look can find ------------------------------


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (
            {},
            Verdict(
                "error",
                "absent",
                "absent",
                f"Send/{STEM}.done",
                None,
                f"{NAME} is not in Send/ under any extension: it was never uploaded (or the "
                "provider's retention deleted it)",
            ),
        ),
        (
            {"tmp": 3},
            Verdict(
                None,
                None,
                "tmp",
                f"Send/{STEM}.tmp",
                3,
                f"{NAME} is .tmp; waiting for .done or .reject",
            ),
        ),
        (
            {"csv": 10},
            Verdict(
                None,
                None,
                "csv",
                f"Send/{STEM}.csv",
                10,
                f"{NAME} is .csv; waiting for .done or .reject",
            ),
        ),
        (
            {"lock": 10},
            Verdict(
                None,
                None,
                "lock",
                f"Send/{STEM}.lock",
                10,
                f"{NAME} is .lock; waiting for .done or .reject",
            ),
        ),
        (
            {"tmp": 1, "done": 10},  # a stale tmp beside the verdict: the verdict counts
            Verdict(
                "success",
                None,
                "done",
                f"Send/{STEM}.done",
                10,
                f"Send/{STEM}.done: the provider accepted {NAME}",
            ),
        ),
        (
            {"reject": 10},
            Verdict(
                "error",
                "rejected",
                "reject",
                f"Send/{STEM}.reject",
                10,
                f"Send/{STEM}.reject: the provider REJECTED {NAME}; nothing of it was sent. "
                "Fix the file and submit it under a new name (this one is spent).",
            ),
        ),
    ],
    ids=["absent", "tmp", "csv", "lock", "done", "reject"],
)
def test_file_verdict(found: dict[str, int], expected: Verdict) -> None:
    verdict = file_verdict(NAME, "Send", found)
    assert verdict == expected
    assert verdict.over is (expected.status is not None)
    assert type(verdict.state) is str  # stored in the trigger's JSON event as it is


STUCK = (
    "{path}: " + NAME + " is still .{state} {waited} min after its upload (deadline 120 min, "
    "lock_deadline_minutes): the provider has not processed it. It may still be sent: do not "
    "upload it again; ask the provider what became of it."
)


@pytest.mark.parametrize(
    ("found", "waited", "status"),
    [
        ({"lock": 10}, timedelta(minutes=119, seconds=59), None),  # one second short: waits
        ({"lock": 10}, timedelta(minutes=120), "error"),  # the deadline itself: stuck
        ({"lock": 10}, timedelta(hours=5, minutes=3), "error"),
        ({"csv": 10}, timedelta(minutes=121), "error"),  # never taken is stuck too
        ({"tmp": 10}, timedelta(minutes=500), None),  # not handed over: the sensor's timeout
        ({"lock": 10, "done": 10}, timedelta(minutes=500), "success"),  # a verdict came
        ({"reject": 10}, timedelta(minutes=500), "error"),
    ],
    ids=["short", "at-deadline", "hours", "csv", "tmp", "done", "reject"],
)
def test_a_file_unprocessed_past_the_deadline_is_stuck(
    found: dict[str, int], waited: timedelta, status: str | None
) -> None:
    deadline = timedelta(minutes=120)
    verdict = file_verdict(NAME, "Send", found, waited=waited, deadline=deadline)
    assert verdict.status == status
    without = file_verdict(NAME, "Send", found)  # no deadline: as before
    if verdict.reason == "stuck":
        state = next(iter(found))
        path = f"Send/{STEM}.{state}"
        assert verdict == Verdict(
            "error",
            "stuck",
            state,
            path,
            10,
            STUCK.format(path=path, state=state, waited=int(waited.total_seconds() // 60)),
        )
        assert without.status is None
    else:
        assert verdict == without


def test_file_verdict_names_the_folder_it_was_given() -> None:
    verdict = file_verdict(NAME, "Out/Send", {"done": 1})
    assert verdict.path == f"Out/Send/{STEM}.done"
    assert "not in Out/Send/" in file_verdict(NAME, "Out/Send", {}).message


# --- the report verdict --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "size_after", "expected"),
    [
        (None, None, Verdict(None, None, "waiting", REPORT, None, f"{REPORT} is not there yet")),
        (
            100,
            180,
            Verdict(
                None, None, "waiting", REPORT, 180, f"{REPORT} is still growing (100 → 180 bytes)"
            ),
        ),
        (
            100,
            None,  # gone between the two looks: not a report to count
            Verdict(
                None, None, "waiting", REPORT, None, f"{REPORT} is still growing (100 → None bytes)"
            ),
        ),
        (
            180,
            180,
            Verdict("success", None, "present", REPORT, 180, f"{REPORT} is there (180 bytes)"),
        ),
        (0, 0, Verdict("success", None, "present", REPORT, 0, f"{REPORT} is there (0 bytes)")),
    ],
    ids=["absent", "growing", "vanished", "stable", "empty"],
)
def test_report_verdict(size: int | None, size_after: int | None, expected: Verdict) -> None:
    assert report_verdict(REPORT, size, size_after) == expected
