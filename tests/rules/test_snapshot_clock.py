"""A snapshot step that compares bronze dates with today's (``bronze_key.clock``: client1's
ERP birth dates, a birth date in the future is NULL) is compared by its changed keys plus
the keys whose date lies between the day the base delivery was compared and today: the
only rows that clean differently on another day (include/etl/warehouse/snapshot.py).

A base compared days ago is made here as that day's run would have left it: its delivery
recorded ten days back, and the row whose birth date was then in the future cleaned to
NULL. Any other use of the clock in the step compares every key.
"""

from __future__ import annotations

import datetime

import pytest

from include.etl.config import BronzeKey
from include.etl.warehouse.snapshot import ChangedOnly, batch_step_text
from tests.rules.tables import expect, given, run_snapshot_step, run_step

B1, B2 = "BATCH000001", "BATCH000002"
BRONZE, SILVER = "bronze_client1.erp_cust_az12", "silver_client1.erp_cust_az12"
FILES = {BRONZE: "CUST_AZ12"}  # the bronze table the step reads -> its logical file


def delivered(conn, rows: str, batch: str) -> None:
    """The ERP customer file loaded into bronze for ``batch`` (its hash recorded per batch:
    a file of its own each day)."""
    given(conn, BRONZE, rows, batch=batch)
    conn.execute(
        """INSERT INTO tools.batch (client_schema, batch_id, mode, config_version)
           VALUES ('client1', %s, 'start', 'test')""",
        (batch,),
    )
    conn.execute(
        """INSERT INTO tools.file_audit_log (client_schema, batch_id, logical_source_file, source_system,
               file_sha256) VALUES ('client1', %s, 'CUST_AZ12', 'erp', %s)""",
        (batch, f"sha-{batch}"),
    )


def compared(conn, batch: str) -> tuple:
    return conn.execute(
        """SELECT delivered_rows, changed_rows, vanished_keys, same_as_batch, compared_keys
           FROM tools.snapshot_delivery
           WHERE client_schema = 'client1' AND table_name = %s AND batch_id = %s""",
        (SILVER, batch),
    ).fetchone()


def compared_on(conn, batch: str, days: int) -> None:
    """The delivery of ``batch`` as if compared ``days`` days from today."""
    conn.execute(
        """UPDATE tools.snapshot_delivery SET compared_on = current_date + %s
           WHERE client_schema = 'client1' AND table_name = %s AND batch_id = %s""",
        (days, SILVER, batch),
    )


def test_a_birth_date_that_stopped_being_in_the_future_is_compared(conn, client1, client_dags) -> None:
    """B1 was compared ten days ago, when AW1's birth date (five days ago) was still in
    the future: silver holds it as NULL. B2 delivers the same rows today: nothing in its
    bronze changed, but AW1 now cleans to its date, so AW1 alone is compared and added;
    AW2 (1980) and AW3 (2999) clean as they did and are not compared."""
    passed = datetime.date.today() - datetime.timedelta(days=5)
    rows = f"""
        cid     | bdate      | gen
        NASAW1  | {passed}   | M
        AW-2    | 1980-01-01 | F
        AW3     | 2999-01-01 |
    """
    delivered(conn, rows, B1)
    run_step(conn, client_dags["client1"], "silver.erp_cust_az12", B1)
    # B1 as its run ten days ago left it
    conn.execute(f"UPDATE {SILVER} SET bdate = NULL WHERE cid = 'AW1'")
    compared_on(conn, B1, days=-10)

    delivered(conn, rows, B2)
    run_step(conn, client_dags["client1"], "silver.erp_cust_az12", B2)

    expect(conn, f"SELECT cid, bdate, gen, dwh_batch_id FROM {SILVER} ORDER BY cid, dwh_batch_id", f"""
        cid | bdate      | gen    | dwh_batch_id
        AW1 |            | Male   | BATCH000001
        AW1 | {passed}   | Male   | BATCH000002
        AW2 | 1980-01-01 | Female | BATCH000001
        AW3 |            | n/a    | BATCH000001
    """)  # fmt: skip
    assert compared(conn, B2) == (3, 1, 0, None, 1)


def test_the_same_rows_the_same_day_compare_only_the_keys_dated_around_today(
    conn, client1, client_dags
) -> None:
    """The same rows again the same day: no row changed and no date lies between the two
    days (a day either side of today is compared every day: the birth date of tomorrow)."""
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    rows = f"""
        cid     | bdate      | gen
        NASAW1  | 1980-01-01 | M
        AW2     | {tomorrow} | F
    """
    for batch in (B1, B2):
        delivered(conn, rows, batch)
        run_step(conn, client_dags["client1"], "silver.erp_cust_az12", batch)

    assert compared(conn, B2) == (2, 0, 0, None, 1)  # AW2, dated tomorrow, compared again
    expect(conn, f"SELECT cid, bdate, dwh_batch_id FROM {SILVER} ORDER BY cid", """
        cid | bdate      | dwh_batch_id
        AW1 | 1980-01-01 | BATCH000001
        AW2 |            | BATCH000001
    """)  # fmt: skip


def step_text(client_dags) -> str:
    """The birth dates' step as the DAG's task renders it."""
    dag = client_dags["client1"]
    task = dag.get_task("silver.erp_cust_az12")
    return task.render_template(task.sql, {}, jinja_env=dag.get_template_env())


def compared_in_full(conn, text: str, bronze_key: BronzeKey, batch: str) -> None:
    """``batch`` delivered through the step ``text`` (its first delivery: every key)."""
    assert run_snapshot_step(conn, SILVER, ["cid"], text, batch, FILES, bronze_key) is None


@pytest.mark.parametrize(
    "edits, changed_only",
    [
        ([], True),  # the step as it is
        ([("b.bdate > current_date", "b.bdate > current_date - 1")], False),  # an offset
        ([("b.bdate > current_date", "b.bdate > now()::date")], False),  # another clock
        ([("b.bdate > current_date", "b.bdate > ' today'::date")], False),  # a literal of today
        ([("CASE WHEN b.bdate", "CASE WHEN current_date > '2000-01-01' AND b.bdate")], False),
        (  # the comparison moved out of the bronze table's query: bdate could be anything there
            [
                ("CASE WHEN b.bdate > current_date THEN NULL ELSE b.bdate END AS bdate", "b.bdate"),
                ("    bdate,\n", "    CASE WHEN bdate > current_date THEN NULL ELSE bdate END,\n"),
            ],
            False,
        ),
    ],
    ids=["as-is", "offset", "now", "today-literal", "another-use", "not-through-bronze"],
)
def test_another_use_of_the_clock_compares_every_key(conn, client1, client_dags, edits, changed_only) -> None:
    """``bronze_key.clock`` holds only for a step that compares the dates with
    ``current_date`` itself: the step edited to read the clock any other way (both days
    by the edited step) is compared in full the second day, the step as it is by its
    changed keys."""
    rows = """
        cid    | bdate      | gen
        NASAW1 | 1980-01-01 | M
    """
    edited = step_text(client_dags)
    for before, after in edits:
        assert edited.count(before) == 1, before
        edited = edited.replace(before, after)
    bronze_key = BronzeKey(function="erp_cust_az12_cid", columns=["cid"], clock=["bdate"])
    delivered(conn, rows, B1)
    compared_in_full(conn, edited, bronze_key, B1)
    delivered(conn, rows, B2)
    with conn.transaction():
        _, how = batch_step_text(conn, "client1", SILVER, ["cid"], edited, B2, FILES, bronze_key)
    assert isinstance(how, ChangedOnly) if changed_only else how is None, how


def test_a_base_compared_on_a_later_day_compares_the_dates_back_to_today(conn, client1, client_dags) -> None:
    """The base was compared ten days from now (a clock set wrong, or a time zone): AW1's
    birth date, five days from now, was past then and kept. Today it is in the future
    again: AW1 is compared and cleans to NULL, as comparing every key today gives."""
    ahead = datetime.date.today() + datetime.timedelta(days=5)
    rows = f"""
        cid     | bdate      | gen
        NASAW1  | {ahead}    | M
        AW2     | 1980-01-01 | F
    """
    delivered(conn, rows, B1)
    run_step(conn, client_dags["client1"], "silver.erp_cust_az12", B1)
    conn.execute(f"UPDATE {SILVER} SET bdate = %s WHERE cid = 'AW1'", (ahead,))  # as that day left it
    compared_on(conn, B1, days=10)

    delivered(conn, rows, B2)
    run_step(conn, client_dags["client1"], "silver.erp_cust_az12", B2)

    expect(conn, f"SELECT cid, bdate, dwh_batch_id FROM {SILVER} ORDER BY cid, dwh_batch_id", f"""
        cid | bdate      | dwh_batch_id
        AW1 | {ahead}    | BATCH000001
        AW1 |            | BATCH000002
        AW2 | 1980-01-01 | BATCH000001
    """)  # fmt: skip
    assert compared(conn, B2) == (2, 1, 0, None, 1)
