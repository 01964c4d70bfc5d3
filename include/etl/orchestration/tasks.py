"""What each Python task of a client batch does, as plain functions of (client, batch, ...).

``operators`` wraps each in an Airflow task; tests call them directly, with no
scheduler. Every step records its attempt in ``tools.job_execution_log`` and its
outcome in the file audit and the validation logs. A deterministic failure (bad file,
bad mapping, too many bad rows) raises ``FailFast``, which ``operators`` turns into a
failure without retries; ``Skip`` (an optional file that did not arrive) a skip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from include.etl import batches
from include.etl.config import ClientConfig, config_for
from include.etl.ingest.bronze import TypedFile
from include.etl.ingest.bronze import load_bronze as copy_into_bronze
from include.etl.ingest.convert import ConvertError, convert_to_parquet, file_sha256
from include.etl.ingest.extract import ExtractError, plan_window
from include.etl.ingest.extract import extract as extract_window
from include.etl.ingest.landing import (
    RAW_STATES,
    Landing,
    UnsafePathError,
    local_copy,
    local_output,
    move,
    parquet_name,
)
from include.etl.ingest.validation import check_mapping
from include.etl.ingest.validation import validate_rows as check_rows
from include.etl.orchestration import metrics
from include.etl.orchestration.connections import landing as landing_store
from include.etl.orchestration.connections import warehouse
from include.etl.warehouse import audit, health, watermarks
from include.etl.warehouse.migrations import MigrationError, migrate

log = logging.getLogger(__name__)


class FailFast(RuntimeError):
    """Retrying cannot help: the input or the config must be fixed first."""


class Skip(RuntimeError):
    """Nothing to do for this task (an optional file that did not arrive)."""

    is_skip = True  # audit.job logs the attempt as SKIPPED


@dataclass(frozen=True)
class RunContext:
    """Who is running: the DAG run and the task attempt, for the audit rows; how to ask
    Airflow whether another DAG run of the client is still active; and, for a backfill
    run, the day it backfills."""

    dag_run_id: str
    task_id: str
    try_number: int = 1
    run_is_active: Callable[[str], bool] = lambda run_id: True
    backfill_day: date | None = None


def files_ready(client: str, mode: str, run: RunContext) -> str | None:
    """Whether this run can open its batch now: None when it can (the client is then
    reserved for it), else what it waits for.

    A live ``start`` run waits for every required file in incoming. A backfill run takes
    the deliveries stamped with its day: with none, there is nothing to backfill and the
    run is skipped (Skip); with only part of them, it fails (FailFast) rather than wait
    for a past day. Runs on an existing batch (restart, reprocessing, a cleared run that
    already opened its batch) need no new files. All of them wait while another active
    run of the client holds it.
    """
    cfg, landing = config_for(client), landing_store()
    if run.backfill_day is not None and mode != "start":
        raise FailFast(
            f"{client}: a backfill run takes the deliveries of its day; mode {mode} is for a manual trigger"
        )
    with warehouse() as conn:
        conn.autocommit = True
        if mode == "start" and not _owns_a_batch(conn, client, run.dag_run_id):
            waiting = _delivery_missing(cfg, landing, run.backfill_day)
            if waiting:
                return waiting  # only files looked at: no database work while waiting
        try:  # the lease needs the tools schema and the client's row
            migrate(conn, [cfg])
        except MigrationError as exc:
            raise FailFast(str(exc)) from exc
        return batches.reserve_client(conn, client, run.dag_run_id, run.run_is_active)


def needs_delivery(client: str, mode: str, run: RunContext) -> bool:
    """Whether this run claims new files (a ``start`` run that has no batch yet)."""
    if mode != "start":
        return False
    with warehouse() as conn:
        return not _owns_a_batch(conn, client, run.dag_run_id)


def delivery_waiting(client: str | ClientConfig, day: date | None = None) -> str | None:
    """What a run claiming new files (of ``day``, for a backfill run) still waits for,
    from the folders alone; None when the delivery is there. What the deferred sensor's
    trigger looks at in the triggerer (with the config it read once)."""
    cfg = config_for(client) if isinstance(client, str) else client
    return _delivery_missing(cfg, landing_store(), day)


def delivery_seen(cfg: ClientConfig) -> tuple[str | None, tuple[str, ...]]:
    """What the delivery watcher sees in the incoming folders: what a run would still
    wait for (None when the delivery is complete) and, when complete, its files as
    ``system/name size mtime`` (the same names delivered again are a new delivery)."""
    landing = landing_store()
    waiting = _delivery_missing(cfg, landing, None)
    if waiting is not None:
        return waiting, ()
    seen = []
    for system, f in cfg.files:
        if f.is_database:
            continue
        for path in landing.unclaimed(cfg, system.name, f, None, cfg.sensor.settle_seconds):
            stat = path.stat()
            seen.append(f"{system.name}/{path.name} {stat.st_size} {stat.st_mtime:.3f}")
    return None, tuple(sorted(seen))


def _owns_a_batch(conn, client: str, dag_run_id: str) -> bool:
    """A cleared run that already opened its batch needs no new files."""
    if not conn.execute("SELECT to_regclass('tools.batch_run') IS NOT NULL").fetchone()[0]:
        return False  # a warehouse not migrated yet has no batch at all
    return batches.batch_of_run(conn, client, dag_run_id) is not None


def _delivery_missing(cfg: ClientConfig, landing: Landing, day: date | None) -> str | None:
    """What a run claiming new files still waits for; None when its delivery is there.
    A file still being written (or without its ready marker) is not there yet."""
    settle = cfg.sensor.settle_seconds
    arriving = landing.incomplete(cfg, settle, day)
    if day is None:
        missing = landing.missing_required(cfg, settle_seconds=settle)
        waiting = [", ".join(missing)] if missing else []
        waiting += arriving
        return f"still waiting for: {'; '.join(waiting)}" if waiting else None
    stamp = f"{day:%Y%m%d}"
    if not landing.delivered_on(cfg, day):
        raise Skip(f"{cfg.client}: nothing delivered for {day} (no file stamped {stamp} in incoming)")
    missing = landing.missing_required(cfg, day)  # a past day's file, complete or not
    if arriving:
        return f"the delivery of {day} is still arriving: {'; '.join(arriving)}"
    if missing:
        raise FailFast(
            f"{cfg.client}: the delivery of {day} is incomplete: no {', '.join(missing)} stamped "
            f"{stamp} in incoming; put it there and clear wait_for_files"
        )
    return None


def open_batch(
    client: str, mode: str, batch_id: str | None, run: RunContext, full_load: bool = False
) -> dict:
    """Open (or find again) the run's batch: migrations and config sync first, then the batch
    id, the claimed files and the manifest. Returns the batch for XCom (``Batch.as_xcom``),
    with ``full_load`` (database sources: ignore the mark) as the run asked.
    """
    cfg, landing = config_for(client), landing_store()
    with warehouse() as conn:
        conn.autocommit = True
        try:  # first: the job log itself lives in the tools schema
            migrate(conn, [cfg])
        except MigrationError as exc:
            raise FailFast(str(exc)) from exc
        with audit.job(conn, client, None, run.dag_run_id, run.task_id, run.try_number) as job:
            ignored = landing.unrecognised(cfg)
            if ignored:
                log.warning("left in incoming, no batch will claim them: %s", "; ".join(ignored))
            not_claimed = f"; left in incoming: {'; '.join(ignored)}" if ignored else ""
            try:
                opened = batches.open_batch(
                    conn,
                    cfg,
                    landing,
                    run.dag_run_id,
                    mode,
                    batch_id,
                    run.run_is_active,
                    run.backfill_day,
                    settle_seconds=cfg.sensor.settle_seconds,
                )
            except (batches.BatchError, UnsafePathError) as exc:
                raise FailFast(f"{exc}{not_claimed}") from exc
            job.batch_id = opened.batch_id
            job.message = (
                f"{opened.mode} {opened.batch_id}: "
                + ", ".join(f"{k}={v or 'absent'}" for k, v in opened.files.items())
                + not_claimed
            )
    return opened.as_xcom() | {"full_load": full_load}


def _file(cfg: ClientConfig, batch: dict, logical: str):
    system, spec = cfg.file(logical)
    return system.name, spec, batch["files"].get(logical)


def extract(client: str, logical: str, batch: dict, run: RunContext) -> str:
    """A database source: the batch's window of rows -> its raw CSV file in incoming, which
    ``convert`` then reads as any delivery. Returns the file's name.

    The window is fixed at the batch's first extract; a cleared task or a restart reads
    it again, a reprocessing run reuses the batch's Parquet and reads nothing."""
    cfg, landing = config_for(client), landing_store()
    system, spec, physical = _file(cfg, batch, logical)
    db, batch_id = spec.database, batch["batch_id"]
    assert db is not None and physical is not None
    with warehouse() as conn:
        conn.autocommit = True
        with audit.job(conn, client, batch_id, run.dag_run_id, run.task_id, run.try_number) as job:
            if batch.get("mode") == "reprocessing":
                job.message = f"reprocessing: the Parquet of {physical} is used again; nothing extracted"
                return physical
            window = watermarks.window_of(conn, client, batch_id, logical)
            with _source(db.conn_id) as src:
                if window is None:
                    mark = watermarks.mark(conn, client, logical)
                    full_load = bool(batch.get("full_load")) or watermarks.full_load_due(
                        conn, client, logical, db.full_load_interval
                    )
                    try:
                        window = plan_window(src, cfg, spec, mark, full_load=full_load)
                    except ExtractError as exc:
                        raise FailFast(str(exc)) from exc
                    watermarks.fix_window(conn, client, batch_id, logical, window)
                for state in RAW_STATES:  # an earlier extract of the window, wherever it went
                    (landing.raw(client, system, state) / physical).unlink(missing_ok=True)
                try:
                    with local_output(landing.raw(client, system, "incoming") / physical) as out:
                        done = extract_window(src, cfg, spec, window, out)
                except ExtractError as exc:
                    raise FailFast(str(exc)) from exc
            watermarks.record_extract(conn, client, batch_id, logical, done)
            job.rows = done.rows
            if done.rows:
                job.message = f"{done.rows:,} rows, {window.describe()}"
            else:
                empty = watermarks.empty_windows_in_a_row(conn, client, logical)
                if db.max_empty_runs is not None and empty >= db.max_empty_runs:
                    raise FailFast(
                        f"{logical}: {empty} extracts in a row took no row from {db.conn_id} "
                        f"({db.table or db.query}): is the source still written to?"
                    )
                job.message = f"no new row ({window.describe()}); {empty} empty extract(s) in a row"
                log.warning("%s: %s", logical, job.message)
    return physical


def _source(conn_id: str):
    """A connection to a database source; unreachable, an error naming the connection id
    (retried by Airflow), never its password."""
    import psycopg

    from include.etl.orchestration.connections import conninfo

    try:
        return psycopg.connect(conninfo(conn_id), autocommit=True)
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        info = psycopg.conninfo.conninfo_to_dict(conninfo(conn_id))
        if info.get("password"):
            reason = reason.replace(str(info["password"]), "***")
        raise RuntimeError(f"source connection {conn_id!r} unreachable: {reason}") from None


def convert(client: str, logical: str, batch: dict, run: RunContext) -> str:
    """Raw file -> Parquet in data/.../incoming; returns the Parquet file name."""
    cfg, landing = config_for(client), landing_store()
    system, spec, physical = _file(cfg, batch, logical)
    batch_id = batch["batch_id"]
    with warehouse() as conn:
        conn.autocommit = True
        with audit.job(conn, client, batch_id, run.dag_run_id, run.task_id, run.try_number) as job:
            if physical is None:
                audit.file_audit(conn, client, batch_id, logical, convert_status="SKIPPED")
                raise Skip(f"{logical} is optional and was not delivered in {batch_id}")
            if batch.get("mode") == "reprocessing":
                existing = _parquet(landing, client, system, parquet_name(physical))
                audit.file_audit(conn, client, batch_id, logical, convert_status="REUSED")
                job.message = f"reprocessing: reusing {existing}"
                return existing.name
            try:
                src = landing.locate_raw(client, system, physical)
            except UnsafePathError as exc:
                audit.file_audit(
                    conn, client, batch_id, logical, convert_status="FAILED", error_message=str(exc)
                )
                audit.load_error(conn, client, batch_id, logical, "convert", None, str(exc))
                raise FailFast(str(exc)) from exc
            if src is None:
                raise FailFast(f"{physical}: claimed by {batch_id} but found in no raw folder")
            target = landing.data(client, system, "incoming") / parquet_name(physical)
            with local_copy(src) as delivered:
                try:
                    with local_output(target) as out:
                        result = convert_to_parquet(delivered, out, spec)  # hashes the file as it reads it
                except ConvertError as exc:
                    _record_sha256(conn, job, client, batch_id, logical, physical, file_sha256(delivered))
                    move(src, landing.raw(client, system, "failed"))
                    audit.file_audit(
                        conn, client, batch_id, logical, convert_status="FAILED", error_message=str(exc)
                    )
                    audit.load_error(conn, client, batch_id, logical, "convert", None, str(exc))
                    raise FailFast(str(exc)) from exc
            _record_sha256(conn, job, client, batch_id, logical, physical, result.sha256)
            if src.parent.name in ("incoming", "failed"):  # an archived file stays archived
                move(src, landing.raw(client, system, "success"))
            audit.file_audit(
                conn,
                client,
                batch_id,
                logical,
                convert_status="SUCCESS",
                total_rows=result.rows,
                parquet_name=target.name,
                error_message=None,
            )
            job.rows = result.rows
    return target.name


def _record_sha256(
    conn, job: audit.Job, client: str, batch_id: str, logical: str, physical: str, sha256: str
) -> None:
    """The file's sha256 in its audit row; a file already loaded by another batch is said out loud."""
    audit.file_audit(conn, client, batch_id, logical, file_sha256=sha256)
    earlier = audit.same_content_loaded(conn, client, batch_id, logical, sha256)
    if earlier:  # a re-sent file: loaded again as this batch's, said out loud
        job.message = (
            f"{physical}: the same content as {earlier[1]}, already loaded by {earlier[0]} "
            f"(sha256 {sha256[:12]}): loaded again for {batch_id}; keyed gold rows are not duplicated"
        )
        log.warning("%s", job.message)


def _fail_file(landing: Landing, client: str, system: str, physical: str | None, parquet) -> None:
    """A file that failed validation goes to the failed side: its Parquet and its raw file
    (its typed rows, if any, are dropped)."""
    landing.drop_typed(client, system, parquet.name)
    move(parquet, landing.data(client, system, "failed"))
    raw = landing.locate_raw(client, system, physical) if physical else None
    if raw is not None and raw.parent.name in ("incoming", "success"):
        move(raw, landing.raw(client, system, "failed"))


def _parquet(landing: Landing, client: str, system: str, name: str):
    path = landing.locate_parquet(client, system, name)
    if path is None:
        raise FailFast(f"{name}: Parquet not found in data/{client}/{system}; clear the convert task")
    return path


def validate_mapping(client: str, logical: str, batch: dict, parquet: str, run: RunContext) -> str:
    """The file's columns against the registered schema, under the file's drift policy.

    A missing or retyped column fails the file; an added column fails it under
    ``schema_drift: fail`` and is logged and ignored under ``accept_additive``. Any drift
    is recorded in tools.schema_drift_log with the schema version it was checked against.
    """
    cfg, landing = config_for(client), landing_store()
    system, spec, physical = _file(cfg, batch, logical)
    batch_id = batch["batch_id"]
    with warehouse() as conn:
        conn.autocommit = True
        with audit.job(conn, client, batch_id, run.dag_run_id, run.task_id, run.try_number) as job:
            path = _parquet(landing, client, system, parquet)
            with local_copy(path) as converted:
                result = check_mapping(converted, spec)
            policy = cfg.drift_policy(spec)
            version = audit.schema_version(conn, client, logical)
            problems = []
            if result.missing:
                problems.append(f"column(s) missing from the file: {', '.join(result.missing)}")
            if result.retyped:
                problems.append("column(s) retyped: " + "; ".join(r.describe() for r in result.retyped))
            if result.extra and policy == "fail":
                problems.append(f"column(s) added: {', '.join(result.extra)} (schema_drift: fail)")
            elif result.extra and problems:
                problems[-1] += f" (file has unmapped: {', '.join(result.extra)})"
            renamed = (
                "header(s) matched ignoring case and spaces: "
                + ", ".join(f"{old!r} as {new!r}" for old, new in result.renamed.items())
                if result.renamed
                else None
            )
            if renamed:
                log.warning("%s: %s", parquet, renamed)
            if problems:
                message = f"{parquet}: " + "; ".join(problems)
                _fail_file(landing, client, system, physical, path)
                audit.drift_log(
                    conn, client, batch_id, logical, physical, version, policy, result, "FAILED", message
                )
                audit.mapping_log(
                    conn, client, batch_id, logical, "FAILED", result.missing, result.extra, message
                )
                audit.file_audit(
                    conn, client, batch_id, logical, mapping_validation_status="FAILED", error_message=message
                )
                raise FailFast(message)
            notes = [renamed] if renamed else []
            if result.extra:
                accepted = f"added column(s) ignored: {', '.join(result.extra)} (schema_drift: {policy})"
                audit.drift_log(
                    conn, client, batch_id, logical, physical, version, policy, result, "ACCEPTED", accepted
                )
                notes.append(accepted)
            note = "; ".join(notes) or None
            audit.mapping_log(conn, client, batch_id, logical, "SUCCESS", [], result.extra, note)
            audit.file_audit(conn, client, batch_id, logical, mapping_validation_status="SUCCESS")
            job.message = note
    return parquet


def validate_rows(client: str, logical: str, batch: dict, parquet: str, run: RunContext) -> str:
    """Type and check every row of the file's Parquet: rejected rows go to
    ``tools.rejected_rows``, the accepted ones, typed, to the file the bronze load streams.
    Fails the file (``FailFast``) when it rejects more rows than its reject policy allows.
    """
    cfg, landing = config_for(client), landing_store()
    system, spec, physical = _file(cfg, batch, logical)
    batch_id = batch["batch_id"]
    with warehouse() as conn:
        conn.autocommit = True
        with audit.job(conn, client, batch_id, run.dag_run_id, run.task_id, run.try_number) as job:
            path = _parquet(landing, client, system, parquet)
            typed_path = landing.typed(client, system, parquet)  # None: the load types the rows
            typed = TypedFile(typed_path, spec, path, batch_id, physical) if typed_path else None
            try:
                with local_copy(path) as converted:
                    result = check_rows(converted, spec, typed=typed)
                audit.replace_rejects(conn, client, batch_id, logical, physical, result.rejects)
                too_many = result.over_limit(spec)
                if typed is not None and too_many:
                    typed.discard()
                elif (
                    typed is not None
                ):  # the load streams these rows, the rejected ones (now stored) left out
                    typed.commit(r.row_number for r in result.rejects)
            except BaseException:
                if typed is not None:
                    typed.discard()
                raise
            warnings = []
            if result.total == 0:
                warnings.append("the file has a header but no data rows")
            if result.duplicate_keys:
                warnings.append(f"first duplicate key: {result.duplicate_example}")
            if result.dropped:
                warnings.append(f"only the first {len(result.rejects)} rejected rows kept as dead letters")
            status = "FAILED" if too_many else ("WARNING" if result.rejected or warnings else "SUCCESS")
            message = (
                f"{parquet}: {too_many}; first: row {result.rejects[0].row_number} {result.rejects[0].reason}"
                if too_many
                else f"{result.rejected} of {result.total} rows rejected, "
                f"{result.duplicate_keys} duplicate key(s)"
            ) + "".join(f"; {w}" for w in warnings)
            audit.row_log(
                conn,
                client,
                batch_id,
                logical,
                status,
                result.total,
                result.rejected,
                result.duplicate_keys,
                message,
            )
            audit.file_audit(
                conn,
                client,
                batch_id,
                logical,
                row_validation_status=status,
                total_rows=result.total,
                rejected_rows=result.rejected,
                error_message=message if too_many else None,
            )
            job.rows, job.message = result.total, message
            if too_many:
                _fail_file(landing, client, system, physical, path)
                raise FailFast(message)
            log.info(message)
    return parquet


def load_bronze(client: str, logical: str, batch: dict, parquet: str, run: RunContext) -> int:
    """Replace the batch's rows of the file in bronze with its accepted rows, in one
    transaction; archive the Parquet. Returns the rows loaded.
    """
    cfg, landing = config_for(client), landing_store()
    system, spec, physical = _file(cfg, batch, logical)
    batch_id = batch["batch_id"]
    with warehouse() as conn:
        conn.autocommit = True
        with audit.job(conn, client, batch_id, run.dag_run_id, run.task_id, run.try_number) as job:
            path = _parquet(landing, client, system, parquet)
            skip = audit.rejected_row_numbers(conn, client, batch_id, logical)
            typed = landing.typed(client, system, parquet)
            # a database source's mark moves in the transaction that commits its rows
            finish = (watermarks.advance_mark_sql(client, batch_id, logical),) if spec.is_database else ()
            try:
                with local_copy(path) as converted:
                    rows = copy_into_bronze(
                        conn,
                        cfg,
                        spec,
                        converted,
                        batch_id,
                        physical,
                        skip,
                        typed=typed,
                        finish=finish,
                    )
            except Exception as exc:
                audit.load_error(
                    conn,
                    client,
                    batch_id,
                    logical,
                    "load_bronze",
                    f"{cfg.bronze_schema}.{spec.bronze_table}",
                    audit.one_line(exc),
                )
                audit.file_audit(
                    conn, client, batch_id, logical, load_status="FAILED", error_message=audit.one_line(exc)
                )
                raise
            move(path, landing.data(client, system, "archive"))
            landing.drop_typed(client, system, parquet)  # loaded: a re-run types the rows again
            audit.file_audit(
                conn, client, batch_id, logical, load_status="SUCCESS", loaded_rows=rows, error_message=None
            )
            job.rows = rows
    return rows


def close_batch(client: str, batch: dict | None, failed_tasks: list[str], run: RunContext) -> str:
    """Record the batch's final status (SUCCESS, PARTIAL or FAILED), move its files and
    manifest, free the client's lease; fail unless the batch succeeded.
    """
    cfg, landing = config_for(client), landing_store()
    with warehouse() as conn:
        conn.autocommit = True
        batch_id = batch["batch_id"] if batch else batches.batch_of_run(conn, client, run.dag_run_id)
        if batch_id is None:
            batches.release_client(conn, client, run.dag_run_id)  # if its sensor had reserved it
            if not failed_tasks:  # e.g. a backfill day with nothing delivered
                raise Skip(f"{client}: no batch was opened in this run: nothing to close")
            raise FailFast(f"{client}: no batch was opened in this run; failed: {', '.join(failed_tasks)}")
        with audit.job(conn, client, batch_id, run.dag_run_id, run.task_id, run.try_number) as job:
            status, message = batches.close_batch(
                conn, cfg, landing, batch_id, failed_tasks, run.dag_run_id, with_message=True
            )
            job.message = f"{status}: {message}" if message else status
            if status == "SUCCESS":
                unhealthy = health.check(conn, client, batch_id, cfg.health)
                if unhealthy:  # still SUCCESS: marked, logged, alerted as a warning
                    job.message += "; unhealthy: " + "; ".join(unhealthy)
                    log.warning("%s %s is unhealthy: %s", client, batch_id, "; ".join(unhealthy))
            metrics.batch_closed(conn, cfg, batch_id, status)
    if status == "PARTIAL":
        raise FailFast(f"{client} {batch_id} closed as PARTIAL: {message}")
    if status != "SUCCESS":
        raise FailFast(f"{client} {batch_id} closed as {status}: failed tasks: {', '.join(failed_tasks)}")
    return status
