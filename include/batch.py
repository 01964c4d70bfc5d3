"""Batches: allocate the id, claim the files, write the manifest; and close them.

A DAG run owns exactly one batch (``tools.batch_run``). Opening is idempotent and
crash-safe: re-running it for the same DAG run returns the same batch id, finds the
files it already claimed in whichever folder they are now, claims only what is still
unclaimed, and rewrites the manifest atomically.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from include import audit
from include.config import ClientConfig
from include.landing import (
    RAW_STATES,
    Landing,
    claimed_batch,
    claimed_name,
    manifest_name,
    move,
    parquet_name,
    safe_child,
    unclaimed_name,
    write_json_atomic,
)

log = logging.getLogger(__name__)

BATCH_ID = re.compile(r"^BATCH\d{6,}$")


class BatchError(ValueError):
    """The batch cannot be opened or closed as asked; the message says why."""


@dataclass(frozen=True)
class Batch:
    client: str
    batch_id: str
    manifest_path: str
    files: dict[str, str | None]  # logical name -> claimed physical file name (None: absent)

    def as_xcom(self) -> dict:
        return {
            "client": self.client,
            "batch_id": self.batch_id,
            "manifest_path": self.manifest_path,
            "files": self.files,
        }


def format_batch_id(number: int) -> str:
    return f"BATCH{number:06d}"


def _lock_client(conn: psycopg.Connection, client: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('medallion-etl:batch:' || %s))", (client,))


def open_batch(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    landing: Landing,
    dag_run_id: str,
    mode: str = "start",
) -> Batch:
    landing.ensure(cfg)
    with conn.transaction():
        _lock_client(conn, cfg.client)
        row = conn.execute(
            "SELECT batch_id FROM tools.batch_run WHERE client_schema = %s AND dag_run_id = %s",
            (cfg.client, dag_run_id),
        ).fetchone()
        if row:
            batch_id = row[0]
            log.info("DAG run %s already owns %s: reusing it", dag_run_id, batch_id)
        else:
            missing = landing.missing_required(cfg)
            if missing:
                raise BatchError(f"{cfg.client}: required file(s) missing in incoming: {', '.join(missing)}")
            (number,) = conn.execute(
                """UPDATE tools.client_reference SET last_batch_id = last_batch_id + 1
                   WHERE client_schema = %s RETURNING last_batch_id""",
                (cfg.client,),
            ).fetchone()
            batch_id = format_batch_id(number)
            conn.execute(
                """INSERT INTO tools.batch (client_schema, batch_id, mode, config_version)
                   VALUES (%s, %s, %s, %s)""",
                (cfg.client, batch_id, mode, cfg.config_version),
            )
            conn.execute(
                """INSERT INTO tools.batch_run (client_schema, dag_run_id, batch_id, mode)
                   VALUES (%s, %s, %s, %s)""",
                (cfg.client, dag_run_id, batch_id, mode),
            )
            log.info("opened %s for %s (DAG run %s)", batch_id, cfg.client, dag_run_id)

    files = {f.name: _claim(cfg, landing, system.name, f, batch_id) for system, f in cfg.files}
    missing = [f.name for _, f in cfg.files if f.required and files[f.name] is None]
    if missing:
        raise BatchError(f"{cfg.client} {batch_id}: required file(s) not found: {', '.join(missing)}")

    manifest = _manifest(cfg, batch_id, dag_run_id, mode, files)
    path = landing.locate_manifest(cfg.client, batch_id) or (
        landing.batch_info(cfg.client, "incoming") / manifest_name(cfg.client, batch_id)
    )
    write_json_atomic(path, manifest)
    conn.execute(
        "UPDATE tools.batch SET manifest_path = %s WHERE client_schema = %s AND batch_id = %s",
        (str(path), cfg.client, batch_id),
    )
    for system, f in cfg.files:
        physical = files[f.name]
        raw = landing.locate_raw(cfg.client, system.name, physical) if physical else None
        audit.register_file(
            conn,
            cfg.client,
            batch_id,
            f.name,
            system.name,
            physical,
            parquet_name(physical) if physical else None,
            raw.stat().st_size if raw else None,
        )
    return Batch(cfg.client, batch_id, str(path), files)


def _claim(cfg: ClientConfig, landing: Landing, system: str, f, batch_id: str) -> str | None:
    """The physical name this batch uses for a logical file, claiming it if needed."""
    already = _already_claimed(cfg, landing, system, f, batch_id)
    if already:
        return already
    candidates = landing.unclaimed(cfg, system, f)
    if not candidates:
        return None
    chosen = candidates[0]
    if len(candidates) > 1:
        log.warning(
            "%s/%s: %d files match; claiming %s, the others wait for the next batch",
            system,
            f.name,
            len(candidates),
            chosen.name,
        )
    target = safe_child(chosen.parent, claimed_name(chosen.name, batch_id))
    chosen.rename(target)
    log.info("claimed %s as %s", chosen.name, target.name)
    return target.name


def _already_claimed(cfg: ClientConfig, landing: Landing, system: str, f, batch_id: str) -> str | None:
    """The file this batch claimed for ``f`` earlier, in whichever raw folder it is now."""
    for state in RAW_STATES:
        folder = landing.raw(cfg.client, system, state)
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if claimed_batch(path.name) == batch_id and f.matches(unclaimed_name(path.name)):
                return path.name
    return None


def _manifest(cfg: ClientConfig, batch_id: str, dag_run_id: str, mode: str, files: dict) -> dict:
    return {
        "client_schema": cfg.client,
        "batch_id": batch_id,
        "dag_run_id": dag_run_id,
        "mode": mode,
        "config_version": cfg.config_version,
        "status": "RUNNING",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": [
            {
                "logical_source_file": f.name,
                "source_system": system.name,
                "source_type": f.type,
                "physical_file_name": files[f.name],
                "parquet_name": parquet_name(files[f.name]) if files[f.name] else None,
                "target_schema": cfg.bronze_schema,
                "target_table": f.bronze_table,
                "required": f.required,
            }
            for system, f in cfg.files
        ],
        "transformation_steps": [s.sql for s in cfg.silver],
        "integration_steps": [s.sql for s in cfg.gold],
        "refresh_views": [f"{cfg.gold_schema}.{v}" for v in cfg.views],
    }


def close_batch(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    landing: Landing,
    batch_id: str,
    failed_tasks: list[str],
) -> str:
    """Record the batch's final status and move its files and manifest accordingly."""

    status = "FAILED" if failed_tasks else "SUCCESS"
    message = f"failed tasks: {', '.join(failed_tasks)}" if failed_tasks else None
    audit_rows = {
        logical: (convert, load, loaded, rejected)
        for logical, convert, load, loaded, rejected in conn.execute(
            """SELECT logical_source_file, convert_status, load_status, loaded_rows, rejected_rows
               FROM tools.file_audit_log WHERE client_schema = %s AND batch_id = %s""",
            (cfg.client, batch_id),
        )
    }
    path = landing.locate_manifest(cfg.client, batch_id)
    if path is None:
        raise BatchError(f"{cfg.client} {batch_id}: manifest not found under {landing.root}")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        convert, load, loaded, rejected = audit_rows.get(entry["logical_source_file"], (None,) * 4)
        entry.update(convert_status=convert, load_status=load, loaded_rows=loaded, rejected_rows=rejected)
        physical = entry["physical_file_name"]
        if status == "SUCCESS" and physical:
            raw = landing.locate_raw(cfg.client, entry["source_system"], physical)
            if raw is not None and raw.parent.name in ("incoming", "success"):
                move(raw, landing.raw(cfg.client, entry["source_system"], "archive"))
    manifest.update(status=status, message=message, closed_at=datetime.now(UTC).isoformat(timespec="seconds"))
    write_json_atomic(path, manifest)
    final = move(path, landing.batch_info(cfg.client, "success" if status == "SUCCESS" else "failed"))
    conn.execute(
        """UPDATE tools.batch SET status = %s, message = %s, ended_at = now(), manifest_path = %s
           WHERE client_schema = %s AND batch_id = %s""",
        (status, message, str(final), cfg.client, batch_id),
    )
    log.info("closed %s %s as %s (manifest %s)", cfg.client, batch_id, status, final)
    return status
