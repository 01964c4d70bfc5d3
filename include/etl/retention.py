"""Retention: what of a client's past batches is purged once it is older than the
client's ``retention_days``, and the purge itself (the housekeeping DAG runs it daily).

A batch expires when it ended (``tools.batch.ended_at``) before the cut-off. What is
never touched:

- a batch that is not closed (``RUNNING``: it may be restarted or is still working);
- the client's latest ``SUCCESS`` batch, however old (the last good delivery);
- any batch inside the window: a ``reprocessing`` of it needs its own Parquet only (its
  raw files for a ``restart``), and those stay with it;
- silver and gold, ``tools.batch``, ``tools.file_audit_log`` and the SQL step state: the
  warehouse's contents and the one-line history of every batch.

What an expired batch loses: its raw files (in ``archive``, ``success`` or ``failed``;
never ``incoming``), its Parquet, its manifest, its bronze child tables
(``<table>__batchNNNNNN``), and its dead letters and log rows in ``tools``. Every purge
(or dry run) is recorded in ``tools.housekeeping_log``: per batch and kind, items and
bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql

from include.etl.config import ClientConfig
from include.etl.ingest.bronze import batch_table
from include.etl.ingest.landing import Landing, claimed_batch, listing, manifest_name

log = logging.getLogger(__name__)

# The tools tables whose rows of an expired batch are purged (dead letters and logs).
TOOLS_ROWS = (
    "rejected_rows",
    "job_execution_log",
    "sql_step_log",
    "row_validation_log",
    "mapping_validation_log",
    "load_error_log",
    "schema_drift_log",
)


@dataclass
class Purge:
    """What purging one batch removes (or would remove, in a dry run)."""

    batch_id: str
    raw_files: list[Path] = field(default_factory=list)
    parquet: list[Path] = field(default_factory=list)
    manifests: list[Path] = field(default_factory=list)
    bronze_tables: list[str] = field(default_factory=list)
    tools_rows: dict[str, int] = field(default_factory=dict)

    def kinds(self) -> list[tuple[str, int, int | None, str]]:
        """(kind, items, bytes, detail) of each kind of thing purged."""
        rows: list[tuple[str, int, int | None, str]] = []
        for kind, paths in (
            ("raw_files", self.raw_files),
            ("parquet", self.parquet),
            ("manifests", self.manifests),
        ):
            if paths:
                size = sum(p.stat().st_size for p in paths if p.exists())
                rows.append((kind, len(paths), size, ", ".join(p.name for p in paths)))
        if self.bronze_tables:
            rows.append(("bronze_tables", len(self.bronze_tables), None, ", ".join(self.bronze_tables)))
        counted = {t: n for t, n in self.tools_rows.items() if n}
        if counted:
            detail = ", ".join(f"{t} {n}" for t, n in counted.items())
            rows.append(("tools_rows", sum(counted.values()), None, detail))
        return rows


def expired_batches(conn: psycopg.Connection, cfg: ClientConfig, now: datetime) -> list[str]:
    """The client's batches past its retention (see the module docstring for what is kept)."""
    rows = conn.execute(
        """SELECT b.batch_id FROM tools.batch AS b
           WHERE b.client_schema = %(client)s
             AND b.status <> 'RUNNING'
             AND b.ended_at < %(now)s - make_interval(days => %(days)s)
             AND b.batch_id IS DISTINCT FROM (
                 SELECT max(batch_id) FROM tools.batch
                 WHERE client_schema = %(client)s AND status = 'SUCCESS')
           ORDER BY b.batch_id""",
        {"client": cfg.client, "now": now, "days": cfg.retention_days},
    ).fetchall()
    return [batch_id for (batch_id,) in rows]


def plan(conn: psycopg.Connection, cfg: ClientConfig, landing: Landing, batch_id: str) -> Purge:
    """What purging one expired batch removes."""
    purge = Purge(batch_id)
    for system in cfg.sources:
        for state in ("archive", "success", "failed"):
            purge.raw_files += _claimed_by(landing.raw(cfg.client, system.name, state), batch_id)
        for state in ("archive", "failed"):
            purge.parquet += _claimed_by(landing.data(cfg.client, system.name, state), batch_id)
    for state in ("success", "failed", "archive"):
        manifest = landing.batch_info(cfg.client, state) / manifest_name(cfg.client, batch_id)
        if manifest.is_file():
            purge.manifests.append(manifest)
    children = {batch_table(f.bronze_table, batch_id) for _, f in cfg.files}
    existing = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
        (cfg.bronze_schema, sorted(children)),
    ).fetchall()
    purge.bronze_tables = sorted(name for (name,) in existing)
    for table in TOOLS_ROWS:
        (n,) = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE client_schema = %s AND batch_id = %s").format(
                sql.Identifier("tools", table)
            ),
            (cfg.client, batch_id),
        ).fetchone() or (0,)
        purge.tools_rows[table] = n
    return purge


def _claimed_by(folder: Path, batch_id: str) -> list[Path]:
    """The files of a folder claimed by ``batch_id`` (named with its suffix)."""
    return [p for p in listing(folder) if p.is_file() and claimed_batch(p.name) == batch_id]


def apply(conn: psycopg.Connection, cfg: ClientConfig, purge: Purge) -> None:
    """Remove what ``purge`` lists: the bronze tables and tools rows in one transaction,
    then the files (a file already gone is not an error: a purge may be run again)."""
    with conn.transaction():
        for table in purge.bronze_tables:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(cfg.bronze_schema, table)))
        for table in TOOLS_ROWS:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE client_schema = %s AND batch_id = %s").format(
                    sql.Identifier("tools", table)
                ),
                (cfg.client, purge.batch_id),
            )
    for path in [*purge.raw_files, *purge.parquet, *purge.manifests]:
        path.unlink(missing_ok=True)


def purge_client(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    landing: Landing,
    now: datetime,
    dry_run: bool,
    dag_run_id: str | None = None,
) -> list[Purge]:
    """Purge (or, with ``dry_run``, only list) every expired batch of a client; record
    each in ``tools.housekeeping_log``. Returns what was purged."""
    purged = []
    for batch_id in expired_batches(conn, cfg, now):
        purge = plan(conn, cfg, landing, batch_id)
        kinds = purge.kinds()  # sizes taken before the files go
        if not dry_run:
            apply(conn, cfg, purge)
        for kind, items, size, detail in kinds:
            conn.execute(
                """INSERT INTO tools.housekeeping_log
                       (dag_run_id, client_schema, batch_id, kind, items, bytes, dry_run, detail)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                (dag_run_id, cfg.client, batch_id, kind, items, size, dry_run, detail[:2000]),
            )
            log.info(
                "%s %s: %s %s %d %s%s",
                cfg.client,
                batch_id,
                "would remove" if dry_run else "removed",
                kind,
                items,
                "item(s)",
                f", {size:,} bytes" if size else "",
            )
        purged.append(purge)
    return purged
