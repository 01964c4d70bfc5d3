"""A day's snapshot compared by the keys of its changed rows only (a step that declares
how a bronze row's key is computed, ``bronze_key``; include/etl/warehouse/snapshot.py)
gives exactly what comparing every key gives.

Each case is a run of days of client1's customers, ERP locations or ERP birth dates,
drawn at random from a seed: rows changed, deleted, added, moved, delivered twice (the
later or the dated one wins), keys without a value, for the ERP files keys that clean to
the same customer (``AW-1``, ``AW1``, ``NASAW1``), and birth dates around today (the
cleaning drops those in the future; the days here all run today, so the dates between two
days' runs are tests/rules/test_snapshot_clock.py's). The days run through the silver step as the DAG runs it (changed
keys only, where it may), then again from an empty table with every key compared; silver,
the deliveries and the vanished keys must be the same row for row.
"""

from __future__ import annotations

import datetime
import random

import pytest

from tests.rules.tables import given, run_snapshot_step, run_step

DAYS = 5
FIRST = ["Jon", "Ann", "Bo", "Di", "Eve", " Max ", ""]
LAST = ["Yang", "Lee", "Ka", "Wu", "Ng", "Smith "]
COUNTRIES = ["DE", "Germany", "US", "USA", "United States", " UK", "GB", "France", "", "Spain"]


def customer(rng: random.Random, cst_id: int | None) -> str:
    date = f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}" if rng.random() < 0.8 else ""
    return " | ".join(
        [
            "" if cst_id is None else str(cst_id),
            f"AW{cst_id or 0}",
            repr(rng.choice(FIRST)).replace('"', "'"),
            rng.choice(LAST).strip(),
            rng.choice(["M", "S", "m", ""]),
            rng.choice(["M", "F", "f", ""]),
            date,
        ]
    )


def birth(rng: random.Random, number: int) -> str:
    cid = rng.choice([f"NASAW{number:05d}", f"AW-{number:05d}", f" AW{number:05d} ", "NAS", "", "-"])
    today = datetime.date.today()
    dates = [today - datetime.timedelta(days=d) for d in (20000, 9000, 2, 1, 0, -1, -2, -400)]
    bdate = str(rng.choice(dates)) if rng.random() < 0.9 else ""
    return f"{cid!r} | {bdate} | {rng.choice(['M', 'Male', ' f ', 'FEMALE', 'x', ''])!r}".replace('"', "'")


def location(rng: random.Random, number: int) -> str:
    cid = rng.choice([f"AW-{number:05d}", f"AW{number:05d}", f" AW{number:05d} ", "-", ""])
    return f"{cid!r} | {rng.choice(COUNTRIES)!r}".replace('"', "'")


TABLES = {
    "crm_cust_info": (
        "cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date",
        lambda rng, n: customer(rng, None if rng.random() < 0.03 else n),
    ),
    "erp_loc_a101": ("cid | cntry", location),
    "erp_cust_az12": ("cid | bdate | gen", birth),
}


def days(rng: random.Random, draw) -> list[list[str]]:
    """Five days of rows: each the day before with some rows changed, deleted, added,
    moved or delivered twice; sometimes the day before again, unchanged."""
    numbers = list(range(1, 31))
    rows = [draw(rng, n) for n in numbers]
    out = [rows]
    for _ in range(DAYS - 1):
        rows = list(rows)
        if rng.random() < 0.2:  # the same file again
            out.append(rows)
            continue
        for i in range(len(rows)):
            if rng.random() < 0.15:
                rows[i] = draw(rng, rng.choice(numbers))  # changed, perhaps to another key
        for _ in range(rng.randint(0, 2)):
            if rows:
                del rows[rng.randrange(len(rows))]
        for _ in range(rng.randint(0, 3)):
            n = rng.choice([*numbers, max(numbers) + 1])
            numbers.append(n)
            rows.insert(rng.randrange(len(rows) + 1), draw(rng, n))  # new, or a key delivered twice
        if rng.random() < 0.3 and len(rows) > 2:  # two rows trade places
            i = rng.randrange(len(rows) - 1)
            rows[i], rows[i + 1] = rows[i + 1], rows[i]
        out.append(rows)
    return out


def state(conn, table: str) -> tuple:
    """Silver's rows (without when they were written), the deliveries and the vanished keys."""
    silver = conn.execute(
        f"SELECT to_jsonb(t) - 'dwh_loaded_at' FROM silver_client1.{table} AS t ORDER BY (to_jsonb(t) - 'dwh_loaded_at')::text"
    ).fetchall()
    deliveries = conn.execute(
        """SELECT batch_id, delivered_rows, changed_rows, vanished_keys FROM tools.snapshot_delivery
           WHERE client_schema = 'client1' AND table_name = %s ORDER BY batch_id""",
        (f"silver_client1.{table}",),
    ).fetchall()
    vanished = conn.execute(
        """SELECT batch_id, key FROM tools.snapshot_vanished
           WHERE client_schema = 'client1' AND table_name = %s ORDER BY batch_id, key::text""",
        (f"silver_client1.{table}",),
    ).fetchall()
    return silver, deliveries, vanished


@pytest.mark.parametrize("table", sorted(TABLES))
@pytest.mark.parametrize("seed", range(8))
def test_changed_keys_only_give_what_every_key_gives(conn, client1, client_dags, table, seed) -> None:
    header, draw = TABLES[table]
    rng = random.Random(f"{table}-{seed}")
    batches = [f"BATCH{i:06d}" for i in range(1, DAYS + 1)]
    dag = client_dags["client1"]
    bronze, target = f"bronze_client1.{table}", f"silver_client1.{table}"
    logical = {"crm_cust_info": "cust_info", "erp_loc_a101": "LOC_A101", "erp_cust_az12": "CUST_AZ12"}[table]
    for batch, rows in zip(batches, days(rng, draw), strict=True):
        given(conn, bronze, "\n".join([header, *rows]), batch=batch)
        conn.execute(
            """INSERT INTO tools.batch (client_schema, batch_id, mode, config_version)
               VALUES ('client1', %s, 'start', 'test')""",
            (batch,),
        )
        conn.execute(  # the file's hash, as the convert task records it
            """INSERT INTO tools.file_audit_log (client_schema, batch_id, logical_source_file,
                   source_system, file_sha256) VALUES ('client1', %s, %s, 'crm', md5(%s))""",
            (batch, logical, "\n".join(rows)),
        )
        run_step(conn, dag, f"silver.{table}", batch)
    as_run = state(conn, table)
    compared = dict(
        conn.execute(
            """SELECT batch_id, compared_keys FROM tools.snapshot_delivery
               WHERE client_schema = 'client1' AND table_name = %s""",
            (target,),
        ).fetchall()
    )

    # every key compared, from an empty table
    conn.execute(f"DELETE FROM {target}")
    for side in ("snapshot_delivery", "snapshot_vanished", "sql_step_state"):
        conn.execute(f"DELETE FROM tools.{side} WHERE client_schema = 'client1'")
    task = dag.get_task(f"silver.{table}")
    text = task.render_template(task.sql, {}, jinja_env=dag.get_template_env())
    for batch in batches:
        assert run_snapshot_step(conn, target, task.snapshot_key, text, batch) is None

    assert as_run == state(conn, table)
    # the days after the first compared their changed keys only (or were the same again)
    assert compared[batches[0]] is None and all(compared[b] is not None for b in batches[1:]), compared
