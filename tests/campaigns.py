"""A campaign spec for tests: the fields a test does not care about, filled in once."""

from __future__ import annotations

from typing import Any

from smsdrop.spec import CampaignSpec


def campaign_spec(**changes: Any) -> CampaignSpec:
    """A spec built as the CLI builds one (not checked: ``prepare`` checks what it needs)."""
    values = {
        "campaign_id": "promo",
        "service_id": "12345",
        "audience": "audience",
        "message": "Hi",
        "sender": "Shop",
    }
    return CampaignSpec(**{**values, **changes})
