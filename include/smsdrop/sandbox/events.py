"""The sandbox's event log: one JSON object per line, the oracle of every test.

What happened, in order: connections accepted or refused, files received, locked, done or
rejected (with the reason the real provider never gives), each message sent or not sent,
each report written, each reply received. Tests ask it "was anything sent twice, was
anything lost" (:func:`events`).

The log holds personal data (full MSISDNs, reply texts): that is what makes it an oracle.
It lives under the sandbox root, in the private directory the SFTP account cannot reach,
and nothing from it is ever printed to stdout/stderr.

Every line has ``kind`` and ``at`` (simulated time, ISO 8601 UTC); all but the per-message
lines also have ``wall`` (real time; a million messages share their batch's). See
docs/SANDBOX.md for the kinds and their fields.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

__all__ = ["EVENTS_FILE", "EventLog", "EventTail", "events", "iter_events", "stamp"]

#: Where the log lives, relative to the sandbox root (the private directory).
EVENTS_FILE: Final = Path(".sandbox") / "events.jsonl"


def stamp(instant: datetime) -> str:
    """An instant as the log writes it: UTC, seconds and microseconds, ``Z``-less ISO 8601."""
    return instant.astimezone(UTC).isoformat()


class EventLog:
    """Appends events; safe to call from the event loop and worker threads alike.

    Each event is written with one ``write`` and flushed at once, so a reader in another
    thread or process sees whole lines (and :func:`iter_events` skips a partial last line).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "ab")  # noqa: SIM115 - closed in close()
        if self._file.tell() and _last_byte(path) != b"\n":
            # A process killed mid-write left half a line: end it, so the next event
            # starts a line of its own (readers skip the torn one).
            self._file.write(b"\n")
            self._file.flush()

    def emit(self, kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
        """Write one event; returns it (as written)."""
        event = self.event(kind, at, **fields)
        self.write_lines(self.encode(event))
        return event

    @staticmethod
    def event(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
        """An event as :meth:`emit` writes it (build many, write them with one call)."""
        return {"kind": kind, "at": stamp(at), "wall": stamp(datetime.now(UTC)), **fields}

    @staticmethod
    def encode(*events: dict[str, Any]) -> bytes:
        return b"".join(
            (json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
            for e in events
        )

    def write_lines(self, data: bytes) -> None:
        """Append pre-built JSON lines (bulk message events are built vectorised)."""
        with self._lock:
            if not self._file.closed:
                self._file.write(data)
                self._file.flush()

    def size(self) -> int:
        """Bytes written so far (every event before this call is inside)."""
        with self._lock:
            return self._file.tell() if not self._file.closed else self.path.stat().st_size

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _matcher(kind: str | None, match: dict[str, Any]):
    prefix = f'{{"kind":"{kind}"'.encode() if kind else b""

    def matches(line: bytes) -> dict | None:
        if prefix and not line.startswith(prefix):
            return None  # most lines are messages: skip them without parsing
        try:
            event = json.loads(line)
        except ValueError:  # the torn last line of a killed process (see EventLog)
            return None
        return event if all(event.get(k) == v for k, v in match.items()) else None

    return matches


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1)


class EventTail:
    """Follows the log: each :meth:`poll` returns the new matching events, reading only the
    bytes added since the last one (a million-message campaign writes ~200 MB)."""

    def __init__(self, root: Path | str, kind: str | None = None, **match: Any) -> None:
        self.path = Path(root) / EVENTS_FILE
        self.offset = 0
        self._matches = _matcher(kind, match)

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # a partial last line waits for the next poll
        self.offset += end
        found = []
        for line in data[:end].splitlines():
            event = self._matches(line)
            if event is not None:
                found.append(event)
        return found


def iter_events(root: Path | str, kind: str | None = None, **match: Any) -> Iterator[dict]:
    """Events of the sandbox at ``root``, oldest first; ``kind`` and ``field=value`` filter.

    A last line without its newline (being written) is skipped.
    """
    path = Path(root) / EVENTS_FILE
    if not path.exists():
        return
    matches = _matcher(kind, match)
    with open(path, "rb") as handle:
        for line in handle:
            if line.endswith(b"\n"):
                event = matches(line)
                if event is not None:
                    yield event


def events(root: Path | str, kind: str | None = None, **match: Any) -> list[dict]:
    """All events of the sandbox at ``root`` matching ``kind`` and ``field=value``."""
    return list(iter_events(root, kind, **match))
