"""The campaign pages as a FastAPI app that the smsdrop plugin mounts on Airflow's
api-server (``/smsdrop``): two HTML pages and the JSON API behind them.

- ``GET /smsdrop/campaigns`` and ``GET /smsdrop/campaigns/{campaign_id}``: the pages;
- ``GET /smsdrop/runs/{dag_id}/{run_id}``: the "Campaign" tab of a DAG run (the campaign
  that run planned);
- ``GET /smsdrop/api/campaigns`` and ``GET /smsdrop/api/campaigns/{campaign_id}``: the
  same figures as JSON (docs/CAMPAIGN_PAGE.md).

**Access follows Airflow's auth.** The caller is the user of Airflow's own session (the
``_token`` cookie the UI logs in with, or an ``Authorization: Bearer`` token), resolved by
the api-server's auth manager exactly as the REST API does
(``airflow.api_fastapi.core_api.security.get_user``); the user must be allowed to read the
runs of the ``sms_campaign`` DAG (``is_authorized_dag``: the campaigns are that DAG's
outcome). Without a session, the API answers 401 and a page redirects to the auth
manager's login (which, with ``SIMPLE_AUTH_MANAGER_ALL_ADMINS``, logs in at once).

The warehouse is opened read-only, per request, through the ``smsdrop_warehouse``
connection (:func:`~smsdrop.airflow.warehouse.warehouse_from_connection`) and closed at
once: a DuckDB file is held only for the few queries of one page. Airflow's security
module is imported when a request comes, not at import: every Airflow process imports the
plugin, only the api-server serves it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from smsdrop import campaign_html, campaign_page

log = logging.getLogger(__name__)

#: The DAGs whose runs a campaign comes from; reading sms_campaign's runs gives access.
CAMPAIGN_DAG = "sms_campaign"
CAMPAIGN_DAGS = ("sms_campaign", "sms_campaign_nightly")
URL_PREFIX = "/smsdrop"
#: Seconds a page waits for a DuckDB warehouse file that a task holds.
DUCKDB_WAIT = 5.0

_bearer = HTTPBearer(auto_error=False)


async def campaign_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Any:
    """The logged-in Airflow user, when allowed to read the campaign DAG's runs."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )
    from airflow.api_fastapi.core_api.security import get_user

    user = await get_user(request, None, credentials)
    allowed = get_auth_manager().is_authorized_dag(
        method="GET",
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id=CAMPAIGN_DAG),
        user=user,
    )
    if not allowed:
        raise HTTPException(status_code=403, detail="Forbidden")
    return user


Reader = Depends(campaign_reader)


class _NoWarehouse(Exception):
    """The warehouse does not exist yet (no campaign ever ran)."""


def _open_warehouse() -> Any:
    """The connection's warehouse, read-only. A DuckDB file waits at most
    :data:`DUCKDB_WAIT` s for a task that writes it (one process writes a DuckDB file, and
    a reader must wait): a page should not hold an api-server thread for the engine's
    default ten minutes."""
    from smsdrop.airflow.warehouse import DuckDBHook, warehouse_dialect, warehouse_from_connection
    from smsdrop.warehouse import DuckDBWarehouse

    if warehouse_dialect() != "duckdb":
        return warehouse_from_connection(read_only=True)
    path = DuckDBHook().path
    if not path.is_file():
        raise _NoWarehouse
    return DuckDBWarehouse(path, read_only=True, lock_timeout=DUCKDB_WAIT)


@contextmanager
def _warehouse() -> Iterator[Any]:
    """The warehouse, read-only; a clear 503 when it cannot be read now."""
    try:
        wh = _open_warehouse()
    except _NoWarehouse:
        raise
    except TimeoutError:  # a DuckDB file a task is writing
        raise HTTPException(
            status_code=503,
            detail="the DuckDB warehouse is being written by a task: reload in a moment",
        ) from None
    except Exception as error:  # noqa: BLE001  (PostgreSQL down, bad connection…)
        log.warning("smsdrop warehouse not readable: %s", error)
        raise HTTPException(
            status_code=503,
            detail="the smsdrop warehouse cannot be read now (the api-server's log says why)",
        ) from None
    try:
        yield wh
    finally:
        wh.close()


def _campaigns() -> list[dict[str, Any]]:
    try:
        with _warehouse() as wh:
            return campaign_page.campaigns(wh)
    except _NoWarehouse:
        return []
    except Exception as error:
        if _not_migrated(error):  # a warehouse no campaign ever ran on
            return []
        raise


def _detail(campaign_id: str) -> dict[str, Any]:
    try:
        with _warehouse() as wh:
            return campaign_page.campaign_detail(wh, campaign_id)
    except campaign_page.CampaignNotFound as error:
        raise HTTPException(status_code=404, detail=str(error)) from None
    except _NoWarehouse:
        raise HTTPException(status_code=404, detail="no campaign in the warehouse yet") from None
    except Exception as error:
        if _not_migrated(error):
            raise HTTPException(
                status_code=404, detail="no campaign in the warehouse yet"
            ) from None
        raise


def _not_migrated(error: Exception) -> bool:
    text = str(error).lower()
    return "sms_campaign_stats" in text and ("does not exist" in text or "not exist" in text)


def _ui_base() -> str:
    """The path of Airflow's UI (``[api] base_url``'s path, no trailing slash)."""
    from urllib.parse import urlparse

    from airflow.configuration import conf

    return urlparse(conf.get("api", "base_url", fallback="/") or "/").path.rstrip("/")


def _run_links(rows: list[dict[str, Any]]) -> Callable[[dict[str, Any]], str | None]:
    """``row → URL of its DAG run in the Airflow UI``; the DAG of each run is read from the
    metadata DB (a campaign may come from ``sms_campaign`` or ``sms_campaign_nightly``)."""
    run_ids = {r["run_id"] for r in rows if r.get("run_id")}
    dags: dict[str, str] = {}
    if run_ids:
        try:
            from airflow.models.dagrun import DagRun
            from airflow.utils.session import create_session
            from sqlalchemy import select

            with create_session() as session:
                found = session.execute(
                    select(DagRun.run_id, DagRun.dag_id).where(
                        DagRun.run_id.in_(run_ids), DagRun.dag_id.in_(CAMPAIGN_DAGS)
                    )
                )
                dags = {run_id: dag_id for run_id, dag_id in found}
        except Exception as error:  # noqa: BLE001  (no metadata DB: sms_campaign's runs)
            log.info("DAG runs of the campaigns not looked up: %s", error)
    base = _ui_base()

    def link(row: dict[str, Any]) -> str | None:
        run_id = row.get("run_id")
        if not run_id:
            return None
        dag_id = dags.get(run_id, CAMPAIGN_DAG)
        return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"

    return link


def create_app() -> FastAPI:
    """The app the plugin mounts under ``/smsdrop``."""
    app = FastAPI(
        title="smsdrop campaigns",
        description="Campaign figures from the smsdrop warehouse (docs/CAMPAIGN_PAGE.md).",
        docs_url=None,  # the schema is served below, to logged-in users only
        openapi_url=None,
        redoc_url=None,
    )

    @app.exception_handler(HTTPException)
    async def _errors(request: Request, error: HTTPException) -> Response:
        """401 on a page: to the auth manager's login, and back here after it."""
        api = request.url.path.startswith(f"{request.scope.get('root_path', '')}/api/")
        if error.status_code == 401 and not api:
            from airflow.api_fastapi.app import get_auth_manager

            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(get_auth_manager().get_url_login(next_url=here), 303)
        if api:
            return JSONResponse({"detail": error.detail}, status_code=error.status_code)
        body = campaign_html.page(
            f"{error.status_code}", f"<h1>{error.status_code}</h1><p>{error.detail}</p>"
        )
        return HTMLResponse(body, status_code=error.status_code)

    @app.get("/api/campaigns", summary="Every campaign, newest first")
    def api_campaigns(user: Any = Reader) -> dict[str, Any]:
        rows = _campaigns()
        return {"campaigns": rows, "total": len(rows)}

    @app.get("/api/campaigns/{campaign_id}", summary="One campaign's figures")
    def api_campaign(campaign_id: str, user: Any = Reader) -> dict[str, Any]:
        return _detail(campaign_id)

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(user: Any = Reader) -> dict[str, Any]:
        return app.openapi()

    @app.get("/runs/{dag_id}/{run_id}", include_in_schema=False)
    def run_page(request: Request, dag_id: str, run_id: str, user: Any = Reader) -> Response:
        """The "Campaign" tab of a DAG run: the campaign that run planned."""
        try:
            with _warehouse() as wh:
                campaign_id = campaign_page.campaign_of_run(wh, run_id)
        except _NoWarehouse:
            campaign_id = None
        if campaign_id is not None:
            url = request.url_for("campaign_detail_page", campaign_id=campaign_id).path
            return RedirectResponse(url, 307)
        body = (
            "<h1>No campaign</h1><p>The warehouse has no campaign planned by this run "
            f"(<code>{escape(dag_id)}</code> / <code>{escape(run_id)}</code>): it has not "
            "reached <code>record_names</code> yet, or it is not a campaign run. "
            f'<a href="{escape(request.url_for("campaigns_page").path)}">All campaigns</a>.</p>'
        )
        return HTMLResponse(campaign_html.page("smsdrop: no campaign", body))

    @app.get("/", include_in_schema=False)
    def home(request: Request, user: Any = Reader) -> Response:
        return RedirectResponse(request.url_for("campaigns_page").path, 307)

    @app.get("/campaigns", response_class=HTMLResponse, include_in_schema=False)
    def campaigns_page(request: Request, user: Any = Reader) -> HTMLResponse:
        rows = _campaigns()
        return HTMLResponse(
            campaign_html.campaigns_page(
                rows,
                lambda cid: request.url_for("campaign_detail_page", campaign_id=cid).path,
                _run_links(rows),
            )
        )

    @app.get("/campaigns/{campaign_id}", response_class=HTMLResponse, include_in_schema=False)
    def campaign_detail_page(
        request: Request, campaign_id: str, user: Any = Reader
    ) -> HTMLResponse:
        detail = _detail(campaign_id)
        run = _run_links([detail["campaign"]])(detail["campaign"])
        back = request.url_for("campaigns_page").path
        return HTMLResponse(campaign_html.campaign_page(detail, back, run))

    return app


app = create_app()
