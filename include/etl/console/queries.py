"""What the console shows, read from the warehouse: read-only queries, every value bound,
every identifier from the validated client config and quoted.

Each function takes an open connection (the console opens one per request, read-only)
and returns plain rows (dicts), so the pages only lay them out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from include.etl.config import ClientConfig, Lineage

Row = dict[str, Any]


def _rows(conn: psycopg.Connection, query: str | sql.Composed, params: Any = ()) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def last_batches(conn: psycopg.Connection, clients: list[str]) -> dict[str, Row]:
    """Each client's latest batch: status, when, duration, rows loaded and rejected, and
    when its last SUCCESS batch ended."""
    rows = _rows(
        conn,
        """SELECT DISTINCT ON (b.client_schema) b.client_schema, b.batch_id, b.status, b.started_at,
                  b.ended_at,
                  extract(epoch FROM coalesce(b.ended_at, now()) - b.started_at)::float AS seconds,
                  f.loaded, f.rejected,
                  (SELECT max(s.ended_at) FROM tools.batch AS s
                   WHERE s.client_schema = b.client_schema AND s.status = 'SUCCESS') AS last_success
           FROM tools.batch AS b
           LEFT JOIN LATERAL (
               SELECT sum(loaded_rows) AS loaded, sum(rejected_rows) AS rejected
               FROM tools.file_audit_log AS a
               WHERE a.client_schema = b.client_schema AND a.batch_id = b.batch_id) AS f ON true
           WHERE b.client_schema = ANY(%s)
           ORDER BY b.client_schema, b.batch_id DESC""",
        (clients,),
    )
    return {r["client_schema"]: r for r in rows}


def history(conn: psycopg.Connection, client: str, limit: int = 30) -> list[Row]:
    """The client's last ``limit`` batches, oldest first: seconds and rows loaded."""
    rows = _rows(
        conn,
        """SELECT b.batch_id, b.status,
                  extract(epoch FROM coalesce(b.ended_at, now()) - b.started_at)::float AS seconds,
                  coalesce((SELECT sum(loaded_rows) FROM tools.file_audit_log AS a
                            WHERE a.client_schema = b.client_schema AND a.batch_id = b.batch_id), 0) AS loaded
           FROM tools.batch AS b WHERE b.client_schema = %s ORDER BY b.batch_id DESC LIMIT %s""",
        (client, limit),
    )
    return rows[::-1]


def batch(conn: psycopg.Connection, client: str, batch_id: str) -> Row | None:
    """One batch, with the Airflow run that opened it."""
    rows = _rows(
        conn,
        """SELECT b.*, extract(epoch FROM coalesce(b.ended_at, now()) - b.started_at)::float AS seconds,
                  (SELECT r.dag_run_id FROM tools.batch_run AS r
                   WHERE r.client_schema = b.client_schema AND r.batch_id = b.batch_id
                   ORDER BY r.created_at DESC LIMIT 1) AS dag_run_id,
                  h.healthy, h.reasons
           FROM tools.batch AS b
           LEFT JOIN tools.batch_health AS h USING (client_schema, batch_id)
           WHERE b.client_schema = %s AND b.batch_id = %s""",
        (client, batch_id),
    )
    return rows[0] if rows else None


def files(conn: psycopg.Connection, client: str, batch_id: str) -> list[Row]:
    """The batch's files: each step's status, rows, rejects, size, sha256."""
    return _rows(
        conn,
        """SELECT logical_source_file, source_system, physical_file_name, convert_status,
                  mapping_validation_status, row_validation_status, load_status, total_rows,
                  rejected_rows, loaded_rows, file_size_bytes, file_sha256, error_message
           FROM tools.file_audit_log WHERE client_schema = %s AND batch_id = %s
           ORDER BY source_system, logical_source_file""",
        (client, batch_id),
    )


def extracts(conn: psycopg.Connection, client: str, batch_id: str) -> list[Row]:
    """The batch's database extracts: each source's window, the rows it took, its last pair."""
    return _rows(
        conn,
        """SELECT logical_source_file, full_load, lower_watermark, lower_key, upper_watermark,
                  extracted_rows, last_watermark, last_key, planned_at, extracted_at
           FROM tools.extract_window WHERE client_schema = %s AND batch_id = %s
           ORDER BY logical_source_file""",
        (client, batch_id),
    )


def snapshots(conn: psycopg.Connection, client: str, batch_id: str) -> list[Row]:
    """The batch's snapshot deliveries: rows delivered, rows silver kept, keys vanished,
    the keys compared (those of the changed rows; NULL: every key) and the earlier batch
    whose snapshot it delivered again (then not compared)."""
    return _rows(
        conn,
        """SELECT table_name, delivered_rows, changed_rows, vanished_keys, same_as_batch, compared_keys
           FROM tools.snapshot_delivery WHERE client_schema = %s AND batch_id = %s
           ORDER BY table_name""",
        (client, batch_id),
    )


def sql_steps(conn: psycopg.Connection, client: str, batch_id: str) -> list[Row]:
    """The batch's SQL steps, the last attempt of each: rows and seconds."""
    return _rows(
        conn,
        """SELECT DISTINCT ON (layer, step_name) layer, step_name, target_table, status, rows_in_batch,
                  try_number, error_message, again_after,
                  extract(epoch FROM coalesce(ended_at, now()) - started_at)::float AS seconds
           FROM tools.sql_step_log WHERE client_schema = %s AND batch_id = %s
           ORDER BY layer, step_name, id DESC""",
        (client, batch_id),
    )


def task_log(conn: psycopg.Connection, client: str, batch_id: str) -> list[Row]:
    """The last attempt of each task of the batch (quality gates included), failed first."""
    return _rows(
        conn,
        """SELECT * FROM (
               SELECT DISTINCT ON (task_id) task_id, dag_run_id, try_number, status, rows_processed,
                      message, started_at, ended_at
               FROM tools.job_execution_log WHERE client_schema = %s AND batch_id = %s
               ORDER BY task_id, id DESC) AS last
           ORDER BY (status = 'FAILED') DESC, started_at""",
        (client, batch_id),
    )


def drift(conn: psycopg.Connection, client: str, batch_id: str) -> list[Row]:
    """Schema drift events of the batch's files."""
    return _rows(
        conn,
        """SELECT logical_source_file, physical_file_name, schema_version, policy, added_columns,
                  missing_columns, retyped_columns, action, message
           FROM tools.schema_drift_log WHERE client_schema = %s AND batch_id = %s ORDER BY id""",
        (client, batch_id),
    )


def rejected(
    conn: psycopg.Connection,
    client: str,
    batch_id: str,
    file: str | None = None,
    column: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[Row]]:
    """The batch's rejected rows (dead letters), filtered by file and column, paged: the
    total and the page."""
    where = "client_schema = %s AND batch_id = %s"
    params: list[Any] = [client, batch_id]
    if file:
        where += " AND logical_source_file = %s"
        params.append(file)
    if column:
        where += " AND column_name = %s"
        params.append(column)
    (total,) = conn.execute(f"SELECT count(*) FROM tools.rejected_rows WHERE {where}", params).fetchone() or (
        0,
    )
    rows = _rows(
        conn,
        f"""SELECT logical_source_file, physical_file_name, source_row_number, column_name, reason, raw_record
            FROM tools.rejected_rows WHERE {where}
            ORDER BY logical_source_file, source_row_number, column_name LIMIT %s OFFSET %s""",
        [*params, limit, offset],
    )
    return total, rows


def lineage(conn: psycopg.Connection, cfg: ClientConfig, entry: Lineage, values: list[str]) -> Row:
    """A gold row by its key, the silver rows with that key it was made from, and for each
    the bronze row and the delivered file and row it came from.

    Each lookup reads an index or one batch's rows, never the whole history (the bench's
    ``lineage_*_ms``): the gold row through its key's unique index (the values are
    compared as the key columns' own types; one that is not of its type is reported, not
    searched for); the silver rows of the gold row's batch (silver's batch index narrows
    the read to that batch), or, when that batch holds no row with the key (a snapshot
    delivery keeps a row until it changes), those of the latest batch before it that
    does; each one's bronze row in its batch's own table. Returns ``gold`` (None: no such
    row), ``silver`` and, for a value that is not of its column's type, ``error``."""

    def matching(schema: str, table: str, columns: list[str], extra: sql.Composable) -> sql.Composed:
        condition = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
        return sql.SQL("SELECT * FROM {} WHERE ").format(sql.Identifier(schema, table)) + condition + extra

    try:
        gold = _rows(conn, matching(cfg.gold_schema, entry.gold, entry.key, sql.SQL("")), values)
    except psycopg.DataError as exc:  # a value PostgreSQL cannot read as its column's type
        conn.rollback()
        reason = f"{entry.gold} is found by {', '.join(entry.key)}: {str(exc).splitlines()[0]}"
        return {"gold": None, "silver": [], "error": reason}
    if not gold:
        return {"gold": None, "silver": []}
    batch = gold[0]["dwh_batch_id"]
    # Gold's values as text, each read as its silver column's type (which may not be gold's).
    key = [None if gold[0][c] is None else str(gold[0][c]) for c in entry.key]
    ordered = sql.SQL(" ORDER BY dwh_source_file, dwh_row_number")
    # Through silver's batch index, which the planner passes over once a batch has been
    # run again (why: the same setting in gold/fact_sales.sql).
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        silver = _rows(
            conn,
            matching(
                cfg.silver_schema, entry.silver, entry.silver_key, sql.SQL(" AND dwh_batch_id = %s") + ordered
            ),
            [*key, batch],
        )
        conn.execute("RESET enable_seqscan")
    if not silver:
        latest = sql.SQL("SELECT max(dwh_batch_id) FROM ({}) AS k").format(
            matching(cfg.silver_schema, entry.silver, entry.silver_key, sql.SQL(" AND dwh_batch_id < %s"))
        )
        silver = _rows(
            conn,
            matching(
                cfg.silver_schema,
                entry.silver,
                entry.silver_key,
                sql.SQL(" AND dwh_batch_id = ({})").format(latest) + ordered,
            ),
            [*key, *key, batch],
        )
    for row in silver:
        bronze = _rows(
            conn,
            sql.SQL(
                "SELECT * FROM {} WHERE dwh_batch_id = %s AND dwh_source_file = %s AND dwh_row_number = %s"
            ).format(sql.Identifier(cfg.bronze_schema, entry.bronze)),
            (row["dwh_batch_id"], row.get("dwh_source_file"), row.get("dwh_row_number")),
        )
        row["_bronze"] = bronze[0] if bronze else None
    return {"gold": gold[0], "silver": silver}


def since(moment: datetime | None, now: datetime) -> float | None:
    """Seconds from ``moment`` to ``now`` (None for no moment)."""
    return (now - moment).total_seconds() if moment else None
