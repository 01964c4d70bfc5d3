"""Snapshot deliveries (``delivery: snapshot``): a file that comes in full every day adds
to silver only what changed since the batches before it (include/etl/warehouse/snapshot.py).

client1's customers and ERP tables are snapshot deliveries. Each test delivers bronze
rows for two or three batches, runs the silver step of each as the DAG runs it, and
compares silver, ``tools.snapshot_delivery`` and ``tools.snapshot_vanished`` with the rows
a reader can check by hand.
"""

from __future__ import annotations

import pytest

from include.etl.console.queries import lineage
from include.etl.warehouse.snapshot import TableColumn, diff_sql, recompared_batches, table_columns
from include.etl.warehouse.sqlstep import split_statements
from tests.rules.tables import expect, given, run_step

B1, B2, B3 = "BATCH000001", "BATCH000002", "BATCH000003"
SILVER = "silver_client1.crm_cust_info"

DAY_ONE = """
    cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
    1      | AW1     | Jon           | Yang         | M                  | M        | 2024-01-01
    2      | AW2     | Ann           | Lee          | S                  | F        | 2024-01-02
    3      | AW3     | Bo            | Ka           | M                  |          | 2024-01-03
"""


def silver_customers(conn, client_dags, batch: str) -> None:
    run_step(conn, client_dags["client1"], "silver.crm_cust_info", batch)


def delivery(conn) -> list[tuple]:
    return conn.execute(
        """SELECT batch_id, delivered_rows, changed_rows, vanished_keys FROM tools.snapshot_delivery
           WHERE client_schema = 'client1' AND table_name = %s ORDER BY batch_id""",
        (SILVER,),
    ).fetchall()


def step_log(conn, step: str) -> list[tuple]:
    """The step's attempts in ``tools.sql_step_log``, in order: batch, status, rows, and
    the batch whose run ran it again for this one."""
    return conn.execute(
        """SELECT batch_id, status, rows_in_batch, again_after FROM tools.sql_step_log
           WHERE client_schema = 'client1' AND step_name = %s ORDER BY id""",
        (step,),
    ).fetchall()


def vanished(conn) -> list[tuple]:
    return conn.execute(
        """SELECT batch_id, key FROM tools.snapshot_vanished
           WHERE client_schema = 'client1' AND table_name = %s ORDER BY batch_id, key""",
        (SILVER,),
    ).fetchall()


def test_a_snapshot_with_no_change_adds_no_row(conn, client1, client_dags) -> None:
    """The same customers again (in another order, from another file, with spaces the
    cleaning removes): silver keeps the first batch's rows and adds none."""
    given(conn, "bronze_client1.crm_cust_info", DAY_ONE, batch=B1)
    silver_customers(conn, client_dags, B1)
    given(conn, "bronze_client1.crm_cust_info", """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        3      | AW3     | Bo            | Ka           | M                  |          | 2024-01-03
        1      | AW1     | ' Jon '       | Yang         | M                  | M        | 2024-01-01  # cleaned: the same
        2      | AW2     | Ann           | Lee          | S                  | F        | 2024-01-02
    """, batch=B2)  # fmt: skip
    silver_customers(conn, client_dags, B2)

    expect(conn, f"SELECT cst_id, cst_firstname, dwh_batch_id FROM {SILVER}", """
        cst_id | cst_firstname | dwh_batch_id
        1      | Jon           | BATCH000001
        2      | Ann           | BATCH000001
        3      | Bo            | BATCH000001
    """)  # fmt: skip
    assert delivery(conn) == [(B1, 3, 3, 0), (B2, 3, 0, 0)]
    assert vanished(conn) == []


def test_a_changed_row_and_a_new_key_are_added(conn, client1, client_dags) -> None:
    """A customer whose name changed and a new customer: the batch adds those two rows
    (the changed one as cleaned), nothing for the unchanged customers."""
    given(conn, "bronze_client1.crm_cust_info", DAY_ONE, batch=B1)
    silver_customers(conn, client_dags, B1)
    given(conn, "bronze_client1.crm_cust_info", """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        1      | AW1     | Jon           | Yang         | M                  | M        | 2024-01-01  # unchanged
        2      | AW2     | Ann           | Lee-Smith    | M                  | F        | 2024-01-02  # married, new name
        3      | AW3     | Bo            | Ka           | M                  |          | 2024-01-03  # unchanged
        4      | AW4     | Cy            | Do           | S                  | F        | 2024-02-01  # new
    """, batch=B2)  # fmt: skip
    silver_customers(conn, client_dags, B2)

    expect(conn, f"SELECT cst_id, cst_lastname, cst_marital_status, dwh_batch_id FROM {SILVER}", """
        cst_id | cst_lastname | cst_marital_status | dwh_batch_id
        1      | Yang         | Married            | BATCH000001
        2      | Lee          | Single             | BATCH000001
        3      | Ka           | Married            | BATCH000001
        2      | Lee-Smith    | Married            | BATCH000002
        4      | Do           | Single             | BATCH000002
    """)  # fmt: skip
    assert delivery(conn) == [(B1, 3, 3, 0), (B2, 4, 2, 0)]


def test_a_vanished_key_is_recorded_and_comes_back_as_a_new_row(conn, client1, client_dags) -> None:
    """Customer 3 is missing from the second snapshot: recorded as vanished in B2, its
    last row kept. The third snapshot holds it again, unchanged: silver adds it back
    (compared with a deleted key, an unchanged row is a change)."""
    given(conn, "bronze_client1.crm_cust_info", DAY_ONE, batch=B1)
    silver_customers(conn, client_dags, B1)
    given(conn, "bronze_client1.crm_cust_info", """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        1      | AW1     | Jon           | Yang         | M                  | M        | 2024-01-01
        2      | AW2     | Ann           | Lee          | S                  | F        | 2024-01-02
    """, batch=B2)  # fmt: skip
    silver_customers(conn, client_dags, B2)
    assert vanished(conn) == [(B2, [3])]
    assert delivery(conn) == [(B1, 3, 3, 0), (B2, 2, 0, 1)]

    given(conn, "bronze_client1.crm_cust_info", DAY_ONE, batch=B3)
    silver_customers(conn, client_dags, B3)

    expect(conn, f"SELECT cst_id, dwh_batch_id FROM {SILVER}", """
        cst_id | dwh_batch_id
        1      | BATCH000001
        2      | BATCH000001
        3      | BATCH000001
        3      | BATCH000003
    """)  # fmt: skip
    assert vanished(conn) == [(B2, [3])]
    assert delivery(conn) == [(B1, 3, 3, 0), (B2, 2, 0, 1), (B3, 3, 1, 0)]


def test_a_vanished_text_key_comes_back_and_a_later_key_stays_vanished(conn, client1, client_dags) -> None:
    """The ERP locations' key is text, cleaned from the file's (``AW-2`` is ``AW2``).
    AW2 vanishes in B2 and comes back unchanged in B3: a new row. AW3 vanishes in B3:
    recorded there, and AW2's earlier vanishing is not recorded again."""
    table = "silver_client1.erp_loc_a101"
    given(conn, "bronze_client1.erp_loc_a101", """
        cid  | cntry
        AW-1 | DE
        AW-2 | US
        AW-3 | Germany
    """, batch=B1)  # fmt: skip
    given(conn, "bronze_client1.erp_loc_a101", """
        cid  | cntry
        AW-1 | DE
        AW-3 | Germany
    """, batch=B2)  # fmt: skip
    given(conn, "bronze_client1.erp_loc_a101", """
        cid  | cntry
        AW-1 | Germany
        AW-2 | USA
    """, batch=B3)  # fmt: skip
    for batch in (B1, B2, B3):
        run_step(conn, client_dags["client1"], "silver.erp_loc_a101", batch)

    expect(conn, f"SELECT cid, cntry, dwh_batch_id FROM {table}", """
        cid | cntry         | dwh_batch_id
        AW1 | Germany       | BATCH000001
        AW2 | United States | BATCH000001
        AW3 | Germany       | BATCH000001
        AW2 | United States | BATCH000003
    """)  # fmt: skip
    assert conn.execute(
        """SELECT batch_id, key FROM tools.snapshot_vanished WHERE table_name = %s ORDER BY batch_id""",
        (table,),
    ).fetchall() == [(B2, ["AW2"]), (B3, ["AW3"])]


def test_a_table_column_named_as_the_comparison_s_own_is_refused() -> None:
    """The comparison adds columns of its own beside the table's: a table with a column
    of one of their names, without the key, or whose key is an array, is refused with a
    line that says which."""
    key, batch = TableColumn("id", "integer", "N"), TableColumn("dwh_batch_id", "text", "S")
    for own in ("snapshot delivered", "snapshot version batch"):
        with pytest.raises(ValueError, match=f"may not be named '{own}'"):
            diff_sql("client1", "silver_client1.t", ["id"], [key, TableColumn(own, "boolean", "B"), batch])
    with pytest.raises(ValueError, match="no key column code"):
        diff_sql("client1", "silver_client1.t", ["code"], [key, batch])
    with pytest.raises(ValueError, match=r"key column codes is of type text\[\]: .* not arrays or rows"):
        diff_sql("client1", "silver_client1.t", ["codes"], [TableColumn("codes", "text[]", "A"), batch])


def test_a_key_of_a_date_and_a_number_is_matched_by_its_types(conn, client1) -> None:
    """A key of two columns, a date and a numeric(10,2), recorded as vanished (JSON) and
    matched back column by column, each as its own type: (2024-01-02, 1.50) vanishes in
    B2 and comes back unchanged in B3, a new row; (2024-01-01, 2.00) stays as B1 wrote it."""
    target = "snapshot_keys.prices"
    conn.execute("DROP SCHEMA IF EXISTS snapshot_keys CASCADE")
    conn.execute("CREATE SCHEMA snapshot_keys")
    conn.execute(
        """CREATE TABLE snapshot_keys.prices (day date NOT NULL, amount numeric(10,2) NOT NULL,
               label text, dwh_batch_id text NOT NULL, dwh_row_number bigint)"""
    )
    days = {
        B1: [("2024-01-01", "2.00", "a"), ("2024-01-02", "1.50", "b")],
        B2: [("2024-01-01", "2.00", "a")],
        B3: [("2024-01-01", "2.00", "a"), ("2024-01-02", "1.50", "b")],
    }
    try:
        for batch, rows in days.items():
            with conn.transaction():
                conn.execute("CREATE TEMP TABLE snapshot_rows (LIKE snapshot_keys.prices) ON COMMIT DROP")
                for number, row in enumerate(rows, start=1):
                    conn.execute(
                        "INSERT INTO snapshot_rows VALUES (%s, %s, %s, %s, %s)", (*row, batch, number)
                    )
                text = diff_sql("keys_test", target, ["day", "amount"], table_columns(conn, target))
                for statement in split_statements(text):
                    conn.execute(statement, {"batch_id": batch})
        expect(conn, f"SELECT day, amount, label, dwh_batch_id FROM {target}", """
            day        | amount | label | dwh_batch_id
            2024-01-01 | 2.00   | a     | BATCH000001
            2024-01-02 | 1.50   | b     | BATCH000001
            2024-01-02 | 1.50   | b     | BATCH000003
        """)  # fmt: skip
        assert conn.execute(
            "SELECT batch_id, key FROM tools.snapshot_vanished WHERE client_schema = 'keys_test'"
        ).fetchall() == [(B2, ["2024-01-02", 1.50])]
    finally:
        conn.execute("DROP SCHEMA snapshot_keys CASCADE")
        conn.execute("DELETE FROM tools.snapshot_vanished WHERE client_schema = 'keys_test'")
        conn.execute("DELETE FROM tools.snapshot_delivery WHERE client_schema = 'keys_test'")


def test_a_snapshot_not_delivered_changes_nothing(conn, client1, client_dags) -> None:
    """A batch without the file (no bronze rows): no key vanishes, nothing is recorded."""
    given(conn, "bronze_client1.crm_cust_info", DAY_ONE, batch=B1)
    silver_customers(conn, client_dags, B1)
    silver_customers(conn, client_dags, B2)

    assert vanished(conn) == []
    assert delivery(conn) == [(B1, 3, 3, 0)]
    assert conn.execute(f"SELECT count(*) FROM {SILVER}").fetchone() == (3,)


def test_a_snapshot_step_run_again_gives_the_same_rows(conn, client1, client_dags) -> None:
    """Clearing the step (run again for the same batch) or reprocessing the earlier batch
    after it: the same kept rows, the same vanished key, nothing counted twice."""
    given(conn, "bronze_client1.crm_cust_info", DAY_ONE, batch=B1)
    silver_customers(conn, client_dags, B1)
    given(conn, "bronze_client1.crm_cust_info", """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        1      | AW1     | Jon           | Yang-Li      | M                  | M        | 2024-01-01
        2      | AW2     | Ann           | Lee          | S                  | F        | 2024-01-02
    """, batch=B2)  # fmt: skip
    silver_customers(conn, client_dags, B2)
    for batch in (B2, B1, B2):
        conn.execute("DELETE FROM tools.sql_step_state WHERE client_schema = 'client1'")  # not skipped
        silver_customers(conn, client_dags, batch)

    expect(conn, f"SELECT cst_id, cst_lastname, dwh_batch_id FROM {SILVER}", """
        cst_id | cst_lastname | dwh_batch_id
        1      | Yang         | BATCH000001
        2      | Lee          | BATCH000001
        3      | Ka           | BATCH000001
        1      | Yang-Li      | BATCH000002
    """)  # fmt: skip
    assert vanished(conn) == [(B2, [3])]
    assert delivery(conn) == [(B1, 3, 3, 0), (B2, 2, 1, 1)]


def test_an_erp_change_alone_reaches_the_customer_in_gold(conn, client1, client_dags) -> None:
    """Day two delivers the same CRM customers and one changed ERP birth date: silver adds
    no customer row and one ERP row, and dim_customers still takes the new birth date
    (written by the second batch); the other customers stay as the first batch wrote them."""
    dag = client_dags["client1"]
    erp_day_one = """
        cid   | bdate      | gen
        AW1   | 1980-05-01 | Male
        AW2   | 1990-07-02 | Female
    """
    for batch in (B1, B2):
        given(conn, "bronze_client1.crm_cust_info", DAY_ONE, batch=batch)
    given(conn, "bronze_client1.erp_cust_az12", erp_day_one, batch=B1)
    given(conn, "bronze_client1.erp_cust_az12", """
        cid   | bdate      | gen
        AW1   | 1980-05-01 | Male
        AW2   | 1991-07-02 | Female   # corrected birth date
    """, batch=B2)  # fmt: skip
    for batch in (B1, B2):
        run_step(conn, dag, "silver.crm_cust_info", batch)
        run_step(conn, dag, "silver.erp_cust_az12", batch)
        run_step(conn, dag, "silver.erp_loc_a101", batch)
        run_step(conn, dag, "gold.dim_customers", batch)

    assert conn.execute(f"SELECT count(*) FROM {SILVER} WHERE dwh_batch_id = %s", (B2,)).fetchone() == (0,)
    expect(conn, "SELECT cid, bdate, dwh_batch_id FROM silver_client1.erp_cust_az12", """
        cid | bdate      | dwh_batch_id
        AW1 | 1980-05-01 | BATCH000001
        AW2 | 1990-07-02 | BATCH000001
        AW2 | 1991-07-02 | BATCH000002
    """)  # fmt: skip
    expect(conn, "SELECT customer_id, first_name, gender, birthdate, dwh_batch_id FROM gold_client1.dim_customers", """
        customer_id | first_name | gender | birthdate  | dwh_batch_id
        1           | Jon        | Male   | 1980-05-01 | BATCH000001
        2           | Ann        | Female | 1991-07-02 | BATCH000002
        3           | Bo         | n/a    |            | BATCH000001
    """)  # fmt: skip
    # The console's lineage of customer 2: its gold row is the second batch's, its CRM row
    # the first batch's (silver keeps a row until it changes), traced to that bronze row.
    entry = next(e for e in client1.lineage if e.gold == "dim_customers")
    traced = lineage(conn, client1, entry, ["2"])
    assert traced["gold"]["dwh_batch_id"] == B2
    assert [(r["cst_id"], r["dwh_batch_id"], r["_bronze"]["cst_firstname"]) for r in traced["silver"]] == [
        (2, B1, "Ann")
    ]


def test_an_erp_change_does_not_bring_back_a_vanished_customer(conn, client1, client_dags) -> None:
    """Day two's CRM file no longer holds customer 3 (vanished), and the ERP now knows its
    birth date: gold keeps customer 3 as the first batch wrote it (no batch after it
    brings the customer), while customer 2's corrected birth date is taken."""
    dag = client_dags["client1"]
    given(conn, "bronze_client1.crm_cust_info", DAY_ONE, batch=B1)
    given(conn, "bronze_client1.crm_cust_info", "\n".join(DAY_ONE.splitlines()[:-1]), batch=B2)
    given(conn, "bronze_client1.erp_cust_az12", """
        cid   | bdate      | gen
        AW2   | 1990-07-02 | Female
    """, batch=B1)  # fmt: skip
    given(conn, "bronze_client1.erp_cust_az12", """
        cid   | bdate      | gen
        AW2   | 1991-07-02 | Female   # corrected birth date
        AW3   | 1975-03-03 | Male     # known now, of a customer the CRM no longer holds
    """, batch=B2)  # fmt: skip
    for batch in (B1, B2):
        run_step(conn, dag, "silver.crm_cust_info", batch)
        run_step(conn, dag, "silver.erp_cust_az12", batch)
        run_step(conn, dag, "gold.dim_customers", batch)

    assert vanished(conn) == [(B2, [3])]
    expect(conn, "SELECT customer_id, gender, birthdate, dwh_batch_id FROM gold_client1.dim_customers", """
        customer_id | gender | birthdate  | dwh_batch_id
        1           | Male   |            | BATCH000001
        2           | Female | 1991-07-02 | BATCH000002
        3           | n/a    |            | BATCH000001
    """)  # fmt: skip


def test_the_row_count_gate_compares_what_a_snapshot_delivered(conn, client1) -> None:
    """silver keeps a snapshot's changes only, so the row-count gate compares the rows each
    snapshot delivered: a second snapshot of the same size passes though silver added no
    row for it, one that lost more than half its rows (max_row_drop) fails, naming both."""
    from include.etl.warehouse.quality import checks_for

    check = next(c for c in checks_for(client1, "silver") if c.kind == "row_count" and c.table == SILVER)
    conn.execute(
        """INSERT INTO tools.snapshot_delivery (client_schema, table_name, batch_id, delivered_rows,
               changed_rows, vanished_keys)
           VALUES ('client1', %(t)s, %(b1)s, 1000, 1000, 0), ('client1', %(t)s, %(b2)s, 1000, 0, 0),
                  ('client1', %(t)s, %(b3)s, 400, 0, 600)""",
        {"t": SILVER, "b1": B1, "b2": B2, "b3": B3},
    )
    conn.execute(
        """INSERT INTO tools.client_reference (client_schema, display_name, owner, config_file,
               config_version) VALUES ('client1', 'c1', 'o', 'client1.yaml', 'v') ON CONFLICT DO NOTHING"""
    )
    conn.execute(
        """INSERT INTO tools.batch (client_schema, batch_id, status, mode, config_version) VALUES
           ('client1', %s, 'SUCCESS', 'start', 'v'), ('client1', %s, 'SUCCESS', 'start', 'v')""",
        (B1, B2),
    )
    params = {"client": "client1"}
    assert check.verdict(conn.execute(check.sql, {**params, "batch_id": B2}).fetchone(), B2) is None
    assert check.verdict(conn.execute(check.sql, {**params, "batch_id": B3}).fetchone(), B3) == (
        f"{SILVER} row_count: 400 rows in {B3}, 60% fewer than the 1,000 of {B2} (at most 50% allowed)"
    )


def restart_with(conn, table: str, rows: str, batch: str) -> None:
    """What a restart with a fixed file does to a batch's bronze: its rows replaced."""
    conn.execute(f"DELETE FROM {table} WHERE dwh_batch_id = %s", (batch,))
    given(conn, table, rows, batch=batch)
    # the load re-creates the batch's table, which is what tells the step to run again
    conn.execute(
        "DELETE FROM tools.sql_step_state WHERE client_schema = 'client1' AND batch_id = %s", (batch,)
    )


def test_restarting_an_earlier_batch_recomputes_the_later_snapshots(conn, client1, client_dags) -> None:
    """B1 and B2 deliver the same customer 1; B2 changes customer 2. B1 is then restarted
    with another file: customer 1 misspelt, a customer 3 that B2 does not hold. B2's
    changes are computed again against B1's new rows, in the same transaction: B2 now
    adds customer 1 as it delivered it, and records customer 3 as vanished, as if the
    two batches had run in order with these files."""
    two_customers = """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        1      | AW1     | Jon           | Yang         | M                  | M        | 2024-01-01
        2      | AW2     | Ann           | Lee          | S                  | F        | 2024-01-02
    """
    given(conn, "bronze_client1.crm_cust_info", two_customers, batch=B1)
    given(conn, "bronze_client1.crm_cust_info", """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        1      | AW1     | Jon           | Yang         | M                  | M        | 2024-01-01  # unchanged
        2      | AW2     | Ann           | Lee-Smith    | M                  | F        | 2024-01-02  # married
    """, batch=B2)  # fmt: skip
    for batch in (B1, B2):
        silver_customers(conn, client_dags, batch)
    assert delivery(conn) == [(B1, 2, 2, 0), (B2, 2, 1, 0)]

    restart_with(conn, "bronze_client1.crm_cust_info", """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        1      | AW1     | Jon           | Yung         | M                  | M        | 2024-01-01
        2      | AW2     | Ann           | Lee          | S                  | F        | 2024-01-02
        3      | AW3     | Bo            | Ka           | M                  |          | 2024-01-03
    """, B1)  # fmt: skip
    silver_customers(conn, client_dags, B1)

    expect(conn, f"SELECT cst_id, cst_lastname, cst_marital_status, dwh_batch_id FROM {SILVER}", """
        cst_id | cst_lastname | cst_marital_status | dwh_batch_id
        1      | Yung         | Married            | BATCH000001
        2      | Lee          | Single             | BATCH000001
        3      | Ka           | Married            | BATCH000001
        1      | Yang         | Married            | BATCH000002
        2      | Lee-Smith    | Married            | BATCH000002
    """)  # fmt: skip
    assert vanished(conn) == [(B2, [3])]
    assert delivery(conn) == [(B1, 3, 3, 0), (B2, 2, 2, 1)]
    # B2's run is logged under B2 too, saying which batch's run caused it
    assert step_log(conn, "crm_cust_info") == [
        (B1, "SUCCESS", 2, None),
        (B2, "SUCCESS", 1, None),
        (B1, "SUCCESS", 3, None),
        (B2, "SUCCESS", 2, B1),
    ]


def test_after_an_earlier_batch_is_restarted_gold_follows_the_later_deliveries(
    conn, client1, client_dags
) -> None:
    """The same restart, then the restarted batch's dimension step: it runs for B1, then
    again for B2, whose silver the restart compared again. Customer 1 ends as B2
    delivered it (not as B1's fixed file spells it), as if the batches had run in order."""
    dag = client_dags["client1"]
    same_customer = """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        1      | AW1     | Jon           | Yang         | M                  | M        | 2024-01-01
    """
    for batch in (B1, B2):
        given(conn, "bronze_client1.crm_cust_info", same_customer, batch=batch)
        silver_customers(conn, client_dags, batch)
        run_step(conn, dag, "gold.dim_customers", batch)

    restart_with(conn, "bronze_client1.crm_cust_info", """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        1      | AW1     | Jon           | Yung         | M                  | M        | 2024-01-01
        3      | AW3     | Bo            | Ka           | M                  |          | 2024-01-03
    """, B1)  # fmt: skip
    silver_customers(conn, client_dags, B1)
    assert recompared_batches(conn, "client1", "gold", "dim_customers", B1) == [B2]
    run_step(conn, dag, "gold.dim_customers", B1)

    expect(conn, "SELECT customer_id, last_name, dwh_batch_id FROM gold_client1.dim_customers", """
        customer_id | last_name | dwh_batch_id
        1           | Yang      | BATCH000002
        3           | Ka        | BATCH000001
    """)  # fmt: skip
    # B2's run is recorded as the step's run for B2: running B1's again does not repeat it
    assert recompared_batches(conn, "client1", "gold", "dim_customers", B1) == []
    assert step_log(conn, "dim_customers")[-2:] == [(B1, "SUCCESS", 1, None), (B2, "SUCCESS", 1, B1)]


def test_a_later_batch_whose_bronze_is_gone_is_left_as_it_is(conn, client1, client_dags, capsys) -> None:
    """Retention deleted B2's bronze rows: B2 cannot be compared again, so restarting B1
    leaves B2's silver rows and counts as they are (never emptied), and the step's log
    says which batch was not compared again and why."""
    given(conn, "bronze_client1.crm_cust_info", DAY_ONE, batch=B1)
    given(conn, "bronze_client1.crm_cust_info", DAY_ONE + """
        4      | AW4     | Cy            | Do           | S                  | F        | 2024-02-01
    """, batch=B2)  # fmt: skip
    for batch in (B1, B2):
        silver_customers(conn, client_dags, batch)
    conn.execute("DELETE FROM bronze_client1.crm_cust_info WHERE dwh_batch_id = %s", (B2,))

    restart_with(conn, "bronze_client1.crm_cust_info", DAY_ONE.replace("Yang", "Yung"), B1)
    silver_customers(conn, client_dags, B1)

    expect(conn, f"SELECT cst_id, cst_lastname, dwh_batch_id FROM {SILVER}", """
        cst_id | cst_lastname | dwh_batch_id
        1      | Yung         | BATCH000001
        2      | Lee          | BATCH000001
        3      | Ka           | BATCH000001
        4      | Do           | BATCH000002
    """)  # fmt: skip
    assert delivery(conn) == [(B1, 3, 3, 0), (B2, 4, 1, 0)]
    assert (
        f"{SILVER}: {B2} delivered it after {B1}, but its rows in bronze_client1.crm_cust_info are "
        f"gone (retention): its changes and those of the batches after it were not compared again "
        f"with {B1}'s new rows"
    ) in capsys.readouterr().out


# ------------------------------------------------------------------ products
PRODUCTS = "silver_client1.crm_prd_info"


def silver_products(conn, client_dags, batch: str) -> None:
    run_step(conn, client_dags["client1"], "silver.crm_prd_info", batch)


def test_a_new_product_version_adds_it_and_the_version_it_ends(conn, client1, client_dags) -> None:
    """The products are a snapshot delivery: a day that brings a new version of a product
    adds it and the version before, whose derived end date moved; an unchanged product
    adds nothing. Gold takes the new current version."""
    day_one = """
        prd_id | prd_key          | prd_nm  | prd_cost | prd_line | prd_start_dt
        210    | CO-RF-FR-R92B-58 | Frame 1 | 100      | R        | 2023-01-01
        230    | AC-HE-HL-U509    | Helmet  | 35       | S        | 2024-01-01
    """
    given(conn, "bronze_client1.crm_prd_info", day_one, batch=B1)
    given(conn, "bronze_client1.crm_prd_info", day_one + """
        211    | CO-RF-FR-R92B-58 | Frame 2 | 120      | R        | 2024-01-01
    """, batch=B2)  # fmt: skip
    for batch in (B1, B2):
        silver_products(conn, client_dags, batch)
        run_step(conn, client_dags["client1"], "gold.dim_products", batch)

    expect(conn, f"SELECT prd_id, prd_nm, prd_start_dt, prd_end_dt, dwh_batch_id FROM {PRODUCTS}", """
        prd_id | prd_nm  | prd_start_dt | prd_end_dt | dwh_batch_id
        210    | Frame 1 | 2023-01-01   |            | BATCH000001
        230    | Helmet  | 2024-01-01   |            | BATCH000001
        210    | Frame 1 | 2023-01-01   | 2023-12-31 | BATCH000002
        211    | Frame 2 | 2024-01-01   |            | BATCH000002
    """)  # fmt: skip
    assert conn.execute(
        """SELECT batch_id, delivered_rows, changed_rows, vanished_keys FROM tools.snapshot_delivery
           WHERE client_schema = 'client1' AND table_name = %s ORDER BY batch_id""",
        (PRODUCTS,),
    ).fetchall() == [(B1, 2, 2, 0), (B2, 3, 2, 0)]
    expect(conn, "SELECT product_number, product_id, product_name, cost, dwh_batch_id FROM gold_client1.dim_products", """
        product_number | product_id | product_name | cost | dwh_batch_id
        FR-R92B-58     | 211        | Frame 2      | 120  | BATCH000002
        HL-U509        | 230        | Helmet       | 35   | BATCH000001
    """)  # fmt: skip


def test_a_category_change_alone_reaches_its_products_in_gold(conn, client1, client_dags) -> None:
    """The second day brings the same products, but one (HL-U510) has vanished, and the
    ERP renames a subcategory. Silver adds no product row; the products of that category
    still take the new name in gold, with the batch that wrote it. The vanished product
    keeps what it had: a category change does not bring it back."""
    dag = client_dags["client1"]
    products = """
        prd_id | prd_key          | prd_nm  | prd_cost | prd_line | prd_start_dt
        210    | CO-RF-FR-R92B-58 | Frame   | 100      | R        | 2023-01-01
        230    | AC-HE-HL-U509    | Helmet  | 35       | S        | 2024-01-01
    """
    given(conn, "bronze_client1.crm_prd_info", products + """
        240    | AC-HE-HL-U510    | Cap     | 12       | S        | 2024-01-01
    """, batch=B1)  # fmt: skip
    given(conn, "bronze_client1.crm_prd_info", products, batch=B2)
    categories = """
        id    | cat         | subcat      | maintenance
        CO_RF | Components  | Road Frames | No
        AC_HE | Accessories | {helmets}   | Yes
    """
    given(conn, "bronze_client1.erp_px_cat_g1v2", categories.format(helmets="Helmets"), batch=B1)
    given(conn, "bronze_client1.erp_px_cat_g1v2", categories.format(helmets="Headwear"), batch=B2)
    for batch in (B1, B2):
        silver_products(conn, client_dags, batch)
        run_step(conn, dag, "silver.erp_px_cat_g1v2", batch)
        run_step(conn, dag, "gold.dim_products", batch)

    assert conn.execute(f"SELECT count(*) FROM {PRODUCTS} WHERE dwh_batch_id = %s", (B2,)).fetchone() == (0,)
    expect(conn, "SELECT product_number, product_id, category, subcategory, dwh_batch_id FROM gold_client1.dim_products", """
        product_number | product_id | category    | subcategory | dwh_batch_id
        FR-R92B-58     | 210        | Components  | Road Frames | BATCH000001
        HL-U509        | 230        | Accessories | Headwear    | BATCH000002
        HL-U510        | 240        | Accessories | Helmets     | BATCH000001
    """)  # fmt: skip
