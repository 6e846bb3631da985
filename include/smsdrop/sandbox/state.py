"""What the sandbox keeps across a restart or a SIGKILL: campaigns in flight, the balance,
file ages and the clock, under ``ROOT/.sandbox/state/``.

A real provider does not forget a scheduled campaign when it restarts. The design, and why:

* **The event log is the journal.** Every change of a campaign is first an event line
  (``message_sent``/``message_not_sent`` per message, ``batch_done``, ``reply_received``,
  ``report_written``): the log is what tests call "sent", so it is also what recovery
  trusts. A **snapshot** (``state.json`` plus numpy arrays) is committed after each change,
  with the log's size at that moment (``log_offset``); at start the snapshot is loaded and
  the log lines after ``log_offset`` are replayed onto it. A SIGKILL between an event and
  its snapshot loses nothing, and a message in the log is never decided again.
* **Atomic commits.** Every file is written beside its target, ``fsync``'ed and renamed
  over it (POSIX rename is atomic), then the directory is ``fsync``'ed; ``state.json`` is
  written last and names the generation of each campaign's arrays, so a half-written
  commit is never read: the previous one is.
* **Client-visible effects before their event, repaired at start.** An ACK is renamed into
  ``Report/`` before its ``report_written`` line: an ACK found there without its line is
  logged at start, never written twice. Replies are appended to SMSMO/STOP before their
  ``reply_received`` lines: the snapshot holds each report's size, so bytes beyond
  "snapshot size + replayed lines" are replies nobody logged, cut at start and produced
  again (simulated replies are a function of the seed; an injected one's request is still
  in the inbox, taken again).
* **The SEND file stays** as a hard link in ``state/campaigns/<stem>/`` (no copy): the
  client may delete its ``.done`` at once, the plan is rebuilt from it at start. Outcome
  draws and batches are saved at acceptance, so a restart with other options cannot change
  a campaign already scheduled.

Restart on the same root with the same account options. The simulated clock resumes where
it was, plus the real time elapsed since (× speed): time passes for the provider while it
is down, and messages that fell due meanwhile go at once, stamped with their due time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from smsdrop.sandbox.events import EVENTS_FILE, stamp

__all__ = ["STATE_VERSION", "Saved", "StateStore", "Tail", "read_tail"]

log = logging.getLogger("smsdrop.sandbox")

STATE_VERSION: Final = 1
#: A stem used as a folder name as it is (every valid SEND name's is); any other, a client's
#: choice (``..``, a newline…), is hashed: it can never name another folder.
_SAFE_STEM: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,200}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """``path`` holds ``data`` whole, or its previous content: never a mix. ``durable``:
    fsync'ed too, so a machine losing power keeps it (a killed process never loses it)."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
    os.replace(partial, path)
    if durable:
        _fsync_dir(path.parent)


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@dataclass
class Saved:
    """A loaded snapshot: the JSON document and where its arrays are."""

    document: dict[str, Any]
    folder: Path

    @property
    def log_offset(self) -> int:
        return int(self.document.get("log_offset", 0))

    @property
    def campaigns(self) -> dict[str, dict[str, Any]]:
        return self.document.get("campaigns", {})

    def arrays(self, stem: str, which: str, generation: int | None = None) -> dict[str, Any]:
        name = f"{which}.npz" if generation is None else f"{which}-{generation}.npz"
        with np.load(self.folder / "campaigns" / stem / name) as data:
            return {key: data[key] for key in data.files}


@dataclass
class Tail:
    """What the log says happened after the snapshot (or since the start, without one)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    requests: set[str] = field(default_factory=set)  # inbox request ids already taken
    latest: datetime | None = None  # the latest simulated instant logged

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("kind") == kind]


#: Event kinds recovery replays (the rest, connections and intake steps, change no state).
REPLAYED: Final = frozenset(
    {
        "file_done",
        "file_rejected",
        "campaign_scheduled",
        "message_sent",
        "message_not_sent",
        "batch_done",
        "reply_received",
        "reply_unmatched",
        "report_written",
        "clock_advanced",
    }
)


def read_tail(root: Path, offset: int) -> Tail:
    """The whole lines of the event log from byte ``offset`` (a torn last line is skipped)."""
    tail = Tail()
    path = root / EVENTS_FILE
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return tail
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is not whole
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line torn by a kill (EventLog ended it with a newline)
        if not isinstance(event, dict):
            continue
        at = event.get("at")
        if isinstance(at, str):
            instant = datetime.fromisoformat(at)
            tail.latest = instant if tail.latest is None else max(tail.latest, instant)
        if event.get("request"):
            tail.requests.add(str(event["request"]))
        if event.get("kind") in REPLAYED:
            tail.events.append(event)
    return tail


class StateStore:
    """Reads and commits the snapshot under ``state/`` (one writer: the worker thread).

    ``durable`` (the default) fsyncs each commit; tests turn it off for speed (a SIGKILL
    loses nothing the kernel has, fsync or not; a power cut would).
    """

    def __init__(self, folder: Path, durable: bool = True) -> None:
        self.folder = folder
        self.durable = durable
        self.campaigns = folder / "campaigns"
        self.document = folder / "state.json"
        self.clock_file = folder / "clock.json"
        self.campaigns.mkdir(parents=True, exist_ok=True)

    def campaign_dir(self, stem: str) -> Path:
        if _SAFE_STEM.fullmatch(stem):
            return self.campaigns / stem
        digest = hashlib.sha256(stem.encode("utf-8", "surrogateescape")).hexdigest()
        return self.campaigns / f"h-{digest[:40]}"

    def source(self, stem: str, name: str) -> Path:
        """The kept SEND file of ``stem`` (named as received, ``….csv``)."""
        return self.campaign_dir(stem) / name

    def kept(self) -> dict[str, str]:
        """Stem → name of every kept SEND file (read from the file, not the folder name)."""
        found = {}
        for folder in sorted(self.campaigns.iterdir()):
            for path in folder.glob("*.csv"):
                if not path.name.startswith("."):
                    found[path.name.rsplit(".", 1)[0]] = path.name
        return found

    def link_source(self, lock: Path, stem: str, name: str) -> Path:
        """Keep the SEND file: a hard link to the ``.lock`` (no copy), made once."""
        target = self.source(stem, name)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            partial.unlink(missing_ok=True)
            os.link(lock, partial)
            os.replace(partial, target)
            if self.durable:
                _fsync_dir(target.parent)
        return target

    def drop(self, stem: str) -> None:
        """Forget a campaign's kept files (a rejected file)."""
        folder = self.campaign_dir(stem)
        if folder.is_dir():
            for path in folder.iterdir():
                path.unlink(missing_ok=True)
            folder.rmdir()

    def save_static(self, stem: str, **arrays: np.ndarray) -> None:
        """Arrays fixed at acceptance (batches, draws): written once."""
        folder = self.campaign_dir(stem)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "static.npz", _npz_bytes(**arrays), self.durable)

    def save_dynamic(self, stem: str, generation: int, **arrays: np.ndarray) -> None:
        path = self.campaign_dir(stem) / f"dynamic-{generation}.npz"
        write_atomic(path, _npz_bytes(**arrays), self.durable)

    def commit(self, document: dict[str, Any], generations: dict[str, int]) -> None:
        """Write ``state.json`` (the commit point), then remove superseded arrays."""
        document = {**document, "version": STATE_VERSION}
        data = json.dumps(document, separators=(",", ":")).encode()
        write_atomic(self.document, data, self.durable)
        for stem, generation in generations.items():
            keep = f"dynamic-{generation}.npz"
            for old in self.campaign_dir(stem).glob("dynamic-*.npz"):
                if old.name != keep:
                    old.unlink(missing_ok=True)

    def load(self) -> Saved | None:
        try:
            document = json.loads(self.document.read_bytes())
        except FileNotFoundError:
            return None
        if document.get("version") != STATE_VERSION:
            raise ValueError(
                f"{self.document}: state version {document.get('version')}, "
                f"this sandbox reads {STATE_VERSION}"
            )
        return Saved(document, self.folder)

    def save_clock(self, sim: datetime) -> None:
        """The simulated now and the real now it goes with (resumed from at start); every
        housekeeping round, not fsync'ed (a lost one costs a few simulated seconds)."""
        data = {"sim": stamp(sim), "wall": stamp(datetime.now(UTC))}
        partial = self.clock_file.with_name(f".{self.clock_file.name}.partial")
        partial.write_text(json.dumps(data))
        os.replace(partial, self.clock_file)

    def resumed_clock(self, speed: float, saved: Saved | None) -> datetime | None:
        """Where the simulated clock was, advanced by the real time elapsed since (× speed)."""
        candidates = []
        sources: list[dict[str, Any]] = []
        try:
            sources.append(json.loads(self.clock_file.read_bytes()))
        except (FileNotFoundError, ValueError):
            pass
        if saved is not None and "sim" in saved.document:
            sources.append(saved.document)
        now = datetime.now(UTC)
        for source in sources:
            sim, wall = (
                datetime.fromisoformat(source["sim"]),
                datetime.fromisoformat(source["wall"]),
            )
            elapsed = max(0.0, (now - wall).total_seconds())
            candidates.append(sim + timedelta(seconds=elapsed * speed))
        return max(candidates) if candidates else None
