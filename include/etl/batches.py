"""Batches: allocate the id, claim the files, write the manifest; and close them.

A DAG run owns exactly one batch (``tools.batch_run``). Opening happens in one
transaction under the client's advisory lock: every check, the claim (a rename per
file), the manifest and the audit rows, so two runs never split a delivery and a
refused run changes nothing. Re-running it for the same DAG run returns the same batch
and the files it claimed then, wherever they are now; it never claims new files.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal, overload

import psycopg

from include.etl.config import RUN_MODES, ClientConfig, SourceFile
from include.etl.ingest.landing import (
    RAW_STATES,
    Landing,
    claimed_batch,
    claimed_name,
    delivery_date,
    is_remote,
    listing,
    manifest_name,
    move,
    parquet_name,
    ready_marker_of,
    safe_child,
    same_object,
    unclaimed_name,
    write_json_atomic,
)
from include.etl.warehouse import audit
from include.etl.warehouse.connection import one_row

log = logging.getLogger(__name__)

BATCH_ID = re.compile(r"^BATCH\d{6}$")


class BatchError(ValueError):
    """The batch cannot be opened or closed as asked; the message says why."""


@dataclass(frozen=True)
class Batch:
    """An opened batch: its id, mode, manifest and the file claimed for each logical file."""

    client: str
    batch_id: str
    manifest_path: str
    files: dict[str, str | None]  # logical name -> claimed physical file name (None: absent)
    mode: str = "start"

    def as_xcom(self) -> dict:
        """The batch as ``open_batch`` returns it through XCom (plain JSON)."""
        return {
            "client": self.client,
            "batch_id": self.batch_id,
            "mode": self.mode,
            "manifest_path": self.manifest_path,
            "files": self.files,
        }


def format_batch_id(number: int) -> str:
    """``BATCH`` and six digits: ids compare correctly as text, up to 999,999 per client."""
    if not 0 < number <= 999_999:
        raise BatchError(f"batch number {number} is out of range (1 to 999999)")
    return f"BATCH{number:06d}"


def _lock_client(conn: psycopg.Connection, client: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('medallion-etl:batch:' || %s))", (client,))


def open_batch(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    landing: Landing,
    dag_run_id: str,
    mode: str = "start",
    batch_id: str | None = None,
    run_is_active: Callable[[str], bool] = lambda run_id: True,
    day: date | None = None,
    settle_seconds: float = 0,
) -> Batch:
    """The batch of this DAG run, opened as ``mode`` says.

    - ``start``: a new batch id; claims the new files in incoming (with ``day``, a
      backfill's day: only the files stamped with that day, see ``delivery_date``).
    - ``restart``: an existing batch (``batch_id``, default the latest failed one) runs
      again from its claimed raw files, wherever they are; a fixed file put back into
      incoming under its claimed name (``cust_info_BATCH000003.csv``) wins.
    - ``reprocessing``: an existing batch runs again from its Parquet; no raw file is read.

    A new batch claims only complete deliveries: unchanged for ``settle_seconds``, or
    with their ready marker (see ``landing.still_arriving``); the marker is removed.
    A DAG run that already owns a batch gets it back, whatever it asks for. While
    another DAG run of the client holds the lease and ``run_is_active`` says it is
    still active, the client is busy and this run is refused.
    """
    if mode not in RUN_MODES:
        raise BatchError(f"unknown run mode {mode!r}: use one of {', '.join(RUN_MODES)}")
    if batch_id is not None and not BATCH_ID.match(batch_id):
        raise BatchError(f"{batch_id!r} is not a batch id (BATCH and six digits, e.g. BATCH000012)")
    if mode == "start" and batch_id is not None:
        raise BatchError(
            f"mode start opens a new batch: leave batch_id empty, or use restart or "
            f"reprocessing to run {batch_id} again"
        )
    if day is not None and mode != "start":
        raise BatchError(
            f"a backfill run takes the deliveries of its day: mode {mode} is for a manual trigger"
        )
    landing.ensure(cfg)
    with conn.transaction():
        _lock_client(conn, cfg.client)
        _check_lease(conn, cfg.client, dag_run_id, run_is_active)
        owned = conn.execute(
            "SELECT batch_id, mode FROM tools.batch_run WHERE client_schema = %s AND dag_run_id = %s",
            (cfg.client, dag_run_id),
        ).fetchone()  # not batch_of_run: the mode matters too
        if owned:
            batch_id, mode = owned
            log.info("DAG run %s already owns %s (%s): reusing it", dag_run_id, batch_id, mode)
            files = _batch_files(conn, cfg, landing, batch_id, mode)
        elif mode == "start":
            batch_id = _allocate(conn, cfg, day)  # given out again if this open fails
            cut = {
                f.name: _interrupted_claim(landing.raw(cfg.client, system.name, "incoming"), f, batch_id, day)
                for system, f in cfg.files
            }
            missing = [
                m for m in landing.missing_required(cfg, day, settle_seconds) if not cut[m.partition("/")[2]]
            ]
            if missing:
                stamped = f" stamped {day:%Y%m%d}" if day else ""
                arriving = landing.incomplete(cfg, settle_seconds, day)
                raise BatchError(
                    f"{cfg.client}: required file(s){stamped} missing in incoming: {', '.join(missing)}"
                    + (f" ({'; '.join(arriving)})" if arriving else "")
                )
            files = {
                f.name: cut[f.name] or _claim(cfg, landing, system.name, f, batch_id, day, settle_seconds)
                for system, f in cfg.files
            }
        else:
            batch_id = _existing_batch(conn, cfg, mode, batch_id)
            files = _batch_files(conn, cfg, landing, batch_id, mode)
        missing = [f.name for _, f in cfg.files if f.required and files[f.name] is None]
        if missing:
            raise BatchError(f"{cfg.client} {batch_id}: required file(s) not found: {', '.join(missing)}")

        _reopen(conn, cfg, mode, batch_id)
        conn.execute(
            """INSERT INTO tools.client_lease (client_schema, dag_run_id, batch_id) VALUES (%s, %s, %s)
               ON CONFLICT (client_schema) DO UPDATE SET dag_run_id = EXCLUDED.dag_run_id,
                   batch_id = EXCLUDED.batch_id, acquired_at = now()""",
            (cfg.client, dag_run_id, batch_id),
        )
        if not owned:
            conn.execute(
                """INSERT INTO tools.batch_run (client_schema, dag_run_id, batch_id, mode)
                   VALUES (%s, %s, %s, %s)""",
                (cfg.client, dag_run_id, batch_id, mode),
            )
            log.info("%s %s for %s (DAG run %s)", mode, batch_id, cfg.client, dag_run_id)
        path = _write_manifest(landing, _manifest(conn, cfg, batch_id, dag_run_id, mode, files))
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
    return Batch(cfg.client, batch_id, str(path), files, mode)


def _busy_with(
    conn: psycopg.Connection, client: str, dag_run_id: str, run_is_active: Callable[[str], bool]
) -> str | None:
    """What another, still active DAG run holding the client's lease is doing, else None
    (a lease whose run is no longer active is free to take over)."""
    held = conn.execute(
        "SELECT dag_run_id, batch_id FROM tools.client_lease WHERE client_schema = %s", (client,)
    ).fetchone()
    if held is None or held[0] == dag_run_id:
        return None
    holder, held_batch = held
    if run_is_active(holder):
        return f"DAG run {holder} is still working on {held_batch or 'its files (batch not open yet)'}"
    log.warning("taking over %s's lease from DAG run %s, which is no longer active", client, holder)
    return None


def _check_lease(
    conn: psycopg.Connection, client: str, dag_run_id: str, run_is_active: Callable[[str], bool]
) -> None:
    busy = _busy_with(conn, client, dag_run_id, run_is_active)
    if busy:
        raise BatchError(
            f"{client} is busy: {busy}; this run stops here, trigger it again once that run has finished"
        )


def reserve_client(
    conn: psycopg.Connection, client: str, dag_run_id: str, run_is_active: Callable[[str], bool]
) -> str | None:
    """Take the client's lease for this DAG run before it opens its batch (what the
    sensor does once the files are there), so runs that start together queue up instead
    of failing. Returns None when this run holds the lease, else why it must wait."""
    with conn.transaction():
        _lock_client(conn, client)
        busy = _busy_with(conn, client, dag_run_id, run_is_active)
        if busy:
            return f"{client} is busy: {busy}"
        conn.execute(
            """INSERT INTO tools.client_lease (client_schema, dag_run_id, batch_id) VALUES (%s, %s, NULL)
               ON CONFLICT (client_schema) DO UPDATE SET dag_run_id = EXCLUDED.dag_run_id,
                   batch_id = NULL, acquired_at = now()
               WHERE tools.client_lease.dag_run_id <> EXCLUDED.dag_run_id""",
            (client, dag_run_id),
        )
    return None


def release_client(conn: psycopg.Connection, client: str, dag_run_id: str | None) -> None:
    """Give the client's lease back (a run without an id releases whatever holds it)."""
    conn.execute(
        "DELETE FROM tools.client_lease WHERE client_schema = %s AND (dag_run_id = %s OR %s::text IS NULL)",
        (client, dag_run_id, dag_run_id),
    )


def batch_of_run(conn: psycopg.Connection, client: str, dag_run_id: str) -> str | None:
    """The batch a DAG run owns, if it opened one."""
    row = conn.execute(
        "SELECT batch_id FROM tools.batch_run WHERE client_schema = %s AND dag_run_id = %s",
        (client, dag_run_id),
    ).fetchone()
    return row[0] if row else None


def _allocate(conn: psycopg.Connection, cfg: ClientConfig, day: date | None = None) -> str:
    (number,) = one_row(
        conn.execute(
            """UPDATE tools.client_reference SET last_batch_id = last_batch_id + 1
           WHERE client_schema = %s RETURNING last_batch_id""",
            (cfg.client,),
        )
    )
    batch_id = format_batch_id(number)
    conn.execute(
        """INSERT INTO tools.batch (client_schema, batch_id, mode, config_version, delivery_date)
           VALUES (%s, %s, 'start', %s, %s)""",
        (cfg.client, batch_id, cfg.config_version, day),
    )
    return batch_id


def _batch_files(
    conn: psycopg.Connection, cfg: ClientConfig, landing: Landing, batch_id: str, mode: str
) -> dict[str, str | None]:
    """The files an existing batch runs on: its Parquet, or the raw files it claimed."""
    if mode == "reprocessing":
        return _files_with_parquet(conn, cfg, landing, batch_id)
    return {f.name: _already_claimed(cfg, landing, system.name, f, batch_id) for system, f in cfg.files}


def _write_manifest(landing: Landing, manifest: dict) -> Path:
    """Write the (running) batch's manifest into batch_info/incoming, wherever it was."""
    client, batch_id = manifest["client_schema"], manifest["batch_id"]
    earlier = landing.locate_manifest(client, batch_id)
    path = landing.batch_info(client, "incoming") / manifest_name(client, batch_id)
    write_json_atomic(path, manifest)
    if earlier is not None and earlier != path:
        earlier.unlink()
    return path


def _existing_batch(conn: psycopg.Connection, cfg: ClientConfig, mode: str, batch_id: str | None) -> str:
    """The batch to run again: the one asked for, or the client's latest failed batch."""
    verb = {"restart": "restart", "reprocessing": "reprocess"}[mode]
    if batch_id is None:
        row = conn.execute(
            """SELECT batch_id FROM tools.batch WHERE client_schema = %s AND status IN ('FAILED', 'PARTIAL')
               ORDER BY batch_id DESC LIMIT 1""",
            (cfg.client,),
        ).fetchone()
        if row is None:
            raise BatchError(f"{cfg.client}: no failed batch to {verb}; give the batch_id to {verb}")
        return row[0]
    if not conn.execute(
        "SELECT 1 FROM tools.batch WHERE client_schema = %s AND batch_id = %s", (cfg.client, batch_id)
    ).fetchone():
        raise BatchError(f"{batch_id} is not a batch of {cfg.client}")
    return batch_id


def _reopen(conn: psycopg.Connection, cfg: ClientConfig, mode: str, batch_id: str) -> None:
    conn.execute(
        """UPDATE tools.batch SET status = 'RUNNING', mode = %s, message = NULL, ended_at = NULL,
               config_version = %s
           WHERE client_schema = %s AND batch_id = %s""",
        (mode, cfg.config_version, cfg.client, batch_id),
    )


def _files_with_parquet(
    conn: psycopg.Connection, cfg: ClientConfig, landing: Landing, batch_id: str
) -> dict[str, str | None]:
    """The batch's files for reprocessing: each delivered file must still have its Parquet."""
    delivered: dict[str, str | None] = dict(
        conn.execute(
            """SELECT logical_source_file, physical_file_name FROM tools.file_audit_log
               WHERE client_schema = %s AND batch_id = %s""",
            (cfg.client, batch_id),
        ).fetchall()
    )
    files, without = {}, []
    for system, f in cfg.files:
        physical = delivered.get(f.name)
        files[f.name] = physical
        if physical is None:
            has_parquet = not f.required  # an optional file that was not delivered is fine
        else:
            has_parquet = landing.locate_parquet(cfg.client, system.name, parquet_name(physical)) is not None
        if not has_parquet:
            without.append(f.name)
    if without:
        raise BatchError(
            f"cannot reprocess {cfg.client} {batch_id}: no Parquet for {', '.join(without)}; "
            "restart the batch to convert its files again"
        )
    return files


def _claim(
    cfg: ClientConfig,
    landing: Landing,
    system: str,
    f: SourceFile,
    batch_id: str,
    day: date | None,
    settle_seconds: float = 0,
) -> str | None:
    """Claim the first complete unclaimed delivery of a logical file (stamped ``day``, if
    given); its ready marker, if it has one, is removed once the file is claimed. A
    database source's file is the one its extract will write for the batch."""
    if f.is_database:
        return claimed_name(f"{f.name}.csv", batch_id)
    candidates = landing.unclaimed(cfg, system, f, day, settle_seconds)
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
    marker = ready_marker_of(chosen, f)
    if marker is not None:
        marker.unlink(missing_ok=True)  # it said the file was complete: its work is done
    log.info("claimed %s as %s", chosen.name, target.name)
    return target.name


def _interrupted_claim(incoming: Path, f: SourceFile, batch_id: str, day: date | None) -> str | None:
    """A file of ``f`` already claimed under ``batch_id`` while that number is being
    allocated: an earlier open of this batch claimed it and died before its transaction
    committed (the number is given out again). It is this batch's file. On object storage
    the claim is a copy then a delete: an original still beside it with the same content
    (ETag) is the delete that did not happen, done now; with other content it is a new
    delivery under the same name, left for the next batch."""
    if f.is_database:
        return None
    for path in listing(incoming):
        name = unclaimed_name(path.name)
        if claimed_batch(path.name) != batch_id or not f.matches(name):
            continue
        if day is not None and delivery_date(name) != day:
            continue
        original = incoming / name
        if is_remote(original) and original.is_file() and same_object(original, path):
            original.unlink()
        log.info("%s was claimed for %s by an open that did not finish: taken", path.name, batch_id)
        return path.name
    return None


def _already_claimed(cfg: ClientConfig, landing: Landing, system: str, f, batch_id: str) -> str | None:
    """The file this batch claimed for ``f`` earlier, in whichever raw folder it is now
    (a database source's: the one its extract writes, again on a restart)."""
    if f.is_database:
        return claimed_name(f"{f.name}.csv", batch_id)
    for state in RAW_STATES:
        for path in listing(landing.raw(cfg.client, system, state)):
            if claimed_batch(path.name) == batch_id and f.matches(unclaimed_name(path.name)):
                return path.name
    return None


def _manifest(
    conn: psycopg.Connection, cfg: ClientConfig, batch_id: str, dag_run_id: str, mode: str, files: dict
) -> dict:
    (day,) = one_row(
        conn.execute(
            "SELECT delivery_date FROM tools.batch WHERE client_schema = %s AND batch_id = %s",
            (cfg.client, batch_id),
        )
    )
    return {
        "client_schema": cfg.client,
        "batch_id": batch_id,
        "dag_run_id": dag_run_id,
        "mode": mode,
        "delivery_date": day.isoformat() if day else None,  # set for a backfill's batch
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
        "refresh_views": [f"{cfg.gold_schema}.{v.name}" for v in cfg.views],
    }


def batch_outcome(
    cfg: ClientConfig, failed_tasks: list[str], errors: dict[str, str | None]
) -> tuple[str, str | None]:
    """(status, message) of a batch from the tasks that failed.

    - ``SUCCESS``: no task failed.
    - ``PARTIAL``: only tasks of optional files failed (each such file failed alone, on
      the failed side); every other file and every SQL step completed.
    - ``FAILED``: anything else: a required file failed, or a SQL step, or the batch
      could not be opened.
    ``errors`` maps logical files to their audit error message, quoted for PARTIAL.
    """
    if not failed_tasks:
        return "SUCCESS", None
    files = {f.name: f for _, f in cfg.files}
    failed_files = sorted({t.split(".", 1)[0] for t in failed_tasks if t.split(".", 1)[0] in files})
    others = [t for t in failed_tasks if t.split(".", 1)[0] not in files]
    tasks = f"failed tasks: {', '.join(failed_tasks)}"
    if failed_files and not others and not any(files[n].required for n in failed_files):
        reasons = "; ".join(f"{n}: {errors.get(n) or 'see its tasks'}" for n in failed_files)
        return "PARTIAL", f"optional file(s) failed, the rest of the batch loaded: {reasons}; {tasks}"
    return "FAILED", tasks


@overload
def close_batch(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    landing: Landing,
    batch_id: str,
    failed_tasks: list[str],
    dag_run_id: str | None = None,
    with_message: Literal[False] = False,
) -> str: ...


@overload
def close_batch(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    landing: Landing,
    batch_id: str,
    failed_tasks: list[str],
    dag_run_id: str | None = None,
    *,
    with_message: Literal[True],
) -> tuple[str, str | None]: ...


def close_batch(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    landing: Landing,
    batch_id: str,
    failed_tasks: list[str],
    dag_run_id: str | None = None,
    with_message: bool = False,
) -> str | tuple[str, str | None]:
    """Record the batch's final status and move its files and manifest accordingly.

    SUCCESS archives every raw file of the batch; PARTIAL archives the files that loaded
    and leaves the failed ones in ``failed``; FAILED moves nothing, so the batch can be
    restarted. The manifest goes to ``success`` or (PARTIAL, FAILED) to ``failed``.
    Returns the status (and its message with ``with_message``).
    """
    audit_rows = {
        logical: (convert, load, loaded, rejected, error)
        for logical, convert, load, loaded, rejected, error in conn.execute(
            """SELECT logical_source_file, convert_status, load_status, loaded_rows, rejected_rows,
                      error_message
               FROM tools.file_audit_log WHERE client_schema = %s AND batch_id = %s""",
            (cfg.client, batch_id),
        )
    }
    status, message = batch_outcome(cfg, failed_tasks, {k: v[4] for k, v in audit_rows.items()})
    windows = {  # what each database source of the batch extracted
        logical: {
            "full_load": full_load,
            "after": lower.isoformat() if lower else None,
            "after_key": lower_key,
            "up_to": upper.isoformat() if upper else None,
            "rows": rows,
        }
        for logical, full_load, lower, lower_key, upper, rows in conn.execute(
            """SELECT logical_source_file, full_load, lower_watermark, lower_key, upper_watermark,
                      extracted_rows
               FROM tools.extract_window WHERE client_schema = %s AND batch_id = %s""",
            (cfg.client, batch_id),
        )
    }
    path = landing.locate_manifest(cfg.client, batch_id)
    if path is None:
        raise BatchError(f"{cfg.client} {batch_id}: manifest not found under {landing.root}")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        convert, load, loaded, rejected, _ = audit_rows.get(entry["logical_source_file"], (None,) * 5)
        entry.update(convert_status=convert, load_status=load, loaded_rows=loaded, rejected_rows=rejected)
        if entry["logical_source_file"] in windows:
            entry["extract_window"] = windows[entry["logical_source_file"]]
        physical = entry["physical_file_name"]
        if entry.get("parquet_name"):  # typed rows a load did not use (it failed, or never ran)
            landing.drop_typed(cfg.client, entry["source_system"], entry["parquet_name"])
        archive = status == "SUCCESS" or (status == "PARTIAL" and load == "SUCCESS")
        if archive and physical:
            raw = landing.locate_raw(cfg.client, entry["source_system"], physical)
            if raw is not None and raw.parent.name in ("incoming", "success", "failed"):
                move(raw, landing.raw(cfg.client, entry["source_system"], "archive"))
    manifest.update(status=status, message=message, closed_at=datetime.now(UTC).isoformat(timespec="seconds"))
    write_json_atomic(path, manifest)
    final = move(path, landing.batch_info(cfg.client, "success" if status == "SUCCESS" else "failed"))
    conn.execute(
        """UPDATE tools.batch SET status = %s, message = %s, ended_at = now(), manifest_path = %s
           WHERE client_schema = %s AND batch_id = %s""",
        (status, message, str(final), cfg.client, batch_id),
    )
    conn.execute(
        """UPDATE tools.batch_run SET status = %s, message = %s, ended_at = now()
           WHERE client_schema = %s AND dag_run_id = %s""",
        (status, message, cfg.client, dag_run_id),
    )
    release_client(conn, cfg.client, dag_run_id)  # the client is free again
    log.info("closed %s %s as %s (manifest %s)", cfg.client, batch_id, status, final)
    return (status, message) if with_message else status
