"""Opening a warehouse connection from a libpq connection string.

Where the string comes from is the caller's business: a running task resolves the
Airflow connection ``warehouse`` (``include.etl.orchestration.connections``), a script or
a test passes its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a connection is opened, not by a DAG file's parse
    import psycopg

APPLICATION_NAME = "medallion-etl"  # what pg_stat_activity shows for our sessions


def connect(conninfo: str) -> psycopg.Connection:
    """A new connection to the warehouse (not in autocommit: the caller decides)."""
    import psycopg

    return psycopg.connect(conninfo, application_name=APPLICATION_NAME)


def one_row(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    """The row of a query that always returns one: an aggregate, a ``RETURNING`` of one
    inserted or updated row. None is a broken invariant, said as such."""
    row = cursor.fetchone()
    if row is None:
        raise LookupError(
            f"expected one row, got none from: {' '.join(str(cursor._query or '').split())[:200]}"
        )
    return tuple(row)
