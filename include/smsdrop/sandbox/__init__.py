"""A twin of the provider's SFTP drop-box, for tests, demos and trying campaigns safely.

A real SFTP server (asyncssh) with the provider's directories, naming, checks, schedule
rules, delays and reports, on a simulated clock, recording everything in an event log.
Start it with ``smsdrop sandbox serve`` or from Python::

    from smsdrop.sandbox import Sandbox, SandboxConfig
    with Sandbox(SandboxConfig(root=Path("var/sandbox"), port=0)) as sandbox:
        ...  # upload with any SFTP client to 127.0.0.1:sandbox.port

See docs/SANDBOX.md (how to use it) and docs/PROTOCOL.md (how it reads the spec).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from smsdrop.sandbox.clock import SimClock
from smsdrop.sandbox.events import events, iter_events  # light; and `events` is a module too

if TYPE_CHECKING:
    from smsdrop.sandbox.app import Sandbox
    from smsdrop.sandbox.config import STATUSES, Outcome, SandboxConfig

__all__ = ["STATUSES", "Outcome", "Sandbox", "SandboxConfig", "SimClock", "events", "iter_events"]

#: Where the heavy public names live; imported on first use, so that ``smsdrop`` building
#: its argument parser (which includes ``sandbox``) imports neither asyncssh nor pyarrow.
_HOMES = {"Sandbox": "app", "STATUSES": "config", "Outcome": "config", "SandboxConfig": "config"}


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'smsdrop.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(f"smsdrop.sandbox.{_HOMES[name]}"), name)


# A library does not decide where logs go; the command configures a handler.
logging.getLogger("smsdrop.sandbox").addHandler(logging.NullHandler())
