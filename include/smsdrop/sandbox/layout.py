"""Where the sandbox keeps things under its root.

The SFTP account is chrooted to the root and sees ``Send/`` and ``Report/`` (the spec's two
directories). Everything else the sandbox keeps — host key, generated client key, event
log (personal data), the state of campaigns in flight with their SEND files, the reply
inbox — lives in
``.sandbox/``, which the SFTP server refuses to show or open: a client must never download
the host's private key or another campaign's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from smsdrop.sandbox.events import EVENTS_FILE

__all__ = ["PRIVATE_DIR", "Layout"]

PRIVATE_DIR: Final = ".sandbox"


@dataclass(frozen=True)
class Layout:
    """The paths of one sandbox root."""

    root: Path

    @property
    def send(self) -> Path:
        return self.root / "Send"

    @property
    def report(self) -> Path:
        return self.root / "Report"

    @property
    def private(self) -> Path:
        return self.root / PRIVATE_DIR

    @property
    def events(self) -> Path:
        return self.root / EVENTS_FILE

    @property
    def state(self) -> Path:
        """What survives a restart: snapshot, kept SEND files (:mod:`smsdrop.sandbox.state`)."""
        return self.private / "state"

    @property
    def tmp(self) -> Path:
        """Reports being written, moved into ``Report/`` whole."""
        return self.private / "tmp"

    @property
    def inbox(self) -> Path:
        """Requests from other processes (``smsdrop sandbox reply``), one JSON file each."""
        return self.private / "inbox"

    @property
    def host_key(self) -> Path:
        return self.private / "host_ed25519"

    @property
    def client_key(self) -> Path:
        """A client key generated when no authentication was configured."""
        return self.private / "client_ed25519"

    def create(self) -> None:
        for path in (self.send, self.report, self.state, self.tmp, self.inbox):
            path.mkdir(parents=True, exist_ok=True)
        self.private.chmod(0o700)
