"""Airflow pieces of the client DAG: the incoming-files sensor and the audited SQL step."""

from __future__ import annotations

from typing import Any

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import BaseSensorOperator

from include.config import WAREHOUSE_CONN_ID

BATCH_ID_XCOM = "{{ ti.xcom_pull(task_ids='open_batch', key='batch_id') }}"


def batch_id_or_skip(client: str, rendered: str | None) -> str:
    """The batch id rendered from open_batch's XCom; a run that opened no batch (a
    backfill day with nothing delivered) has nothing to transform or check: skip."""
    if not rendered or rendered == "None":
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"{client}: no batch was opened in this run: nothing to run")
    return rendered


def run_context(context: Any) -> Any:
    """The pipeline's ``RunContext`` for the running task: who runs, how to ask Airflow
    whether another run is active, and the day a backfill run is for."""
    from include.pipeline import RunContext

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
    return RunContext(
        dag_run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=ti.try_number,
        run_is_active=run_is_active,
        backfill_day=logical_date.date() if backfill and logical_date else None,
    )


class IncomingFilesSensor(BaseSensorOperator):
    """Waits until the run can open its batch: its files are in incoming and no other
    run of the client is active; then reserves the client for this run.

    Runs in reschedule mode: no worker slot is held between pokes. Runs that do not
    claim new files (restart, reprocessing, a cleared run that already opened its batch)
    only wait for the client. A backfill run takes the files stamped with its day and is
    skipped at once when there are none (``include.pipeline.files_ready``).
    """

    ui_color = "#e8f4fd"

    def __init__(self, *, client: str, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.client = client

    def poke(self, context: Any) -> bool:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from include import pipeline

        try:
            waiting = pipeline.files_ready(
                self.client, context["params"].get("mode", "start"), run_context(context)
            )
        except pipeline.Skip as exc:
            raise AirflowSkipException(str(exc)) from exc
        except pipeline.FailFast as exc:
            raise AirflowFailException(str(exc)) from exc
        if waiting:
            self.log.info("%s", waiting)
        return waiting is None


class WarehouseSQLOperator(SQLExecuteQueryOperator):
    """A SQL step of a layer, run with the batch id as the bound parameter ``batch_id``.

    The statements run in one transaction (``include.sqlstep.run_step``): each is logged
    when it starts, every few seconds while it runs, and with its rows, seconds and
    rows/s when it ends. A step whose inputs, SQL and migrations have not changed since
    it last ran for the batch is skipped (it would write the same rows). Each attempt is
    logged in ``tools.sql_step_log`` with the rows the target holds for the batch
    afterwards.
    """

    ui_color = "#ede7f6"

    def __init__(
        self,
        *,
        client: str,
        layer: str,
        step: str,
        target: str,
        sql_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        if sql_file is not None:
            kwargs.setdefault("sql", sql_file)  # a template file, rendered from template_searchpath
        kwargs.setdefault("conn_id", WAREHOUSE_CONN_ID)
        kwargs.setdefault("parameters", {"batch_id": BATCH_ID_XCOM})
        kwargs.setdefault("autocommit", False)  # all statements of the file, one transaction
        kwargs.setdefault("split_statements", True)  # psycopg 3 binds one statement at a time
        kwargs.setdefault("do_xcom_push", False)  # nothing downstream reads a step's result set
        super().__init__(**kwargs)
        self.client, self.layer, self.step, self.target = client, layer, step, target
        self.sql_file = sql_file

    def execute(self, context: Any) -> Any:

        from include.audit import one_line
        from include.sqlstep import run_step
        from include.warehouse import connect

        batch_id = batch_id_or_skip(self.client, self.parameters["batch_id"])
        try_number = context["ti"].try_number
        with connect() as conn:
            conn.autocommit = True
            (log_id,) = conn.execute(
                """INSERT INTO tools.sql_step_log (client_schema, batch_id, layer, step_name,
                       sql_file, target_table, status, try_number)
                   VALUES (%s, %s, %s, %s, %s, %s, 'RUNNING', %s) RETURNING id""",
                (self.client, batch_id, self.layer, self.step, self.sql_file, self.target, try_number),
            ).fetchone()
            try:
                with connect() as work:
                    work.autocommit = True  # run_step opens the step's one transaction
                    run_step(
                        work,
                        client=self.client,
                        layer=self.layer,
                        step=self.step,
                        target=self.target,
                        sql_text=self._sql_text(),
                        batch_id=batch_id,
                        parameters=dict(self.parameters),
                        log=self.log,
                    )
            except Exception as exc:
                conn.execute(
                    """UPDATE tools.sql_step_log SET status = 'FAILED', error_message = %s,
                           ended_at = now() WHERE id = %s""",
                    (one_line(exc), log_id),
                )
                raise
            rows = self._rows_for_batch(conn, batch_id)
            conn.execute(
                """UPDATE tools.sql_step_log SET status = 'SUCCESS', rows_in_batch = %s,
                       ended_at = now() WHERE id = %s""",
                (rows, log_id),
            )
        self.log.info("%s.%s: %s rows for %s", self.layer, self.step, rows, batch_id)

    def _sql_text(self) -> str:
        """The rendered SQL: a file's text, a statement, or statements joined."""
        if isinstance(self.sql, str):
            return self.sql
        return ";\n".join(s.strip().rstrip(";") for s in self.sql)

    def _rows_for_batch(self, conn, batch_id: str) -> int:
        from psycopg import sql

        schema, table = self.target.split(".", 1)
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        if self.layer != "views":
            query += sql.SQL(" WHERE dwh_batch_id = %s")
            return conn.execute(query, (batch_id,)).fetchone()[0]
        return conn.execute(query).fetchone()[0]
