"""One SQL step of a layer: its statements in one transaction, with progress in the log,
and skipped when nothing it reads has changed since it last ran for the batch.

Used by ``include.etl.orchestration.operators.WarehouseSQLOperator`` (the DAG's SQL tasks).

**Skipping an unchanged step.** After a step has run, ``tools.sql_step_state`` keeps a
fingerprint for (client, layer, step, batch): a hash of the step's SQL text, its
parameters, the client's applied migrations, and the version of every table the step
reads. The tables it reads are the schema-qualified names of the client's bronze, silver
and gold schemas in its SQL text (step files always qualify them: no ``search_path`` is
set), plus, for a materialized view, the tables its definition reads. A table's version
is the highest ``write_id`` of the steps that write it (any batch; as their target or as
a side table their SQL also writes, ``also_writes``), with the catalog
identity of the table and of its per-batch children (a bronze load re-creates the
batch's child table, a migration that alters a table rewrites its catalog row). Before a
step runs, the fingerprint is computed again; when it is unchanged the step would write
exactly what it wrote the last time, so its statements are not run. Re-running a batch
that changed nothing (a cleared task, a re-run of the SQL stage) then costs a few
catalog queries per step, while a reloaded bronze table, a changed SQL file, a new
migration or another batch's write to a table the step reads makes it run again.
Changes made by hand outside the steps are not seen: reprocess the batch (it reloads
bronze) or delete the step's row from ``tools.sql_step_state``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import sql

from include.etl.warehouse.connection import one_row

LAYERS = ("silver", "gold", "views")


class Log(Protocol):
    """Where a step logs: a ``logging.Logger``, or a task's own logger."""

    def info(self, msg: str, /, *args: Any) -> Any: ...


@dataclass(frozen=True)
class StepResult:
    """What running a step did: skipped or not, statements, rows written, seconds."""

    skipped: bool
    statements: int
    rows: int  # rows the statements reported (inserted, updated, deleted), summed
    seconds: float


def split_statements(sql_text: str) -> list[str]:
    """The statements of a step file, as the SQL operator splits them (sqlparse)."""
    import sqlparse

    statements = []
    for statement in sqlparse.split(sql_text):
        code = sqlparse.format(statement, strip_comments=True).strip().rstrip(";").strip()
        if code:
            statements.append(statement.strip().rstrip(";").rstrip())
    return statements


WRITE = re.compile(
    r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO|TRUNCATE|REFRESH\s+MATERIALIZED\s+VIEW)\s+"
    r"((?:ONLY\s+)?[\w$\".]+)",
    re.IGNORECASE,
)


def describe(statement: str, width: int = 100) -> str:
    """What a statement does, for the log: its writes (``WITH ... UPDATE x, INSERT INTO x``)
    or else its first line that is not a comment, shortened."""
    code = [
        line.strip() for line in statement.splitlines() if line.strip() and not line.strip().startswith("--")
    ]
    text = " ".join(code)
    found = [(verb, name) for verb, name in WRITE.findall(text) if name.upper() != "SET"]  # DO UPDATE SET
    writes = list(dict.fromkeys(" ".join(f"{verb.upper()} {name}".split()) for verb, name in found))
    if writes:
        text = ("WITH ... " if text[:4].upper() == "WITH" else "") + ", ".join(writes)
    return text if len(text) <= width else text[: width - 3] + "..."


def relations_read(sql_text: str, client: str) -> set[str]:
    """``schema.table`` names of the client's layer schemas that the SQL text names."""
    pattern = re.compile(
        rf'\b"?((?:bronze|silver|gold)_{re.escape(client)})"?\s*\.\s*"?([A-Za-z_][A-Za-z0-9_$]*)"?'
    )
    return {f"{schema}.{name}" for schema, name in pattern.findall(sql_text)}


def relations_written(sql_text: str, client: str) -> set[str]:
    """``schema.table`` names of the client's layer schemas that the SQL text writes."""
    pattern = re.compile(
        r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO|TRUNCATE(?:\s+TABLE)?(?:\s+ONLY)?)\s+"
        rf'"?((?:bronze|silver|gold)_{re.escape(client)})"?\s*\.\s*"?([A-Za-z_][A-Za-z0-9_$]*)"?',
        re.IGNORECASE,
    )
    return {f"{schema}.{name}" for schema, name in pattern.findall(sql_text)}


class _Ticker:
    """Logs 'still running' every few seconds while one long statement runs."""

    def __init__(self, log: Log, what: str, every_seconds: float) -> None:
        self.log, self.what, self.every = log, what, every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.log.info("%s: still running, %.0f s", self.what, time.monotonic() - self.started)

    def __enter__(self) -> _Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _notes:
    """While a statement runs, its notices (``SELECT shared.note(...)``) go to the step's log."""

    def __init__(self, conn: psycopg.Connection, log: Log, label: str) -> None:
        self.conn, self.log, self.label = conn, log, label

    def _handler(self, diagnostic: Any) -> None:
        self.log.info("%s: %s", self.label, diagnostic.message_primary)

    def __enter__(self) -> None:
        self.conn.add_notice_handler(self._handler)

    def __exit__(self, *exc: object) -> None:
        self.conn.remove_notice_handler(self._handler)


def _versions(conn: psycopg.Connection, client: str, relations: set[str]) -> dict[str, str]:
    """The version of each relation that exists (see the module docstring)."""
    rows = conn.execute(
        """
        WITH rel AS (
            SELECT r.name, to_regclass(r.name) AS oid FROM unnest(%(names)s::text[]) AS r(name)
        )
        SELECT
            rel.name,
            concat_ws(
                '/',
                (SELECT max(s.write_id) FROM tools.sql_step_state AS s
                 WHERE s.client_schema = %(client)s AND s.target_table = rel.name),
                (SELECT max(s.write_id) FROM tools.sql_step_state AS s
                 WHERE s.client_schema = %(client)s AND s.also_writes @> ARRAY[rel.name]),
                (SELECT c.oid || '.' || c.xmin FROM pg_class AS c WHERE c.oid = rel.oid),
                (SELECT string_agg(c.oid || '.' || c.xmin, ',' ORDER BY c.oid)
                 FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
                 WHERE i.inhparent = rel.oid)
            )
        FROM rel
        WHERE rel.oid IS NOT NULL
        """,
        {"names": sorted(relations), "client": client},
    ).fetchall()
    return dict(rows)


def _view_sources(conn: psycopg.Connection, relation: str) -> set[str]:
    """The tables and views a (materialized) view's definition reads."""
    rows = conn.execute(
        """SELECT DISTINCT d.refobjid::regclass::text
           FROM pg_rewrite AS r
           JOIN pg_depend AS d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
           WHERE r.ev_class = to_regclass(%s)
             AND d.refclassid = 'pg_class'::regclass
             AND d.refobjid <> r.ev_class""",
        (relation,),
    ).fetchall()
    return {name for (name,) in rows}


def applied_migrations(conn: psycopg.Connection, client: str) -> str | None:
    """The migrations applied to the client's schemas and to ``tools``, each with its
    checksum, as one text: a new or changed migration changes it."""
    (migrations,) = one_row(
        conn.execute(
            """SELECT string_agg(scope || ':' || version || ':' || checksum, ',' ORDER BY scope, version)
           FROM tools.schema_migrations WHERE scope IN (%s, %s, 'tools')""",
            (client, f"{client}:own"),
        )
    )
    return migrations


def fingerprint(
    conn: psycopg.Connection,
    client: str,
    layer: str,
    target: str,
    sql_text: str,
    parameters: dict,
) -> str:
    """The fingerprint of what a step would read and run (see the module docstring)."""
    reads = relations_read(sql_text, client) | {target}
    if layer == "views":
        reads |= _view_sources(conn, target)
    state = {
        "sql": sql_text,
        "parameters": parameters,
        "migrations": applied_migrations(conn, client),
        "versions": _versions(conn, client, reads),
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def run_step(
    conn: psycopg.Connection,
    *,
    client: str,
    layer: str,
    step: str,
    target: str,
    sql_text: str,
    batch_id: str,
    log: Log,
    parameters: dict | None = None,
    tick_seconds: float = 10.0,
    skip_unchanged: bool = True,
) -> StepResult:
    """Run a step's statements in one transaction of ``conn``, or skip them if unchanged.

    ``parameters`` (default ``{"batch_id": batch_id}``) are bound to every statement,
    as the SQL operator binds them: a literal ``%`` in a step file is written ``%%``.
    Each statement is logged when it starts, every ``tick_seconds`` while it runs, and
    with its rows, seconds and rows/s when it ends.
    """
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}")
    parameters = parameters if parameters is not None else {"batch_id": batch_id}
    what = f"{layer}.{step} ({batch_id})"
    statements = split_statements(sql_text)
    also_writes = sorted(relations_written(sql_text, client) - {target})
    started = time.monotonic()
    total_rows = 0
    with conn.transaction():
        previous = conn.execute(
            """SELECT fingerprint FROM tools.sql_step_state
               WHERE client_schema = %s AND layer = %s AND step_name = %s AND batch_id = %s
               FOR UPDATE""",
            (client, layer, step, batch_id),
        ).fetchone()
        unchanged = (
            skip_unchanged
            and previous is not None
            and previous[0] == fingerprint(conn, client, layer, target, sql_text, parameters)
        )
        if unchanged:
            seconds = time.monotonic() - started
            log.info(
                "%s: skipped, nothing it reads has changed since it last ran for this batch "
                "(checked in %.2f s)",
                what,
                seconds,
            )
            return StepResult(True, 0, 0, seconds)
        for number, statement in enumerate(statements, start=1):
            label = f"{what} statement {number}/{len(statements)}"
            log.info("%s: %s", label, describe(statement))
            t0 = time.monotonic()
            with _Ticker(log, label, tick_seconds), _notes(conn, log, label):
                cursor = conn.execute(statement, parameters)
            seconds = time.monotonic() - t0
            rows = max(cursor.rowcount, 0)
            total_rows += rows
            log.info(
                "%s: %s rows in %.2f s (%s rows/s)",
                label,
                f"{rows:,}",
                seconds,
                f"{rows / max(seconds, 1e-9):,.0f}",
            )
        if total_rows:
            # Fresh statistics for the next steps, which read the batch just written: with
            # the table's old statistics the planner takes the new batch for a few rows
            # and nests loops over it (a next batch's dim_customers ran minutes instead of
            # seconds). ANALYZE reads a sample (30,000 rows), so it costs little.
            t0 = time.monotonic()
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(*target.split(".", 1))))
            log.info("%s: analyzed %s in %.2f s", what, target, time.monotonic() - t0)
        (write_id,) = one_row(conn.execute("SELECT nextval('tools.sql_step_write_seq')"))
        conn.execute(
            """INSERT INTO tools.sql_step_state AS s
                   (client_schema, layer, step_name, batch_id, target_table, also_writes,
                    write_id, fingerprint)
               VALUES (%s, %s, %s, %s, %s, %s, %s, '')
               ON CONFLICT (client_schema, layer, step_name, batch_id) DO UPDATE SET
                   target_table = EXCLUDED.target_table, also_writes = EXCLUDED.also_writes,
                   write_id = EXCLUDED.write_id, fingerprint = '', written_at = now()""",
            (client, layer, step, batch_id, target, also_writes, write_id),
        )
        # taken after the write, so that it includes this step's own new version
        conn.execute(
            """UPDATE tools.sql_step_state SET fingerprint = %s
               WHERE client_schema = %s AND layer = %s AND step_name = %s AND batch_id = %s""",
            (
                fingerprint(conn, client, layer, target, sql_text, parameters),
                client,
                layer,
                step,
                batch_id,
            ),
        )
    seconds = time.monotonic() - started
    log.info(
        "%s: done, %d statements, %s rows in %.2f s (%s rows/s)",
        what,
        len(statements),
        f"{total_rows:,}",
        seconds,
        f"{total_rows / max(seconds, 1e-9):,.0f}",
    )
    return StepResult(False, len(statements), total_rows, seconds)
