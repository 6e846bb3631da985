"""The smsdrop plugin loads without errors, as Airflow loads it, and declares the pages.

``plugins_manager`` imports every file of ``plugins/`` (``AIRFLOW_HOME`` is the project
root); an import error would be in ``import_errors`` and the api-server would serve no
page. The DAGs still parse with the plugin loaded (the DagBag imports plugins too).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_plugin_loads_without_errors() -> None:
    from airflow import plugins_manager

    plugins, import_errors = plugins_manager._get_plugins()
    assert import_errors == {}
    (plugin,) = [p for p in plugins if p.name == "smsdrop"]
    assert Path(plugin.__module__.replace(".", "/")).name == "smsdrop_plugin"
    apps, _ = plugins_manager.get_fastapi_plugins()
    (app,) = [a for a in apps if a["name"] == "smsdrop campaigns"]
    assert app["url_prefix"] == "/smsdrop"
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES

    assert not any(app["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
    paths = {route.path for route in app["app"].routes}
    assert {
        "/campaigns",
        "/campaigns/{campaign_id}",
        "/api/campaigns",
        "/api/campaigns/{campaign_id}",
    } <= paths
    views, react_apps = plugins_manager._get_ui_plugins()
    (view,) = [v for v in views if v.get("url_route") == "smsdrop-campaigns"]
    assert (view["href"], view["destination"], react_apps) == ("/smsdrop/campaigns", "nav", [])
    (tab,) = [v for v in views if v.get("url_route") == "smsdrop-campaign-of-run"]
    assert (tab["href"], tab["destination"]) == ("/smsdrop/runs/{DAG_ID}/{RUN_ID}", "dag_run")


def test_every_route_requires_a_user() -> None:
    """No page or API answers without Airflow's session (the auth dependency is on each)."""
    from fastapi.routing import APIRoute

    from smsdrop.airflow.campaign_app import app, campaign_reader

    routes = app.routes
    assert routes and all(isinstance(route, APIRoute) for route in routes)  # no docs, no mount
    for route in routes:
        calls = [d.call for d in route.dependant.dependencies]
        assert campaign_reader in calls, route.path
    assert "/api/openapi.json" in {route.path for route in routes}


def test_plugin_module_is_light() -> None:
    """Every Airflow process imports the plugin: it declares, the app module does the rest,
    and neither imports Airflow's API security, pandas or a database driver at import."""
    tree = ast.parse((ROOT / "plugins" / "smsdrop_plugin.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {
        "__future__",
        "typing",
        "airflow.plugins_manager",
        "smsdrop.airflow.campaign_app",
    }
    app_tree = ast.parse((ROOT / "include/smsdrop/airflow/campaign_app.py").read_text())
    top = {
        (n.module if isinstance(n, ast.ImportFrom) else n.names[0].name)
        for n in app_tree.body
        if isinstance(n, (ast.Import, ast.ImportFrom))
    }
    assert not {
        m for m in top if m and m.split(".")[0] in {"airflow", "pandas", "duckdb", "psycopg"}
    }


def test_dags_parse_with_the_plugin() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert "sms_campaign" in bag.dag_ids
