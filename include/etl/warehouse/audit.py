"""Writes to the tools log tables. Every function takes an autocommit connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from include.etl.warehouse.connection import one_row

if TYPE_CHECKING:  # not imported at parse time (pyarrow, psycopg): operators.tasks
    import psycopg

    from include.etl.ingest.validation import MappingResult, Reject

FILE_AUDIT_FIELDS = {
    "source_system",
    "physical_file_name",
    "parquet_name",
    "file_size_bytes",
    "convert_status",
    "mapping_validation_status",
    "row_validation_status",
    "load_status",
    "total_rows",
    "rejected_rows",
    "loaded_rows",
    "error_message",
    "file_sha256",
}


@dataclass
class Job:
    """What a running task reports about itself; set fields before the block ends."""

    rows: int | None = None
    message: str | None = None
    batch_id: str | None = None  # set by a task that learns its batch while running


@contextmanager
def job(
    conn: psycopg.Connection,
    client: str,
    batch_id: str | None,
    dag_run_id: str | None,
    task_id: str,
    try_number: int | None,
) -> Iterator[Job]:
    """One tools.job_execution_log row per attempt: RUNNING, then SUCCESS/FAILED/SKIPPED.

    An earlier attempt of the same task still RUNNING never reported back (killed by a
    timeout, SIGKILL or a lost worker): it is closed as FAILED, saying so.
    """
    if dag_run_id is not None:
        conn.execute(
            """UPDATE tools.job_execution_log
               SET status = 'FAILED', ended_at = now(),
                   message = 'ended without reporting back (killed: timeout, SIGKILL or a lost '
                             || 'worker); attempt ' || coalesce(%s::text, '?') || ' took over'
               WHERE client_schema = %s AND dag_run_id = %s AND task_id = %s AND status = 'RUNNING'""",
            (try_number, client, dag_run_id, task_id),
        )
    (row_id,) = one_row(
        conn.execute(
            """INSERT INTO tools.job_execution_log
               (client_schema, batch_id, dag_run_id, task_id, try_number, status)
           VALUES (%s, %s, %s, %s, %s, 'RUNNING') RETURNING id""",
            (client, batch_id, dag_run_id, task_id, try_number),
        )
    )
    record = Job()
    try:
        yield record
    except BaseException as exc:
        status = "SKIPPED" if getattr(exc, "is_skip", False) else "FAILED"
        _finish(conn, row_id, status, record, record.message or one_line(exc))
        raise
    _finish(conn, row_id, "SUCCESS", record, record.message)


def _finish(conn: psycopg.Connection, row_id: int, status: str, record: Job, message: str | None) -> None:
    conn.execute(
        """UPDATE tools.job_execution_log
           SET status = %s, rows_processed = %s, message = %s, ended_at = now(),
               batch_id = coalesce(batch_id, %s)
           WHERE id = %s""",
        (status, record.rows, message, record.batch_id, row_id),
    )


def one_line(exc: BaseException) -> str:
    """An exception as one line for a log row or a task message (at most 500 characters)."""
    return " ".join(str(exc).split())[:500] or type(exc).__name__


def register_file(
    conn: psycopg.Connection,
    client: str,
    batch_id: str,
    logical: str,
    source_system: str,
    physical: str | None,
    parquet: str | None,
    size: int | None,
) -> None:
    """Create (or refresh, on a re-run of open_batch) the audit row of one logical file."""
    conn.execute(
        """INSERT INTO tools.file_audit_log (client_schema, batch_id, logical_source_file,
               source_system, physical_file_name, parquet_name, file_size_bytes)
           VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (client_schema, batch_id, logical_source_file) DO UPDATE SET
               physical_file_name = EXCLUDED.physical_file_name,
               parquet_name = EXCLUDED.parquet_name,
               file_size_bytes = coalesce(EXCLUDED.file_size_bytes, file_audit_log.file_size_bytes),
               updated_at = now()""",
        (client, batch_id, logical, source_system, physical, parquet, size),
    )


def file_audit(conn: psycopg.Connection, client: str, batch_id: str, logical: str, **fields: object) -> None:
    """Set ``fields`` on the batch's audit row for one logical file."""
    unknown = set(fields) - FILE_AUDIT_FIELDS
    if unknown or not fields:
        raise ValueError(f"unknown or no file audit fields: {sorted(unknown)}")
    names = sorted(fields)
    # Column names come from the fixed whitelist above, never from input.
    assignments = ", ".join(f"{n} = %s" for n in names)
    conn.execute(
        f"""UPDATE tools.file_audit_log SET {assignments}, updated_at = now()
            WHERE client_schema = %s AND batch_id = %s AND logical_source_file = %s""",
        (*[fields[n] for n in names], client, batch_id, logical),
    )


def mapping_log(conn, client, batch_id, logical, status, missing, extra, message) -> None:
    """A ``tools.mapping_validation_log`` row: the file's columns against its mapping."""
    conn.execute(
        """INSERT INTO tools.mapping_validation_log
               (client_schema, batch_id, logical_source_file, status, missing_columns,
                extra_columns, message)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (client, batch_id, logical, status, missing, extra, message),
    )


def row_log(conn, client, batch_id, logical, status, total, rejected, duplicates, message) -> None:
    """A ``tools.row_validation_log`` row: rows, rejected rows and duplicate keys of a file."""
    conn.execute(
        """INSERT INTO tools.row_validation_log
               (client_schema, batch_id, logical_source_file, status, total_rows,
                rejected_rows, duplicate_keys, message)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
        (client, batch_id, logical, status, total, rejected, duplicates, message),
    )


def load_error(conn, client, batch_id, logical, stage, target_table, message) -> None:
    """A ``tools.load_error_log`` row: a stage of a file that failed, and why."""
    conn.execute(
        """INSERT INTO tools.load_error_log
               (client_schema, batch_id, logical_source_file, stage, target_table, error_message)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (client, batch_id, logical, stage, target_table, message),
    )


def replace_rejects(
    conn: psycopg.Connection,
    client: str,
    batch_id: str,
    logical: str,
    physical: str,
    rejects: list[Reject],
) -> None:
    """Replace the dead letters of (batch, file) in one transaction."""
    with conn.transaction():
        conn.execute(
            """DELETE FROM tools.rejected_rows
               WHERE client_schema = %s AND batch_id = %s AND logical_source_file = %s""",
            (client, batch_id, logical),
        )
        with conn.cursor().copy(
            """COPY tools.rejected_rows (client_schema, batch_id, logical_source_file,
                   physical_file_name, source_row_number, column_name, reason, raw_record)
               FROM STDIN"""
        ) as copy:
            for r in rejects:
                copy.write_row(
                    (
                        client,
                        batch_id,
                        logical,
                        physical,
                        r.row_number,
                        r.column,
                        r.reason,
                        json.dumps(r.raw, ensure_ascii=False),
                    )
                )


def rejected_row_numbers(conn: psycopg.Connection, client: str, batch_id: str, logical: str) -> set[int]:
    """The source row numbers of a file's dead letters in a batch (the load leaves them out)."""
    rows = conn.execute(
        """SELECT source_row_number FROM tools.rejected_rows
           WHERE client_schema = %s AND batch_id = %s AND logical_source_file = %s""",
        (client, batch_id, logical),
    )
    return {n for (n,) in rows}


def same_content_loaded(
    conn: psycopg.Connection, client: str, batch_id: str, logical: str, sha256: str
) -> tuple[str, str] | None:
    """(batch, file name) of another batch that loaded a file of this content, if any."""
    row = conn.execute(
        """SELECT batch_id, physical_file_name FROM tools.file_audit_log
           WHERE client_schema = %s AND logical_source_file = %s AND file_sha256 = %s
             AND batch_id <> %s AND load_status = 'SUCCESS'
           ORDER BY batch_id LIMIT 1""",
        (client, logical, sha256, batch_id),
    ).fetchone()
    return (row[0], row[1]) if row else None


def schema_version(conn: psycopg.Connection, client: str, logical: str) -> int:
    """The latest registered schema version of a logical file (0: never registered)."""
    (version,) = one_row(
        conn.execute(
            """SELECT coalesce(max(version), 0) FROM tools.schema_registry
           WHERE client_schema = %s AND logical_source_file = %s""",
            (client, logical),
        )
    )
    return version


def drift_log(
    conn: psycopg.Connection,
    client: str,
    batch_id: str,
    logical: str,
    physical: str | None,
    version: int,
    policy: str,
    result: MappingResult,
    action: str,
    message: str,
) -> None:
    """One tools.schema_drift_log row: what drifted in the delivered file, and the outcome."""
    conn.execute(
        """INSERT INTO tools.schema_drift_log
               (client_schema, batch_id, logical_source_file, physical_file_name, schema_version,
                policy, added_columns, missing_columns, retyped_columns, action, message)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            client,
            batch_id,
            logical,
            physical,
            version,
            policy,
            result.extra,
            result.missing,
            json.dumps([asdict(r) for r in result.retyped], ensure_ascii=False),
            action,
            message,
        ),
    )


def failure_reason(conn: psycopg.Connection, client: str, batch_id: str | None, task_id: str) -> str | None:
    """The one-line error a failed task of a batch recorded: its job log row (every
    Python task and quality gate), or its SQL step's log row. None if it recorded none
    (an upstream-failed task never ran)."""
    row = conn.execute(
        """SELECT message FROM tools.job_execution_log
           WHERE client_schema = %s AND batch_id IS NOT DISTINCT FROM %s AND task_id = %s
             AND status = 'FAILED'
           ORDER BY id DESC LIMIT 1""",
        (client, batch_id, task_id),
    ).fetchone()
    if row and row[0]:
        return str(row[0])
    layer, _, step = task_id.partition(".")
    row = conn.execute(
        """SELECT error_message FROM tools.sql_step_log
           WHERE client_schema = %s AND batch_id = %s AND layer = %s AND step_name = %s AND status = 'FAILED'
           ORDER BY id DESC LIMIT 1""",
        (client, batch_id, "views" if layer == "refresh_views" else layer, step),
    ).fetchone()
    return str(row[0]) if row and row[0] else None
