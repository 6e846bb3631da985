"""HTML of the campaign pages, plots as inline SVG drawn here (server-side).

Why server-side SVG: no front-end dependency to pin, no CDN (many deployments, and this
machine, have no internet), nothing to build; the page is plain HTML the Airflow UI shows
in its frame, and a browser test reads the figures from the DOM. Every figure is written
with ``data-field``/``data-value`` attributes holding the exact number, next to its text.

Input is the output of :mod:`smsdrop.campaign_page`; every value is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from smsdrop.campaign_page import FILE_STATES, LIST_COLUMNS
from smsdrop.dropbox import FileState

#: Outcome colours (colour-blind safe: Okabe-Ito), the same on every plot.
COLOURS = {
    "delivered": "#009E73",
    "unconfirmed": "#56B4E9",
    "failed": "#D55E00",
    "not_sent": "#999999",
    "bar": "#0072B2",
    "stop": "#CC79A7",
}
OUTCOMES = ("delivered", "unconfirmed", "failed", "not_sent")
#: Fields shown as instants (UTC, to the second).
TIME_FIELDS = frozenset(
    {"send_at", "created_at", "updated_at", "finished_at", "ack_loaded_at", "hour"}
)

LABELS = {
    "campaign_id": "Campaign",
    "status": "Status",
    "send_at": "Send slot (UTC)",
    "recipients": "Recipients",
    "submitted": "Uploaded",
    "sent": "Sent",
    "delivered": "Delivered",
    "failed": "Failed",
    "pending": "Pending",
    "stop_replies": "STOP",
    "stop_rate": "STOP rate",
    "segments": "Segments",
}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.2rem;
color:#1a202c;background:#fff;font-size:14px}
h1{font-size:1.4rem;margin:0 0 .8rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;margin:.3rem 0}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e2e8f0;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f7fafc;font-weight:600}
a{color:#0072B2}
.grid{display:flex;flex-wrap:wrap;gap:1.5rem}
.card{border:1px solid #e2e8f0;border-radius:6px;padding:.6rem .9rem}
.kpis{display:flex;flex-wrap:wrap;gap:.8rem;margin:.5rem 0}
.kpi{border:1px solid #e2e8f0;border-radius:6px;padding:.4rem .8rem;min-width:6rem}
.kpi b{display:block;font-size:1.25rem}
.muted{color:#718096}.life{white-space:nowrap}
.state{display:inline-block;padding:0 .35rem;margin-right:.15rem;border-radius:3px;
background:#edf2f7;color:#a0aec0;font-size:.8rem}
.state.on{background:#0072B2;color:#fff}.state.reject{background:#D55E00;color:#fff}
.legend span{display:inline-block;margin-right:.8rem}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.25rem;
vertical-align:middle}
"""


def number(value: Any) -> str:
    """A count with thousands separators, a rate as a percentage, ``—`` for none."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2%}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def when(value: Any) -> str:
    """An ISO 8601 UTC instant of the figures, to the second: ``2026-12-01 09:00:00 UTC``."""
    if not value:
        return "—"
    text = str(value)
    if len(text) >= 19 and text[10] == "T":
        return f"{text[:10]} {text[11:19]} UTC"
    return text


def _cell(field: str, value: Any) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    data = "" if value is None else f' data-value="{escape(str(value))}"'
    css = ' class="n"' if numeric else ""
    text = when(value) if field in TIME_FIELDS else number(value)
    return f'<td{css} data-field="{field}"{data}>{escape(text)}</td>'


def page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>"
    )


def bars(
    items: Sequence[tuple[str, int | None]], *, colour: str = COLOURS["bar"], name: str = ""
) -> str:
    """A horizontal bar chart (one bar a label), scaled to the largest value."""
    if not items:
        return '<p class="muted">Nothing yet.</p>'
    width, label_w, row_h = 560, 150, 26
    top = max((v or 0) for _, v in items) or 1
    height = row_h * len(items) + 4
    parts = [
        (
            f'<svg role="img" aria-label="{escape(name)}" data-plot="{escape(name)}" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        )
    ]
    for i, (label, value) in enumerate(items):
        y = i * row_h + 2
        w = round((width - label_w - 90) * (value or 0) / top)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 17}" text-anchor="end" font-size="12">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 8}" '
            f'fill="{colour}" data-label="{escape(label)}" data-value="{value or 0}"/>'
            f'<text x="{label_w + w + 6}" y="{y + 17}" font-size="12">{number(value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def stacked(rows: Sequence[dict[str, Any]], key: str, *, name: str) -> str:
    """Outcomes of the ACK lines per group (network, country) as stacked bars."""
    if not rows:
        return '<p class="muted">No ACK line loaded yet.</p>'
    rows = _top(rows, key)
    width, label_w, row_h = 600, 190, 26
    top = max(int(r["acked"] or 0) for r in rows) or 1
    height = row_h * len(rows) + 4
    parts = [
        (
            f'<svg role="img" aria-label="{escape(name)}" data-plot="{escape(name)}" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        )
    ]
    for i, row in enumerate(rows):
        y, x = i * row_h + 2, label_w
        label = str(row[key] or "unknown")
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 17}" text-anchor="end" font-size="12">'
            f"<title>{escape(label)}</title>{escape(_short(label))}</text>"
        )
        for outcome in OUTCOMES:
            value = int(row[outcome] or 0)
            w = round((width - label_w - 70) * value / top)
            if w:
                parts.append(
                    f'<rect x="{x}" y="{y + 3}" width="{w}" height="{row_h - 8}" '
                    f'fill="{COLOURS[outcome]}"><title>{outcome}: {value:,}</title></rect>'
                )
            x += w
        parts.append(f'<text x="{x + 6}" y="{y + 17}" font-size="12">{number(row["acked"])}</text>')
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{COLOURS[o]}"></i>{o.replace("_", " ")}</span>'
        for o in OUTCOMES
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


#: Groups drawn in a breakdown plot; the rest are summed in one "others" bar (the table
#: below the plot lists every group).
PLOT_GROUPS = 10


def _short(label: str, size: int = 26) -> str:
    return label if len(label) <= size else label[: size - 1] + "…"


def _top(rows: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The largest groups by ACK lines, the others summed in one row."""
    ranked = sorted(rows, key=lambda r: -int(r["acked"] or 0))
    if len(ranked) <= PLOT_GROUPS:
        return ranked
    kept, rest = ranked[: PLOT_GROUPS - 1], ranked[PLOT_GROUPS - 1 :]
    others: dict[str, Any] = {key: f"{len(rest)} others"}
    for column in ("acked", *OUTCOMES):
        others[column] = sum(int(r[column] or 0) for r in rest)
    return [*kept, others]


def timeline(points: Sequence[dict[str, Any]]) -> str:
    """STOP replies per hour (bars) and their running total (line)."""
    if not points:
        return '<p class="muted">No STOP reply.</p>'
    width, height, left, bottom = 560, 180, 40, 40
    inner_w, inner_h = width - left - 10, height - bottom - 10
    top = points[-1]["cumulative"] or 1
    step = inner_w / len(points)
    parts = [
        (
            f'<svg role="img" aria-label="STOP replies over time" data-plot="stops" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        ),
        (
            f'<line x1="{left}" y1="{10 + inner_h}" x2="{width - 10}" y2="{10 + inner_h}" '
            'stroke="#a0aec0"/>'
        ),
        f'<text x="{left - 4}" y="16" text-anchor="end" font-size="11">{top:,}</text>',
    ]
    line = []
    for i, point in enumerate(points):
        x = left + i * step
        h = inner_h * point["stop_replies"] / top
        parts.append(
            f'<rect x="{x + step * 0.15:.1f}" y="{10 + inner_h - h:.1f}" '
            f'width="{step * 0.7:.1f}" height="{h:.1f}" fill="{COLOURS["stop"]}" '
            f'data-hour="{escape(point["hour"])}" data-value="{point["stop_replies"]}">'
            f"<title>{escape(point['hour'])}: {point['stop_replies']:,}</title></rect>"
        )
        cy = 10 + inner_h - inner_h * point["cumulative"] / top
        line.append(f"{x + step / 2:.1f},{cy:.1f}")
    parts.append(
        f'<polyline points="{" ".join(line)}" fill="none" stroke="#1a202c" stroke-width="1.5"/>'
    )
    first, last = points[0]["hour"][:13].replace("T", " "), points[-1]["hour"][:13]
    parts.append(
        f'<text x="{left}" y="{height - 18}" font-size="11">{escape(first)}h UTC</text>'
        f'<text x="{width - 10}" y="{height - 18}" text-anchor="end" font-size="11">'
        f"{escape(last.replace('T', ' '))}h</text></svg>"
    )
    return "".join(parts)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str], labels: dict[str, str]) -> str:
    head = "".join(f"<th>{escape(labels.get(c, c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(c, r.get(c)) for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def campaigns_page(rows: Sequence[dict[str, Any]], link: Any, run_link: Any) -> str:
    """The campaigns table. ``link(id)`` is a campaign's page, ``run_link(row)`` its DAG
    run in the Airflow UI (or None)."""
    head = "".join(
        f'<th class="{"n" if c not in ("campaign_id", "status", "send_at") else ""}">'
        f"{escape(LABELS[c])}</th>"
        for c in LIST_COLUMNS
    )
    lines = []
    for row in rows:
        cells = []
        for column in LIST_COLUMNS:
            if column == "campaign_id":
                cid = escape(str(row["campaign_id"]))
                cells.append(
                    f'<td data-field="campaign_id" data-value="{cid}">'
                    f'<a href="{escape(link(row["campaign_id"]))}">{cid}</a></td>'
                )
            else:
                cells.append(_cell(column, row.get(column)))
        run = run_link(row)
        cells.append(
            f'<td><a href="{escape(run)}" target="_top">DAG run</a></td>' if run else "<td></td>"
        )
        lines.append(f'<tr data-campaign="{escape(str(row["campaign_id"]))}">{"".join(cells)}</tr>')
    if not lines:
        table = '<p class="muted">No campaign in the warehouse yet.</p>'
    else:
        table = (
            f'<table id="campaigns"><thead><tr>{head}<th></th></tr></thead>'
            f"<tbody>{''.join(lines)}</tbody></table>"
        )
    return page(
        "smsdrop campaigns",
        "<h1>SMS campaigns</h1>"
        f'<p class="muted">{len(rows):,} campaign(s), newest first. Figures from the '
        "warehouse views <code>sms_campaign_stats*</code>; rates over sent (billed) "
        "messages.</p>" + table,
    )


def _file_states(row: dict[str, Any]) -> str:
    reached = set(row["states"])
    final = row["state"] if row["final"] else FileState.DONE.value
    spans = []
    for state in (*FILE_STATES, final):
        css = "state"
        if state in reached:
            css += " reject" if state == FileState.REJECT.value else " on"
        spans.append(f'<span class="{css}">{state}</span>')
    return "".join(spans)


def campaign_page(detail: dict[str, Any], back: str, run: str | None) -> str:
    """One campaign's page."""
    c = detail["campaign"]
    cid = escape(str(c["campaign_id"]))
    kpi_fields = (
        "recipients", "valid", "submitted", "sent", "delivered", "unconfirmed", "failed",
        "not_sent", "pending", "stop_replies", "segments", "delivery_rate", "stop_rate",
    )  # fmt: skip
    labels = {**LABELS, "valid": "Valid", "unconfirmed": "Unconfirmed", "not_sent": "Not sent",
              "delivery_rate": "Delivery rate"}  # fmt: skip
    kpis = "".join(
        f'<div class="kpi" data-field="{f}"'
        f"{'' if c.get(f) is None else f' data-value={chr(34)}{escape(str(c.get(f)))}{chr(34)}'}>"
        f'<span class="muted">{escape(labels.get(f, f))}</span><b>{escape(number(c.get(f)))}</b></div>'
        for f in kpi_fields
    )
    run_html = f' · <a href="{escape(run)}" target="_top">DAG run</a>' if run else ""
    facts = (
        f'<p><a href="{escape(back)}">← all campaigns</a>{run_html} · status '
        f'<b data-field="status">{escape(str(c.get("status") or "—"))}</b> · send slot '
        f"{escape(when(c.get('send_at')))} · service {escape(str(c.get('service_id') or '—'))}</p>"
    )
    funnel = bars([(s["step"], s["count"]) for s in detail["funnel"]], name="funnel")
    rejects = bars(
        [(r["reason"], r["rows"]) for r in detail["rejects"]], colour="#E69F00", name="rejects"
    )
    breakdown_cols = ("acked", "sent", "delivered", "unconfirmed", "failed", "not_sent",
                      "stop_replies", "segments", "delivery_rate", "stop_rate")  # fmt: skip
    network_rows = [{**r, "network": r["network"] or "unknown"} for r in detail["by_network"]]
    country_rows = [{**r, "country": r["country"] or "unknown"} for r in detail["by_country"]]
    blabels = {**labels, "acked": "ACK lines", "network": "Mobile network", "country": "Country"}
    files_rows = "".join(
        f'<tr data-file="{escape(f["name"])}"><td>{escape(f["name"])}</td>'
        f'<td class="life">{_file_states(f)}</td>'
        f"{_cell('row_count', f['row_count'])}"
        f"{_cell('acked', f['acked'])}"
        f"{_cell('created_at', f['created_at'])}{_cell('updated_at', f['updated_at'])}"
        f"{_cell('finished_at', f['finished_at'])}"
        f"{_cell('ack_loaded_at', f['ack_loaded_at'])}</tr>"
        for f in detail["files"]
    )
    files = (
        '<table id="files"><thead><tr><th>SEND file</th><th>Life</th><th class="n">Rows</th>'
        '<th class="n">ACK lines</th><th>Planned at</th><th>Last change</th>'
        f"<th>Finished</th><th>ACK loaded</th></tr></thead><tbody>{files_rows}</tbody></table>"
        if detail["files"]
        else '<p class="muted">No SEND file recorded.</p>'
    )
    body = (
        f'<h1>Campaign <span data-field="campaign_id">{cid}</span></h1>{facts}'
        f'<div class="kpis">{kpis}</div>'
        '<div class="grid">'
        f'<div class="card"><h2>Funnel</h2>{funnel}</div>'
        f'<div class="card"><h2>Rejects by reason</h2>{rejects}</div>'
        "</div>"
        f'<h2>Delivery by mobile network</h2><div id="by_network">'
        f"{stacked(network_rows, 'network', name='by_network')}"
        f"{_table(network_rows, ('network', *breakdown_cols), blabels) if network_rows else ''}</div>"
        f'<h2>Delivery by country</h2><div id="by_country">'
        f"{stacked(country_rows, 'country', name='by_country')}"
        f"{_table(country_rows, ('country', *breakdown_cols), blabels) if country_rows else ''}</div>"
        f"<h2>STOP replies over time</h2>{timeline(detail['stop_replies_over_time'])}"
        '<p class="muted">First STOP of each person, per hour (UTC); the line is the running '
        "total.</p>"
        f"<h2>SEND files</h2>{files}"
        '<p class="muted">The warehouse keeps when a file was planned, its last state change '
        "and when it ended (done/reject), not a timestamp per state.</p>"
    )
    return page(f"smsdrop campaign {c['campaign_id']}", body)
