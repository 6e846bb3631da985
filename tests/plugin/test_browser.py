"""The campaign pages in a real browser on a real ``airflow api-server``.

One api-server (started by the launcher ``make airflow`` uses, in its own process group,
stopped by group at the end), its metadata DB a throwaway PostgreSQL database, the plugin
loaded from ``plugins/`` as in any deployment, ``smsdrop_warehouse`` a DuckDB file seeded
with real loads (conftest.seed). Debian's chromium, headless, renders the pages: the
figures in the rendered DOM must equal the views', read from the same file with SQL.
Screenshots go to the test's folder; ``SMSDROP_SCREENSHOTS=docs`` writes the README's.
Skipped, with the reason, when chromium or PostgreSQL is absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsdrop.deploy.stack import PROJECT, AirflowStack, StackConfig, group_gone
from tests.deploy.conftest import free_port
from tests.plugin.conftest import seed

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PG = "host=127.0.0.1 port=5432 user=postgres"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, warehouse file) of a running api-server with the plugin."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(
            "chromium is not installed (apt-get install -y chromium, or .ci/ensure-chromium)"
        )
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(f"{PG} dbname=postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {error}")
    from smsdrop.warehouse import DuckDBWarehouse

    folder = tmp_path_factory.mktemp("browser")
    warehouse = folder / "warehouse.duckdb"
    with DuckDBWarehouse(warehouse) as wh:
        seed(wh)
    name = f"smsdrop_ui_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE DATABASE {name}")
    connection = {"conn_type": "duckdb", "extra": {"path": str(warehouse)}}
    stack = AirflowStack(
        StackConfig(
            home=folder / "airflow",
            sql_alchemy_conn=f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
            api_port=free_port(),
            env={
                "AIRFLOW_CONN_SMSDROP_WAREHOUSE": json.dumps(connection),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(folder / "logs"),
            },
        )
    )
    try:
        stack.migrate()
        stack.start_component("api-server")
        _wait_up(stack, f"{stack.config.base_url}/smsdrop/api/campaigns")
        yield stack.config.base_url, warehouse
    finally:
        pid = stack.processes["api-server"].pid if "api-server" in stack.processes else None
        stack.stop()
        if pid:
            assert group_gone(pid), "the api-server's process group outlived the test"
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def _wait_up(stack: AirflowStack, url: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.dead():
            raise RuntimeError(f"api-server exited:\n{stack.tail('api-server')}")
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise TimeoutError(f"api-server not serving {url} after {timeout:.0f} s")


def chromium(tmp_path: Path, url: str, *, screenshot: Path | None = None) -> str:
    """Render ``url`` headless; the DOM after scripts ran (or the screenshot's path)."""
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=15000", "--window-size=1280,1500",
    ]  # fmt: skip
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run(
        [*args, url], capture_output=True, timeout=180, start_new_session=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def _fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-field="(\w+)" data-value="([^"]*)"', html))


def _oracle(warehouse: Path, sql: str) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def _shots_folder(tmp_path: Path) -> Path:
    wanted = os.environ.get("SMSDROP_SCREENSHOTS")
    return (PROJECT / wanted) if wanted else tmp_path


def test_campaigns_page_in_chromium(server, tmp_path: Path) -> None:
    base, warehouse = server
    dom = chromium(tmp_path, f"{base}/smsdrop/campaigns")
    rows = dict(re.findall(r'<tr data-campaign="([^"]+)">(.*?)</tr>', dom, re.DOTALL))
    assert list(rows) == ["promo", "older"]  # newest first
    oracle = _oracle(
        warehouse,
        "SELECT campaign_id, submitted, sent, delivered, failed, pending, stop_replies,"
        " segments FROM sms_campaign_stats ORDER BY campaign_id",
    )
    names = ("submitted", "sent", "delivered", "failed", "pending", "stop_replies", "segments")
    for cid, *figures in oracle:
        shown = _fields(rows[cid])
        assert {n: int(shown[n]) for n in names} == dict(zip(names, figures, strict=True))
    assert "/dags/sms_campaign/runs/" in rows["promo"]


def test_campaign_page_in_chromium(server, tmp_path: Path) -> None:
    base, warehouse = server
    dom = chromium(tmp_path, f"{base}/smsdrop/campaigns/promo")
    (stats,) = _oracle(
        warehouse,
        "SELECT sent, delivered, failed, pending, stop_replies, segments, stop_rate"
        " FROM sms_campaign_stats WHERE campaign_id = 'promo'",
    )
    shown = dict(re.findall(r'class="kpi" data-field="(\w+)" data-value="([^"]*)"', dom))
    names = ("sent", "delivered", "failed", "pending", "stop_replies", "segments")
    assert tuple(int(shown[n]) for n in names) == stats[:6]
    assert float(shown["stop_rate"]) == pytest.approx(stats[6])
    funnel = re.search(r'data-plot="funnel".*?</svg>', dom, re.DOTALL).group(0)
    assert re.findall(r'data-label="(\w+)" data-value="(\d+)"', funnel) == [
        ("audience", "16"), ("valid", "12"), ("uploaded", str(shown["submitted"])),
        ("sent", str(stats[0])), ("delivered", str(stats[1])),
    ]  # fmt: skip
    networks = _oracle(
        warehouse,
        "SELECT COALESCE(network, 'unknown'), acked FROM sms_campaign_stats_by_operator"
        " WHERE campaign_id = 'promo'",
    )
    table = re.search(r'<div id="by_network">.*?</table>', dom, re.DOTALL).group(0)
    for network, acked in networks:
        row = re.search(rf'data-value="{re.escape(network)}">.*?</tr>', table, re.DOTALL)
        assert row and f'data-field="acked" data-value="{acked}"' in row.group(0), network
    for plot in ("rejects", "by_country", "stops"):
        assert f'data-plot="{plot}"' in dom


def test_screenshots(server, tmp_path: Path) -> None:
    """The page alone and inside Airflow's UI (the navigation's "Campaigns" entry)."""
    base, _ = server
    folder = _shots_folder(tmp_path)
    page = folder / "campaign-page.png"
    chromium(tmp_path, f"{base}/smsdrop/campaigns/promo", screenshot=page)
    in_ui = folder / "campaign-page-in-airflow.png"
    chromium(tmp_path, f"{base}/plugin/smsdrop-campaigns", screenshot=in_ui)
    for shot in (page, in_ui):
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    # the UI lists the plugin's view in its navigation
    with urllib.request.urlopen(f"{base}/api/v2/plugins", timeout=30) as answer:
        plugins = json.loads(answer.read())["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "smsdrop"]
    assert ours["external_views"][0]["url_route"] == "smsdrop-campaigns"
    assert ours["fastapi_apps"][0]["url_prefix"] == "/smsdrop"
