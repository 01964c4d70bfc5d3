"""The high-water marks of database sources and the windows batches extract, in ``tools``.

``tools.extract_window`` fixes a batch's window when it first extracts (a cleared task
or a restart reads the same window again) and keeps what its latest extract found;
``tools.watermarks`` holds each source's mark, moved by ``advance_mark_sql`` in the
transaction that commits the batch's bronze rows (see include/etl/ingest/extract.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from include.etl.ingest.extract import Extracted, Mark, Window
from include.etl.warehouse.connection import one_row


def _utc(value: datetime | None) -> datetime | None:
    """A naive timestamp (a ``timestamp`` source column) is UTC: the extract reads in UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def mark(conn: psycopg.Connection, client: str, logical: str) -> Mark | None:
    """The source's high-water mark, or None before its first successful load."""
    row = conn.execute(
        """SELECT watermark, tiebreak FROM tools.watermarks
           WHERE client_schema = %s AND logical_source_file = %s""",
        (client, logical),
    ).fetchone()
    return Mark(row[0], row[1]) if row else None


def window_of(conn: psycopg.Connection, client: str, batch_id: str, logical: str) -> Window | None:
    """The window the batch fixed at its first extract, or None if it has not extracted."""
    row = conn.execute(
        """SELECT full_load, lower_watermark, lower_key, upper_watermark FROM tools.extract_window
           WHERE client_schema = %s AND batch_id = %s AND logical_source_file = %s""",
        (client, batch_id, logical),
    ).fetchone()
    return Window(*row) if row else None


def fix_window(conn: psycopg.Connection, client: str, batch_id: str, logical: str, window: Window) -> None:
    conn.execute(
        """INSERT INTO tools.extract_window (client_schema, batch_id, logical_source_file, full_load,
               lower_watermark, lower_key, upper_watermark)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (
            client,
            batch_id,
            logical,
            window.full_load,
            _utc(window.lower),
            window.lower_key,
            _utc(window.upper),
        ),
    )


def record_extract(
    conn: psycopg.Connection, client: str, batch_id: str, logical: str, done: Extracted
) -> None:
    """What the latest extract of the window found: its rows and its greatest pair."""
    last = done.last
    conn.execute(
        """UPDATE tools.extract_window SET extracted_rows = %s, last_watermark = %s, last_key = %s,
               extracted_at = now()
           WHERE client_schema = %s AND batch_id = %s AND logical_source_file = %s""",
        (
            done.rows,
            _utc(last.watermark) if last else None,
            last.key if last else None,
            client,
            batch_id,
            logical,
        ),
    )


def full_load_due(conn: psycopg.Connection, client: str, logical: str, every: timedelta | None) -> bool:
    """Whether the source's last full load was planned longer than ``every`` ago (a
    source never fully loaded has no mark: its first window is a full load anyway)."""
    if every is None:
        return False
    (due,) = one_row(
        conn.execute(
            """SELECT coalesce(max(planned_at) < now() - %s, true) FROM tools.extract_window
               WHERE client_schema = %s AND logical_source_file = %s AND full_load""",
            (every, client, logical),
        )
    )
    return bool(due)


def empty_windows_in_a_row(conn: psycopg.Connection, client: str, logical: str) -> int:
    """How many of the source's latest extracted windows (this one included) had no row."""
    rows = conn.execute(
        """SELECT extracted_rows FROM tools.extract_window
           WHERE client_schema = %s AND logical_source_file = %s AND extracted_rows IS NOT NULL
           ORDER BY batch_id DESC LIMIT 1000""",
        (client, logical),
    ).fetchall()
    count = 0
    for (extracted,) in rows:
        if extracted:
            break
        count += 1
    return count


def advance_mark_sql(client: str, batch_id: str, logical: str) -> sql.Composed:
    """The statement that moves the source's mark to the batch's window's greatest pair,
    run in the bronze load's own transaction; an older batch run again leaves it."""
    return sql.SQL(
        """INSERT INTO tools.watermarks AS w
               (client_schema, logical_source_file, watermark, tiebreak, batch_id)
           SELECT client_schema, logical_source_file, last_watermark, last_key, batch_id
           FROM tools.extract_window
           WHERE client_schema = {client} AND batch_id = {batch} AND logical_source_file = {logical}
             AND last_watermark IS NOT NULL
           ON CONFLICT (client_schema, logical_source_file) DO UPDATE SET
               watermark = EXCLUDED.watermark, tiebreak = EXCLUDED.tiebreak,
               batch_id = EXCLUDED.batch_id, updated_at = now()
           WHERE w.batch_id <= EXCLUDED.batch_id"""
    ).format(client=sql.Literal(client), batch=sql.Literal(batch_id), logical=sql.Literal(logical))
