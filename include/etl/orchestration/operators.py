"""Every Airflow task of the client DAG, in one place.

* ``IncomingFilesSensor``: ``wait_for_files``.
* ``open_batch_task`` and ``close_batch_task``: TaskFlow tasks around
  ``include.etl.orchestration.tasks``.
* ``FileStepOperator``: the four steps of a source file's group.
* ``WarehouseSQLOperator``: a silver, gold or view step (one SQL file).
* ``QualityCheckOperator``: the quality gates of a layer.

The tasks module raises ``Skip`` and ``FailFast``; ``airflow_outcome`` turns them into
Airflow's skip and no-retry failure, for every task here. Every task reaches the
warehouse through ``connections.warehouse`` (the Airflow connection ``warehouse``).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.sql.operators.sql import BaseSQLOperator, SQLExecuteQueryOperator
from airflow.sdk import BaseOperator, BaseSensorOperator, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

from include.etl import templates
from include.etl.config import WAREHOUSE_CONN_ID
from include.etl.orchestration.connections import warehouse
from include.etl.orchestration.triggers import IncomingFilesTrigger
from include.etl.warehouse.connection import one_row
from include.etl.warehouse.quality import Check

if TYPE_CHECKING:
    from include.etl.orchestration.tasks import RunContext

BATCH_ID_XCOM = "{{ ti.xcom_pull(task_ids='open_batch', key='batch_id') }}"


def tasks() -> ModuleType:
    """``include.etl.orchestration.tasks``, imported when a task runs, not when its DAG
    file is parsed: it brings pyarrow and the ingest modules, which every parse of every
    DAG file would pay (``tests/dags/test_integrity.py`` keeps the parse without them)."""
    from include.etl.orchestration import tasks as module

    return module


@contextlib.contextmanager
def airflow_outcome() -> Iterator[None]:
    """Run a step; its ``Skip`` becomes Airflow's skip, its ``FailFast`` a failure that
    is not retried (retrying cannot help: the input or the config must be fixed)."""
    steps = tasks()
    try:
        yield
    except steps.Skip as exc:
        raise AirflowSkipException(str(exc)) from exc
    except steps.FailFast as exc:
        raise AirflowFailException(str(exc)) from exc


def batch_id_or_skip(client: str, rendered: str | None) -> str:
    """The batch id rendered from open_batch's XCom; a run that opened no batch (a
    backfill day with nothing delivered) has nothing to transform or check: skip."""
    if not rendered or rendered == "None":
        raise AirflowSkipException(f"{client}: no batch was opened in this run: nothing to run")
    return rendered


def run_context(context: Any) -> RunContext:
    """The tasks' ``RunContext`` for the running task: who runs, how to ask Airflow
    whether another run is active, and the day a backfill run is for."""
    ti, dag_run = context["ti"], context["dag_run"]

    def run_is_active(run_id: str) -> bool:
        try:
            state = ti.get_dagrun_state(dag_id=ti.dag_id, run_id=run_id)
        except Exception:  # the run is gone (deleted): nothing is active
            return False
        return str(getattr(state, "value", state)) in ("running", "queued")

    run_type = getattr(dag_run, "run_type", None)
    backfill = getattr(run_type, "value", run_type) == "backfill"  # DagRunType.BACKFILL_JOB
    logical_date = getattr(dag_run, "logical_date", None)
    return tasks().RunContext(
        dag_run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=ti.try_number,
        run_is_active=run_is_active,
        backfill_day=logical_date.date() if backfill and logical_date else None,
    )


# ------------------------------------------------------------------ wait_for_files
def _watcher_events(context: Any) -> list[dict]:
    """The payloads of the ``DeliveryWatcher`` events that started this run."""
    found = []
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            payload = (getattr(event, "extra", None) or {}).get("payload")
            if isinstance(payload, dict):
                found.append(payload)
    return found


class IncomingFilesSensor(BaseSensorOperator):
    """Waits until the run can open its batch: its files are in incoming and no other
    run of the client is active; then reserves the client for this run.

    Deferrable by default (``sensor.deferrable``): while the delivery is missing it
    defers to ``IncomingFilesTrigger``, which looks at the folders in the triggerer, so
    no worker process runs and no task is launched between looks; when the files are
    there the sensor resumes, takes the client's lease and succeeds (or, the client busy,
    defers again for a poke interval). ``deferrable: false``: reschedule mode, each poke
    a short task. Runs that do not claim new files (restart, reprocessing, a cleared run
    that already opened its batch) only wait for the client. A backfill run takes the
    files stamped with its day and is skipped at once when there are none
    (``tasks.files_ready``). Past ``timeout`` it fails, saying what it still waited for.

    ``start="delivery"`` (``sensor.start``): runs are started by the client's
    ``DeliveryWatcher``, so a run the watcher or a schedule tick started never waits for
    files: it takes the delivery that is there, is skipped when there is none (another
    run took it), and fails as a timeout when the watcher started it because none came.
    A manual run waits as above.
    """

    ui_color = "#e8f4fd"

    def __init__(
        self, *, client: str, deferrable: bool = True, start: str = "schedule", **kwargs: Any
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.client = client
        self.deferrable = deferrable
        self.start = start

    def poke(self, context: Any) -> bool:
        """True when the run can open its batch (the client is then reserved for it)."""
        waiting = self._waiting(context)
        if waiting:
            self.log.info("%s", waiting)
        return waiting is None

    def _waiting(self, context: Any) -> str | None:
        with airflow_outcome():
            return tasks().files_ready(
                self.client, context["params"].get("mode", "start"), run_context(context)
            )

    def execute(self, context: Any) -> Any:
        """Deferrable: look once here, then let the trigger look until the files are there."""
        if self.start == "delivery":
            self._take_what_came(context)
        if not self.deferrable:
            return super().execute(context)
        self._look(context, deadline=time.time() + self.timeout, delay=0)
        return None

    def _timed_out(self, waiting: object) -> AirflowSensorTimeout:
        """The sensor's timeout, saying what it still waited for (the ``no_delivery`` alert)."""
        return AirflowSensorTimeout(
            f"{self.client}: no delivery within the sensor's timeout ({self.timeout:.0f} s): {waiting}"
        )

    def _take_what_came(self, context: Any) -> None:
        """A run started by the delivery watcher or a schedule tick does not wait for a
        delivery: none there, it is skipped, or fails when the watcher found none overdue.
        With the delivery there (or a run that needs none) it goes on as any run."""
        run_type = getattr(context["dag_run"], "run_type", None)
        if getattr(run_type, "value", run_type) not in ("scheduled", "asset_triggered"):
            return
        run, mode = run_context(context), context["params"].get("mode", "start")
        if not tasks().needs_delivery(self.client, mode, run):
            return
        waiting = tasks().delivery_waiting(self.client)
        if waiting is None:
            return
        overdue = [e for e in _watcher_events(context) if e.get("status") == "overdue"]
        if overdue:
            raise self._timed_out(overdue[-1].get("waiting"))
        raise AirflowSkipException(
            f"{self.client}: no delivery to take ({waiting}); "
            "the delivery watcher starts a run when one is complete"
        )

    def resume(self, context: Any, event: dict | None = None) -> None:
        """Back from the trigger: check again (and take the lease), or time out."""
        event = event or {}
        deadline = float(event.get("deadline") or time.time())
        if event.get("status") == "timeout":
            raise self._timed_out(event.get("waiting"))
        if event.get("status") == "recheck":
            self.log.warning(
                "%s: the trigger could not look at the folders: %s", self.client, event.get("why")
            )
        self._look(context, deadline=deadline, delay=self.poke_interval)

    def _look(self, context: Any, deadline: float, delay: float) -> None:
        waiting = self._waiting(context)
        if waiting is None:
            return
        self.log.info("%s", waiting)
        if time.time() >= deadline:
            raise self._timed_out(waiting)
        run = run_context(context)
        mode = context["params"].get("mode", "start")
        # Waiting for files: the trigger looks at the folders. Waiting for the client
        # (busy with another run): the trigger only waits a poke interval.
        files = tasks().needs_delivery(self.client, mode, run) and (
            tasks().delivery_waiting(self.client, run.backfill_day) is not None
        )
        self.defer(
            trigger=IncomingFilesTrigger(
                client=self.client,
                poke_interval=self.poke_interval,
                deadline=deadline,
                day=run.backfill_day.isoformat() if run.backfill_day else None,
                files=files,
                delay=0 if files else delay or self.poke_interval,
            ),
            method_name="resume",
            timeout=timedelta(seconds=max(deadline - time.time(), 0) + 4 * self.poke_interval + 60),
        )


# ------------------------------------------------------------------ open and close the batch
@task(task_id="open_batch", multiple_outputs=True)
def open_batch_task(client: str, params: dict | None = None) -> dict:
    """Allocate (or find) this run's batch id, claim the files, write the manifest."""
    params = params or {}
    with airflow_outcome():
        return tasks().open_batch(
            client,
            params.get("mode", "start"),
            params.get("batch_id") or None,
            run_context(get_current_context()),
            full_load=bool(params.get("full_load")),
        )


@task(task_id="close_batch", trigger_rule="all_done")
def close_batch_task(client: str, batch: dict | None = None) -> str:
    """Record the final status, archive the files, move the manifest; fail if any task did."""
    context = get_current_context()
    ti = context["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    failed = sorted(t for t, s in states.items() if s in ("failed", "upstream_failed") and t != ti.task_id)
    with airflow_outcome():
        return tasks().close_batch(client, batch, failed, run_context(context))


# ------------------------------------------------------------------ a source file's group
# The steps of a source's group, in order (a database source's starts with extract): the
# function of ``tasks`` each runs, named as the step, and the doc the UI shows.
FILE_STEPS: dict[str, str] = {
    "extract": "Extract the batch's window of rows from the source database into its CSV file "
    "(the window is fixed at the first extract; the mark moves with the bronze load).",
    "convert": "Convert the delivered file to Parquet; returns the Parquet file name.",
    "validate_mapping": "Check the file's columns against the configured mapping.",
    "validate_rows": "Type, required and key checks per row; rejected rows go to tools.rejected_rows.",
    "load_bronze": "Replace the batch's rows in the bronze table (delete + COPY, one transaction).",
}
_PREVIOUS_STEP = {
    "validate_mapping": "convert",
    "validate_rows": "validate_mapping",
    "load_bronze": "validate_rows",
}


def steps_of(spec: Any) -> list[str]:
    """The steps of a source's group: a file's four, after ``extract`` for a database."""
    return [s for s in FILE_STEPS if s != "extract" or spec.is_database]


class FileStepOperator(BaseOperator):
    """One step of a source file's group (``FILE_STEPS``) for the file.

    Its inputs come through XCom as with TaskFlow: the batch that ``open_batch``
    returned and, after ``convert``, the Parquet name the previous step of the group
    returned. A plain operator rather than a ``@task``: a TaskFlow task costs about five
    times as much to build, and a client has four of these per file.
    """

    ui_color = "#ffefeb"

    def __init__(self, *, client: str, logical: str, step: str, **kwargs: Any) -> None:
        super().__init__(task_id=step, doc_md=FILE_STEPS[step], **kwargs)
        self.client, self.logical, self.step = client, logical, step

    def execute(self, context: Any) -> Any:
        """Run the step's function with the batch and the previous step's Parquet name."""
        ti = context["ti"]
        batch = ti.xcom_pull(task_ids="open_batch")
        args: list[object] = [self.client, self.logical, batch]
        if self.step in _PREVIOUS_STEP:
            args.append(ti.xcom_pull(task_ids=f"{self.logical}.{_PREVIOUS_STEP[self.step]}"))
        self._ran = (batch, None)
        with airflow_outcome():
            result = getattr(tasks(), self.step)(*args, run_context(context))
        self._ran = (batch, result)
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The files (and bronze table) the step read and wrote, for OpenLineage."""
        from include.etl.config import config_for
        from include.etl.orchestration.lineage import file_step_lineage

        batch, result = getattr(self, "_ran", (None, None))
        return file_step_lineage(
            config_for(self.client), WAREHOUSE_CONN_ID, self.logical, self.step, batch, result
        )


# ------------------------------------------------------------------ SQL steps
class WarehouseSQLOperator(SQLExecuteQueryOperator):
    """A SQL step of a layer (silver, gold, views), run with the batch id bound.

    From ``SQLExecuteQueryOperator`` it takes the SQL file rendered as a template (the
    UI's "Rendered Template" shows it), ``conn_id`` (the warehouse connection it runs
    on) and the hook OpenLineage reads. Its own ``execute`` runs the statements with
    ``include.etl.warehouse.sqlstep.run_step``: in one transaction, each logged when it
    starts, every few seconds while it runs and with its rows when it ends, and skipped
    when nothing the step reads has changed since it last ran for the batch. Every
    attempt is a ``tools.sql_step_log`` row, ended ``SUCCESS`` with the rows the target
    holds for the batch, or ``FAILED`` with the error, whatever fails.

    With ``snapshot_key`` (a silver step of a file delivered in full each time), the
    statements of ``include.etl.warehouse.snapshot.diff_sql`` follow the file's in the same
    transaction: silver keeps only the rows that changed since the batches before. When an
    earlier batch runs again after later batches delivered the file, the step then runs
    for those later batches too, and so do the batch's gold and view steps (``_run``);
    each such run is logged under its batch, ``again_after`` naming the batch run again.
    """

    # The SQL and the bound batch id are rendered; the connection, database and hook
    # parameters come from the config, never a template (each templated field costs every
    # DAG's parse a serialization and an Airflow config lookup).
    template_fields: Sequence[str] = ("sql", "parameters")
    ui_color = "#ede7f6"

    def __init__(
        self,
        *,
        client: str,
        layer: str,
        step: str,
        target: str,
        sql_file: str | None = None,
        snapshot_key: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if sql_file is not None:
            kwargs.setdefault("sql", sql_file)  # a template file, rendered from template_searchpath
        kwargs.setdefault("conn_id", WAREHOUSE_CONN_ID)
        kwargs.setdefault("parameters", {"batch_id": BATCH_ID_XCOM})
        kwargs.setdefault("do_xcom_push", False)  # nothing downstream reads a step's result set
        super().__init__(**kwargs)
        self.client, self.layer, self.step, self.target = client, layer, step, target
        self.sql_file = sql_file
        self.snapshot_key = list(snapshot_key) if snapshot_key else None

    def resolve_template_files(self) -> None:
        """The SQL file's text in place of its name, as Airflow's own method puts it at
        parse time (the UI shows the text), found in the same folders: the DAG's, then its
        ``template_searchpath``. Read once per process for all the clients whose DAGs name
        the same unchanged file (a template's steps), without a Jinja environment made
        for each task. A name it cannot read is left to Airflow's method, which logs why."""
        dag = self.dag if self.has_dag() else None
        if dag is None or not isinstance(self.sql, str) or not self.sql.endswith(".sql"):
            super().resolve_template_files()
            return
        extra = dag.template_searchpath or []
        folders = (dag.folder, *([extra] if isinstance(extra, str) else extra))
        text = _template_source(folders, self.sql)
        if text is None:
            super().resolve_template_files()
            return
        self.sql = text
        self.prepare_template()

    def execute(self, context: Any) -> None:
        """Run the step for the batch and log the attempt in ``tools.sql_step_log``."""
        from include.etl.warehouse.audit import one_line

        parameters = self._bound()
        batch_id = batch_id_or_skip(self.client, parameters["batch_id"])
        attempt = context["ti"].try_number
        conn_id = self.conn_id or WAREHOUSE_CONN_ID
        with warehouse(conn_id) as log_conn:
            log_conn.autocommit = True
            (log_id,) = one_row(
                log_conn.execute(
                    """INSERT INTO tools.sql_step_log (client_schema, batch_id, layer, step_name,
                       sql_file, target_table, status, try_number)
                   VALUES (%s, %s, %s, %s, %s, %s, 'RUNNING', %s) RETURNING id""",
                    (
                        self.client,
                        batch_id,
                        self.layer,
                        self.step,
                        self.sql_file,
                        self.target,
                        attempt,
                    ),
                )
            )
            try:
                with warehouse(conn_id) as work:
                    work.autocommit = True  # _run opens the step's one transaction
                    again = self._run(work, batch_id, parameters)
                    rows = self._rows_for_batch(work, batch_id)
                    again_rows = [(b, self._rows_for_batch(work, b), *times) for b, *times in again]
            except BaseException as exc:  # whatever fails (a kill too), the attempt is not left RUNNING
                log_conn.execute(
                    """UPDATE tools.sql_step_log SET status = 'FAILED', error_message = %s,
                           ended_at = now() WHERE id = %s""",
                    (one_line(exc), log_id),
                )
                raise
            log_conn.execute(
                """UPDATE tools.sql_step_log SET status = 'SUCCESS', rows_in_batch = %s,
                       ended_at = now() WHERE id = %s""",
                (rows, log_id),
            )
            for batch, batch_rows, started, ended in again_rows:  # committed with the step's own run
                log_conn.execute(
                    """INSERT INTO tools.sql_step_log (client_schema, batch_id, layer, step_name,
                       sql_file, target_table, status, rows_in_batch, try_number, started_at,
                       ended_at, again_after)
                   VALUES (%s, %s, %s, %s, %s, %s, 'SUCCESS', %s, %s, %s, %s, %s)""",
                    (
                        self.client,
                        batch,
                        self.layer,
                        self.step,
                        self.sql_file,
                        self.target,
                        batch_rows,
                        attempt,
                        started,
                        ended,
                        batch_id,
                    ),
                )
        self.log.info("%s.%s: %s rows for %s", self.layer, self.step, rows, batch_id)

    def _run(
        self, conn: Any, batch_id: str, parameters: dict[str, Any]
    ) -> list[tuple[str, datetime, datetime]]:
        """The step for the batch, then for the later batches whose rows depend on the
        batch's snapshots (``include.etl.warehouse.snapshot``: an earlier batch run again
        with other rows), in order, all in one transaction. Returns the later batches it
        ran for, each with when that run started and ended (``execute`` logs them)."""
        from include.etl.warehouse import snapshot
        from include.etl.warehouse.sqlstep import run_step

        run = functools.partial(
            run_step, conn, client=self.client, layer=self.layer, step=self.step, target=self.target
        )
        again: list[tuple[str, datetime, datetime]] = []
        with conn.transaction():
            text = self._step_text(conn, batch_id)
            if run(batch_id=batch_id, sql_text=text, parameters=parameters, log=self.log).skipped:
                return again
            if self.snapshot_key:
                later, cut = snapshot.later_deliveries(
                    conn, self.client, self.target, batch_id, self._sql_text()
                )
                if cut:
                    self.log.warning("%s", cut)
            elif self.layer == "silver":
                later = []
            else:
                later = snapshot.recompared_batches(conn, self.client, self.layer, self.step, batch_id)
            for batch in later:
                self.log.info(
                    "%s.%s: run again for %s, whose snapshot comparison includes %s's rows",
                    self.layer,
                    self.step,
                    batch,
                    batch_id,
                )
                conn.execute("DISCARD TEMP")  # the temporary tables of the run before
                started = datetime.now(UTC)
                run(
                    batch_id=batch,
                    sql_text=self._step_text(conn, batch),
                    parameters={**parameters, "batch_id": batch},
                    skip_unchanged=False,
                    log=self.log,
                )
                again.append((batch, started, datetime.now(UTC)))
        return again

    def get_openlineage_facets_on_start(self) -> Any:
        """The step's tables, from the OpenLineage provider's SQL parser."""
        from include.etl.orchestration.lineage import sql_lineage

        return sql_lineage(self.get_db_hook(), self.conn_id or WAREHOUSE_CONN_ID, self._sql_text())

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The same tables as on start (the step's SQL does not change as it runs)."""
        return self.get_openlineage_facets_on_start()

    def _bound(self) -> dict[str, Any]:
        """The rendered parameters bound to every statement (the batch id)."""
        if not isinstance(self.parameters, Mapping):
            raise AirflowFailException(
                f"{self.task_id}: parameters must be a mapping, not {self.parameters!r}"
            )
        return dict(self.parameters)

    def _sql_text(self) -> str:
        """The rendered SQL: a file's text, a statement, or statements joined."""
        if isinstance(self.sql, str):
            return self.sql
        return ";\n".join(s.strip().rstrip(";") for s in self.sql)

    def _step_text(self, conn: Any, batch_id: str) -> str:
        """What the step runs for the batch: the rendered SQL, and a snapshot delivery's
        comparison; or, for a snapshot that an earlier batch delivered as it is, only the
        record of that (``include.etl.warehouse.snapshot.same_snapshot``)."""
        from include.etl.config import config_for
        from include.etl.warehouse.snapshot import (
            ChangedOnly,
            SameSnapshot,
            batch_step_text,
            clock_declaration_holds,
        )

        if not self.snapshot_key:
            return self._sql_text()
        cfg = config_for(self.client)
        bronze_key = next((s.bronze_key for s in cfg.silver if s.name == self.step), None)
        text, how = batch_step_text(
            conn,
            self.client,
            self.target,
            self.snapshot_key,
            self._sql_text(),
            batch_id,
            cfg.bronze_files,
            bronze_key,
        )
        if isinstance(how, SameSnapshot):
            self.log.info(
                "%s: %s delivers %s's snapshot again (the same files, the same bronze rows): "
                "not cleaned or compared; %s rows delivered, none changed",
                self.target,
                batch_id,
                how.base,
                f"{how.delivered_rows:,}",
            )
        elif isinstance(how, ChangedOnly):
            self.log.info(
                "%s: %s is compared by the keys of its rows changed since %s only",
                self.target,
                batch_id,
                how.base,
            )
        elif (
            bronze_key is not None
            and bronze_key.clock
            and not clock_declaration_holds(self._sql_text(), self.client, bronze_key.clock, cfg.bronze_files)
        ):
            self.log.warning(
                "%s: bronze_key.clock names %s, but the step reads the clock otherwise (an offset, "
                "another clock, a column not read through its bronze table): every key is compared",
                self.target,
                ", ".join(bronze_key.clock),
            )
        return text

    def _rows_for_batch(self, conn: Any, batch_id: str) -> int:
        """The rows the target holds for the batch (a view: all its rows)."""
        from psycopg import sql

        schema, table = self.target.split(".", 1)
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        if self.layer != "views":
            query += sql.SQL(" WHERE dwh_batch_id = %s")
            return conn.execute(query, (batch_id,)).fetchone()[0]
        return conn.execute(query).fetchone()[0]


def _template_source(folders: Sequence[str], name: str) -> str | None:
    """The text of template file ``name``, the first on ``folders`` (``templates.find``,
    as Jinja finds it); None if none has it or it cannot be read (Airflow's own method
    then says why in the log)."""
    found = templates.find(folders, name)
    if found is None:
        return None
    try:
        status = found.stat()
        return _file_text(str(found), status.st_mtime_ns, status.st_size)
    except (OSError, UnicodeDecodeError):
        return None


@functools.lru_cache(maxsize=1024)
def _file_text(path: str, mtime_ns: int, size: int) -> str:
    """A file's text, read again when it changes (its modification time or size)."""
    with open(path, encoding="utf-8") as f:
        return f.read()


# ------------------------------------------------------------------ quality gates
class QualityCheckOperator(BaseSQLOperator):
    """The quality gates of one layer, after the views; fails the batch if one fails.

    Runs each check's query (``include.etl.warehouse.quality``) with the batch id bound,
    logs every result, and fails without retrying (the data will not change by itself)
    with one line listing each failed check, its table and its numbers. The checks and
    the attempt's ``tools.job_execution_log`` row go through one connection to
    ``conn_id``; close_batch then ends the batch FAILED.
    """

    template_fields: Sequence[str] = ("parameters", "sql")  # the connection is the config's
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql"}  # the UI shows each query
    ui_color = "#fff7e6"

    def __init__(self, *, client: str, checks: list[Check], **kwargs: Any) -> None:
        kwargs.setdefault("conn_id", WAREHOUSE_CONN_ID)
        self.parameters: dict[str, str] = kwargs.pop(
            "parameters", {"batch_id": BATCH_ID_XCOM, "client": client}
        )
        super().__init__(**kwargs)
        self.client, self.checks = client, checks
        self.sql: list[str] = [c.sql for c in checks]

    def execute(self, context: Any) -> None:
        """Run every check; fail with one line per failed check."""
        from include.etl.warehouse import audit

        batch_id = batch_id_or_skip(self.client, self.parameters["batch_id"])
        ti = context["ti"]
        with warehouse(self.conn_id or WAREHOUSE_CONN_ID) as conn:
            conn.autocommit = True
            if self.checks and all(c.layer == "silver" for c in self.checks):
                # Silver's checks read one batch's rows, through each table's batch index,
                # which the planner passes over once a batch has been run again (why: the
                # same setting in gold/fact_sales.sql).
                conn.execute("SET enable_seqscan = off")
            with audit.job(conn, self.client, batch_id, ti.run_id, ti.task_id, ti.try_number) as job:
                failures = []
                for check, query in zip(self.checks, self.sql, strict=True):
                    row = conn.execute(query, self.parameters).fetchone() or ()
                    failure = check.verdict(tuple(row), batch_id)
                    self.log.info("%s %s: %s %s", check.table, check.label, row, failure or "passed")
                    if failure:
                        failures.append(failure)
                job.rows = len(self.checks)
                if failures:
                    raise AirflowFailException(f"quality check failed: {'; '.join(failures)}")
                job.message = f"{len(self.checks)} checks passed"
