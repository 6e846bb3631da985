"""The HTML's plots, on hand-made figures: what a plot draws adds up to its input."""

from __future__ import annotations

import re

from smsdrop import campaign_html


def _row(network: str, acked: int) -> dict:
    delivered, failed = acked - acked // 4, acked // 4
    return {"network": network, "acked": acked, "delivered": delivered, "unconfirmed": 0,
            "failed": failed, "not_sent": 0}  # fmt: skip


def test_breakdown_plot_keeps_the_largest_groups_and_sums_the_rest() -> None:
    rows = [_row(f"Network {i}", 1000 - i * 50) for i in range(14)]
    svg = campaign_html.stacked(rows, "network", name="by_network")
    labels = re.findall(r"<title>([^<]+)</title>", svg)
    groups = [t for t in labels if ":" not in t]  # bar segments' titles are "outcome: n"
    assert groups == [f"Network {i}" for i in range(9)] + ["5 others"]
    others = sum(r["acked"] for r in rows[9:])
    assert f">{others:,}</text>" in svg
    assert f">{rows[0]['acked']:,}</text>" in svg


def test_long_labels_are_shortened_in_the_plot_only() -> None:
    name = "Euroinformation Telecom Mobile Services"
    svg = campaign_html.stacked([_row(name, 10)], "network", name="by_network")
    assert f"<title>{name}</title>" in svg and "Euroinformation Telecom M…" in svg


def test_values_are_escaped() -> None:
    html = campaign_html.campaigns_page(
        [{"campaign_id": "<script>x</script>", "status": '"bad"'}], lambda c: "/c", lambda r: None
    )
    assert "<script>x" not in html and "&lt;script&gt;" in html
