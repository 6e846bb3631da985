"""The smsdrop plugin: campaign pages in the Airflow UI (docs/CAMPAIGN_PAGE.md).

Airflow 3's plugin interface: a FastAPI app mounted on the api-server under ``/smsdrop``
(``fastapi_apps``) and a "Campaigns" entry in the UI's navigation that shows its page in
the UI's frame (``external_views`` with a ``url_route``: ``/plugin/smsdrop-campaigns``),
and a "Campaign" tab on each DAG run's page (the campaign that run planned).
What the pages do is in :mod:`smsdrop.airflow.campaign_app`; this file only declares them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from smsdrop.airflow.campaign_app import URL_PREFIX, app


class SmsdropPlugin(AirflowPlugin):
    name = "smsdrop"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": app, "url_prefix": URL_PREFIX, "name": "smsdrop campaigns"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Campaigns",
            "href": f"{URL_PREFIX}/campaigns",
            "destination": "nav",
            "url_route": "smsdrop-campaigns",
            "nav_top_level": True,
        },
        {  # a tab on every DAG run's page; the UI fills in {DAG_ID} and {RUN_ID}
            "name": "Campaign",
            "href": f"{URL_PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "smsdrop-campaign-of-run",
        },
    ]
