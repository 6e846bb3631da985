"""Nightly campaigns as data: ``include/nightly_campaigns.yaml`` → ``sms_campaign`` runs.

Each entry is an ``sms_campaign`` request (:class:`smsdrop.spec.CampaignSpec`) with three
conveniences: ``{date}`` in ``campaign_id`` becomes the night's date (YYYYMMDD), so each
night is a new campaign; ``send_time`` ("10:00", Paris) becomes ``send_at`` that day (the
nightly DAG runs after midnight, Paris time: the night of the 26th sends on the 26th); ``days`` (``[mon, tue, …]``, default every day) says which nights it runs;
``enabled: false`` keeps an entry without running it. Every entry is checked when the
file is read: a typo stops the night's scheduling with the entry and field named, before
any campaign is triggered.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import yaml

from smsdrop.errors import InputError
from smsdrop.fields import HHMM
from smsdrop.naming import PARIS
from smsdrop.spec import CampaignSpec

NIGHTLY_FILE = Path(__file__).resolve().parents[1] / "nightly_campaigns.yaml"
#: Another file (tests, a deployment keeping its list elsewhere).
NIGHTLY_ENV = "SMSDROP_NIGHTLY_FILE"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_OWN_KEYS = ("send_time", "days", "enabled")


def nightly_file() -> Path:
    return Path(os.environ.get(NIGHTLY_ENV) or NIGHTLY_FILE)


def read_entries(path: Path | None = None) -> list[dict[str, Any]]:
    """The file's entries, as written (a missing file is no campaign)."""
    path = path or nightly_file()
    if not path.exists():
        return []
    try:
        document = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise InputError(
            f"not valid YAML ({getattr(error, 'problem', error)})",
            file=str(path),
            line=None if mark is None else mark.line + 1,
        ) from None
    entries = document.get("campaigns") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError("'campaigns' must be a list of mappings", file=str(path))
    return entries


def runs_for(night: date, path: Path | None = None) -> list[dict[str, Any]]:
    """The ``sms_campaign`` runs of ``night``: ``{"trigger_run_id", "conf"}`` each.

    The run id is fixed by the campaign id (``nightly__<campaign id>``): a night scheduled
    twice triggers each campaign once.
    """
    path = path or nightly_file()
    runs = []
    for index, entry in enumerate(read_entries(path), start=1):
        where = f"{path.name} entry {index}"
        if not entry.get("enabled", True):
            continue
        days = [str(d).lower()[:3] for d in entry.get("days") or DAYS]
        unknown = sorted(set(days) - set(DAYS))
        if unknown:
            raise InputError(f"{where}: unknown day(s) {unknown}", field="days")
        if DAYS[night.weekday()] not in days:
            continue
        conf = {k: v for k, v in entry.items() if k not in _OWN_KEYS}
        conf["campaign_id"] = str(conf.get("campaign_id", "")).replace(
            "{date}", night.strftime("%Y%m%d")
        )
        if "send_time" in entry:
            conf["send_at"] = _send_at(night, str(entry["send_time"]), where)
        try:
            spec = CampaignSpec.from_mapping(conf)
        except InputError as error:
            raise InputError(f"{where}: {error}") from None
        runs.append({"trigger_run_id": f"nightly__{spec.campaign_id}", "conf": spec.to_dict()})
    ids = [r["conf"]["campaign_id"] for r in runs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise InputError(f"{path.name}: campaign id(s) {repeated} used twice the same night")
    return runs


def _send_at(night: date, hhmm: str, where: str) -> str:
    if not re.fullmatch(HHMM, hhmm):
        raise InputError(f"{where}: send_time must be HH:MM, got {hhmm!r}", field="send_time")
    return datetime.combine(night, time.fromisoformat(hhmm), tzinfo=PARIS).isoformat()
