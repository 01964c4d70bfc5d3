"""Airflow pieces of the client DAG: the incoming-files sensor and the audited SQL step."""

from __future__ import annotations

from typing import Any

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import BaseSensorOperator

from include.config import WAREHOUSE_CONN_ID

BATCH_ID_XCOM = "{{ ti.xcom_pull(task_ids='open_batch', key='batch_id') }}"


class IncomingFilesSensor(BaseSensorOperator):
    """Waits until every required file of the client is in its incoming folder.

    Runs in reschedule mode: no worker slot is held between pokes. Runs that do not
    claim new files (restart / reprocessing) pass at once.
    """

    ui_color = "#e8f4fd"

    def __init__(self, *, client: str, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.client = client

    def poke(self, context: Any) -> bool:
        from airflow.sdk.exceptions import AirflowFailException

        from include.config import config_for
        from include.landing import Landing

        if str(getattr(context["dag_run"], "run_type", "")).endswith("backfill"):
            raise AirflowFailException(
                f"{self.client}: backfills are not supported yet for file-driven clients; "
                "deliver the day's files and trigger the DAG with mode start"
            )
        if context["params"].get("mode", "start") != "start":
            self.log.info("mode %s: no new files needed", context["params"]["mode"])
            return True
        if self._run_owns_a_batch(context["ti"].run_id):
            self.log.info("this DAG run already opened its batch: no new files needed")
            return True
        missing = Landing.from_env().missing_required(config_for(self.client))
        if missing:
            self.log.info("still waiting for: %s", ", ".join(missing))
        return not missing

    def _run_owns_a_batch(self, run_id: str) -> bool:
        """A cleared run that already opened its batch must not wait for new files."""
        from include.batch import batch_of_run
        from include.warehouse import connect

        with connect() as conn:
            if not conn.execute("SELECT to_regclass('tools.batch_run') IS NOT NULL").fetchone()[0]:
                return False
            return batch_of_run(conn, self.client, run_id) is not None


class WarehouseSQLOperator(SQLExecuteQueryOperator):
    """A SQL step of a layer, run with the batch id as the bound parameter ``batch_id``.

    The statements run in one transaction. Each attempt is logged in
    ``tools.sql_step_log`` with the rows the target holds for the batch afterwards.
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
        from include.warehouse import connect

        batch_id = self.parameters["batch_id"]
        if not batch_id or batch_id == "None":
            raise RuntimeError("no batch id in XCom from open_batch")
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
                result = super().execute(context)
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
        return result

    def _rows_for_batch(self, conn, batch_id: str) -> int:
        from psycopg import sql

        schema, table = self.target.split(".", 1)
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        if self.layer != "views":
            query += sql.SQL(" WHERE dwh_batch_id = %s")
            return conn.execute(query, (batch_id,)).fetchone()[0]
        return conn.execute(query).fetchone()[0]
