"""The operator console: a FastAPI app the api-server serves under ``/console`` (the
plugin in ``plugins/etl_console.py``), in the UI's navigation.

Every route requires an authenticated Airflow user (the api-server's own ``get_user``:
the UI's session cookie or a bearer token; 401/403 otherwise). Every query runs in a
read-only transaction with its values bound; clients and tables come from the validated
client configs only.

- ``/``: every client's last batch, freshness and its last 30 batches;
- ``/clients/<client>/batches/<batch>``: files, SQL steps, gates, drift, manifest, the
  failure's runbook action and links into Airflow;
- ``/clients/<client>/batches/<batch>/rejected`` (and ``rejected.csv``): dead letters;
- ``/lineage``: a gold row back to its silver and bronze rows and its file and row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import psycopg
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from include.etl.alerts import action_for
from include.etl.config import SCHEDULE_PRESETS, ClientConfig, load_clients
from include.etl.console import pages, queries
from include.etl.ingest.landing import Landing
from include.etl.orchestration.connections import warehouse

BATCH_ID = re.compile(r"^BATCH\d{6}$")
PAGE = 100
PERIODS = {
    "@hourly": 3600,
    "@daily": 86400,
    "@weekly": 7 * 86400,
    "@monthly": 31 * 86400,
    "@yearly": 366 * 86400,
}

app = FastAPI(
    title="ETL operator console",
    dependencies=[Depends(get_user)],  # every route: an authenticated Airflow user
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


@contextmanager
def read_only() -> Iterator[psycopg.Connection]:
    """A warehouse connection whose every transaction is read-only (10 s at most)."""
    with warehouse() as conn:
        conn.read_only = True
        conn.execute("SET statement_timeout = '10s'")
        yield conn


def _clients() -> dict[str, ClientConfig]:
    configs, _ = load_clients()
    return {cfg.client: cfg for cfg in configs}


def _client(name: str) -> ClientConfig:
    configs, _ = load_clients(only=name)  # that client's file alone
    cfg = configs[0] if configs else None
    if cfg is None:
        raise HTTPException(status_code=404, detail="no such client")
    return cfg


def _batch_id(value: str) -> str:
    if not BATCH_ID.match(value):
        raise HTTPException(status_code=404, detail="no such batch")
    return value


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def period_seconds(schedule: str | None) -> float | None:
    """How often a schedule runs (None: unscheduled): a late client has had no SUCCESS
    for longer than that."""
    if not schedule:
        return None
    if schedule in PERIODS:
        return PERIODS[schedule]
    if schedule in SCHEDULE_PRESETS:
        return None
    from croniter import croniter

    it = croniter(schedule, datetime.now(UTC))
    first = it.get_next(datetime)
    return float((it.get_next(datetime) - first).total_seconds())


@app.get("/", response_class=HTMLResponse)
def clients_page(request: Request) -> str:
    clients = _clients()
    now = datetime.now(UTC)
    with read_only() as conn:
        last = queries.last_batches(conn, list(clients))
        shown = []
        for name, cfg in sorted(clients.items()):
            batch = last.get(name)
            lag = queries.since(batch["last_success"], now) if batch else None
            period = period_seconds(cfg.schedule)
            shown.append(
                {
                    "client": name,
                    "display_name": cfg.display_name,
                    "schedule": cfg.schedule,
                    "last": batch,
                    "lag": lag,
                    "late": period is not None and (lag is None or lag > period),
                    "chart": pages.chart(queries.history(conn, name)) if batch else "",
                }
            )
    return pages.render("clients", _root(request), "Clients", clients=shown)


@app.get("/clients/{client}/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(request: Request, client: str, batch_id: str) -> str:
    cfg, batch_id = _client(client), _batch_id(batch_id)
    with read_only() as conn:
        batch = queries.batch(conn, client, batch_id)
        if batch is None:
            raise HTTPException(status_code=404, detail="no such batch")
        tasks = queries.task_log(conn, client, batch_id)
        files = queries.files(conn, client, batch_id)
        steps = queries.sql_steps(conn, client, batch_id)
        drift = queries.drift(conn, client, batch_id)
        extracts = queries.extracts(conn, client, batch_id)
        snapshots = queries.snapshots(conn, client, batch_id)
    failed = next((t for t in tasks if t["status"] == "FAILED"), None)
    run_id = (failed or {}).get("dag_run_id") or batch["dag_run_id"]
    run = f"/dags/{quote(client)}/runs/{quote(run_id, safe='')}" if run_id else None
    links = {
        "run": run,
        "task": f"{run}/tasks/{quote(failed['task_id'], safe='')}" if failed and run else None,
        "trigger": f"/dags/{quote(client)}",
    }
    return pages.render(
        "batch",
        _root(request),
        f"{client} {batch_id}",
        client=client,
        b=batch,
        files=files,
        steps=steps,
        extracts=extracts,
        snapshots=snapshots,
        gates=[t for t in tasks if t["task_id"].startswith("quality.")],
        drift=drift,
        failed=failed,
        action=action_for(client, failed["task_id"]) if failed else None,
        links=links,
        manifest=_manifest(cfg, batch.get("manifest_path")),
    )


def _manifest(cfg: ClientConfig, path: str | None) -> str | None:
    """The batch's manifest, when this server sees the landing store (and it is inside)."""
    if not path:
        return None
    try:
        root = Landing.from_env().root.resolve()
        manifest = Path(path).resolve()
        if root not in manifest.parents or not manifest.is_file():
            return None
        return manifest.read_text(encoding="utf-8", errors="replace")[:20000]
    except (OSError, KeyError, ValueError):  # ValueError: a landing on object storage
        return None


@app.get("/clients/{client}/batches/{batch_id}/rejected", response_class=HTMLResponse)
def rejected_page(
    request: Request,
    client: str,
    batch_id: str,
    file: Annotated[str | None, Query(max_length=200)] = None,
    column: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> str:
    cfg, batch_id = _client(client), _batch_id(batch_id)
    with read_only() as conn:
        total, rows = queries.rejected(conn, client, batch_id, file, column, PAGE, (page - 1) * PAGE)
    here = f"{_root(request)}/clients/{quote(client)}/batches/{batch_id}/rejected"
    return pages.render(
        "rejected",
        _root(request),
        f"{client} {batch_id}: rejected rows",
        rows=rows,
        total=total,
        first=(page - 1) * PAGE + 1,
        last=(page - 1) * PAGE + len(rows),
        file=file,
        column=column,
        file_names=[f.name for s in cfg.sources for f in s.files],
        csv_url=pages.page_url(f"{here}.csv", file=file, column=column),
        prev_url=pages.page_url(here, file=file, column=column, page=page - 1) if page > 1 else None,
        next_url=pages.page_url(here, file=file, column=column, page=page + 1)
        if page * PAGE < total
        else None,
    )


@app.get("/clients/{client}/batches/{batch_id}/rejected.csv")
def rejected_csv(
    client: str,
    batch_id: str,
    file: Annotated[str | None, Query(max_length=200)] = None,
    column: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    _client(client)
    batch_id = _batch_id(batch_id)
    with read_only() as conn:
        _, rows = queries.rejected(conn, client, batch_id, file, column, limit=1_000_000)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["file", "delivered_as", "row", "column", "reason", "raw_record"])
    for r in rows:
        writer.writerow(
            _cell(v)
            for v in (
                r["logical_source_file"],
                r["physical_file_name"],
                r["source_row_number"],
                r["column_name"] or "",
                r["reason"],
                pages._record(r["raw_record"]),
            )
        )
    name = f"{client}_{batch_id}_rejected.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@app.get("/lineage", response_class=HTMLResponse)
def lineage_page(
    request: Request,
    client: Annotated[str | None, Query(max_length=64)] = None,
    table: Annotated[str | None, Query(max_length=64)] = None,
    key: Annotated[str | None, Query(max_length=500)] = None,
) -> str:
    clients = {n: c for n, c in _clients().items() if c.lineage}
    client = client if client in clients else next(iter(sorted(clients)), None)
    cfg = clients.get(client) if client else None
    entries = cfg.lineage if cfg else []
    entry = next((e for e in entries if e.gold == table), entries[0] if entries else None)
    result: dict[str, Any] | None = None
    error = None
    if cfg and entry and key:
        values = [v.strip() for v in key.split(",")]
        if len(values) != len(entry.key):
            error = f"{entry.gold} is found by {len(entry.key)} value(s): {', '.join(entry.key)}"
        else:
            with read_only() as conn:
                result = queries.lineage(conn, cfg, entry, values)
    return pages.render(
        "lineage",
        _root(request),
        "Lineage",
        clients=sorted(clients),
        client=client,
        entries=entries,
        entry=entry,
        table=entry.gold if entry else None,
        key=key,
        result=result,
        error=error,
    )
