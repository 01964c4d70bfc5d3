"""The job log on the real PostgreSQL: an attempt that was killed before it could report
back does not stay RUNNING for ever."""

from __future__ import annotations

import psycopg

from include.etl.warehouse import audit


def attempts(conn: psycopg.Connection, task_id: str) -> list[tuple]:
    return conn.execute(
        """SELECT try_number, status, message, ended_at IS NOT NULL FROM tools.job_execution_log
           WHERE client_schema = 'client1' AND dag_run_id = 'run-1' AND task_id = %s ORDER BY id""",
        (task_id,),
    ).fetchall()


def test_a_killed_attempt_is_closed_as_failed_when_the_next_one_starts(conn, cfg) -> None:
    killed = audit.job(conn, "client1", "BATCH000001", "run-1", "cust_info.load_bronze", 1)
    killed.__enter__()  # the process dies here: the row is left RUNNING
    other = audit.job(conn, "client1", "BATCH000001", "run-1", "prd_info.load_bronze", 1)
    other.__enter__()  # another task, still running: left alone
    assert attempts(conn, "cust_info.load_bronze") == [(1, "RUNNING", None, False)]

    with audit.job(conn, "client1", "BATCH000001", "run-1", "cust_info.load_bronze", 2) as job:
        job.message = "loaded"

    assert attempts(conn, "cust_info.load_bronze") == [
        (
            1,
            "FAILED",
            "ended without reporting back (killed: timeout, SIGKILL or a lost worker); attempt 2 took over",
            True,
        ),
        (2, "SUCCESS", "loaded", True),
    ]
    assert attempts(conn, "prd_info.load_bronze") == [(1, "RUNNING", None, False)]
