"""Replies from recipients: what counts as a STOP, and requests to inject one.

A reply is an opt-out when its first word is an opt-out keyword (:data:`STOP_KEYWORDS`), in
any case and with accents ignored: ``stop``, ``Arrêt``, ``STOP merci`` are STOPs;
``non stop`` is not. Operators and providers match the keyword, not the whole text,
because people add politeness.

Other processes (``smsdrop sandbox reply``) cannot call into a running sandbox, so they
drop a request file into its private inbox; the sandbox takes it at its next look (every
``poll_interval``) and logs ``reply_received`` (or ``reply_unmatched``) with the request id.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
import uuid
from pathlib import Path
from typing import Any

from smsdrop.sandbox.config import STOP_KEYWORDS

__all__ = ["is_stop", "read_requests", "write_request"]

_FIRST_WORD = re.compile(r"[^\W_]+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def is_stop(text: str) -> bool:
    """Whether a reply opts out: its first word is a keyword (case and accents ignored)."""
    match = _FIRST_WORD.search(_fold(text))
    return bool(match) and match.group(0) in STOP_KEYWORDS


def write_request(inbox: Path, request: dict[str, Any]) -> str:
    """Drop a request into a sandbox's inbox, whole (written aside, then renamed)."""
    request_id = request.setdefault("id", uuid.uuid4().hex)
    inbox.mkdir(parents=True, exist_ok=True)
    partial = inbox / f".{request_id}.partial"
    partial.write_text(json.dumps(request, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, inbox / f"{request_id}.json")
    return request_id


def read_requests(inbox: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Whole requests waiting in the inbox, oldest first; unreadable ones are skipped."""
    found = []
    for path in inbox.glob("*.json"):
        try:
            found.append((path.stat().st_mtime_ns, path, json.loads(path.read_text("utf-8"))))
        except (OSError, ValueError):
            continue
    return [(path, request) for _, path, request in sorted(found, key=lambda f: f[:2])]
