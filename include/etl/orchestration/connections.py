"""The warehouse connection of a running task, the one way tasks, SQL steps and quality
gates reach the warehouse.

It is the Airflow connection ``warehouse`` (an ``AIRFLOW_CONN_WAREHOUSE`` variable, a
secrets backend or the metadata database), turned into a libpq connection string with
the extras libpq understands (TLS above all: ``sslmode=verify-full`` must hold). A
``WAREHOUSE_DSN`` variable (a libpq string) takes its place, for scripts and tests.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from include.etl.config import WAREHOUSE_CONN_ID
from include.etl.ingest.landing import Landing
from include.etl.warehouse.connection import connect

if TYPE_CHECKING:
    import psycopg

# Connection extras passed on to libpq.
LIBPQ_EXTRAS = {
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "connect_timeout",
    "options",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "application_name",
}


def conninfo(conn_id: str = WAREHOUSE_CONN_ID) -> str:
    """The libpq connection string of an Airflow connection."""
    from airflow.sdk import BaseHook  # heavy: only when a task runs

    conn = BaseHook.get_connection(conn_id)
    params = {
        "host": conn.host or "localhost",
        "port": str(conn.port or 5432),
        "dbname": conn.schema or "postgres",
        "user": conn.login or "",
        "password": conn.password or "",
        "connect_timeout": "30",
    }
    extras = conn.extra_dejson or {}
    params.update({k: str(v) for k, v in extras.items() if k in LIBPQ_EXTRAS})
    from psycopg.conninfo import make_conninfo  # not at parse time: a DAG file needs no driver

    return make_conninfo(**{k: v for k, v in params.items() if v})


def warehouse(conn_id: str = WAREHOUSE_CONN_ID) -> psycopg.Connection:
    """A new connection to the warehouse of ``conn_id``."""
    return connect(os.environ.get("WAREHOUSE_DSN") or conninfo(conn_id))


def landing() -> Landing:
    """The landing store of ``ETL_DATA_ROOT``: a local folder (default ``.local/landing``),
    or an object-storage URL ``s3://<conn_id>@<bucket>/<prefix>`` opened as Airflow's
    ``ObjectStoragePath`` with that connection (docs/object-storage.md)."""
    location = os.environ.get("ETL_DATA_ROOT", "")
    if "://" not in location:
        return Landing.from_env()
    from airflow.sdk import ObjectStoragePath

    return Landing(ObjectStoragePath(location))  # type: ignore[arg-type]  # the same calls as a Path
