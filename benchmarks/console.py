"""The operator console with history: each page's answer time from a real api-server
(the plugin loaded, a signed-in user) over a warehouse whose ``tools`` log holds 1,000
batches of client1 and 500,000 rejected rows. The median of 5 requests per page. And the
Lineage page's queries over the SQL bench's warehouse after its history (``measure_lineage``):
the one page whose answer depends on the layers' size."""

from __future__ import annotations

import json
import secrets
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from benchmarks.common import client1, libpq
from benchmarks.report import Results
from include.etl.console import queries
from include.etl.warehouse.connection import one_row
from include.etl.warehouse.migrations import migrate
from scripts.airflow_stack import AirflowStack, database_beside, fresh_database

BATCHES = 1000
REJECTED = 500_000
FILES = ("cust_info", "prd_info", "sales_details", "CUST_AZ12", "LOC_A101", "PX_CAT_G1V2")


def seed(dsn: str) -> None:
    """client1's tools log: ``BATCHES`` batches of six files, their tasks and SQL steps,
    and ``REJECTED`` rejected rows spread over them (the last batch FAILED)."""
    cfg = client1()
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn, [cfg])
        conn.execute(
            """INSERT INTO tools.batch
                   (client_schema, batch_id, status, mode, config_version, started_at, ended_at)
               SELECT 'client1', 'BATCH' || lpad(n::text, 6, '0'),
                      CASE WHEN n = %(n)s THEN 'FAILED' ELSE 'SUCCESS' END, 'start', 'bench',
                      now() - (%(n)s - n) * interval '1 day',
                      now() - (%(n)s - n) * interval '1 day' + interval '90 s'
               FROM generate_series(1, %(n)s) AS n""",
            {"n": BATCHES},
        )
        conn.execute(
            """INSERT INTO tools.batch_run (client_schema, dag_run_id, batch_id, mode)
               SELECT 'client1', 'scheduled__' || n, 'BATCH' || lpad(n::text, 6, '0'), 'start'
               FROM generate_series(1, %(n)s) AS n""",
            {"n": BATCHES},
        )
        conn.execute(
            """INSERT INTO tools.file_audit_log (client_schema, batch_id, logical_source_file, source_system,
                   physical_file_name, convert_status, mapping_validation_status, row_validation_status,
                   load_status, total_rows, rejected_rows, loaded_rows, file_size_bytes, file_sha256)
               SELECT 'client1', 'BATCH' || lpad(n::text, 6, '0'), f, 'crm', f || '.csv',
                      'SUCCESS', 'SUCCESS',
                      'WARNING', 'SUCCESS', 20000, %(per)s, 20000 - %(per)s, 2000000, md5(f || n)
               FROM generate_series(1, %(n)s) AS n, unnest(%(files)s::text[]) AS f""",
            {"n": BATCHES, "files": list(FILES), "per": REJECTED // BATCHES // len(FILES)},
        )
        conn.execute(
            """INSERT INTO tools.job_execution_log (client_schema, batch_id, dag_run_id, task_id, try_number,
                   status, message, started_at, ended_at)
               SELECT 'client1', 'BATCH' || lpad(n::text, 6, '0'), 'scheduled__' || n, t, 1,
                      CASE WHEN n = %(n)s AND t = 'quality.gold' THEN 'FAILED' ELSE 'SUCCESS' END,
                      'checked', now(), now()
               FROM generate_series(1, %(n)s) AS n,
                    unnest(ARRAY['open_batch', 'quality.silver', 'quality.gold', 'close_batch']) AS t""",
            {"n": BATCHES},
        )
        conn.execute(
            """INSERT INTO tools.sql_step_log (client_schema, batch_id, layer, step_name, target_table,
                   status,
                   rows_in_batch, try_number, started_at, ended_at)
               SELECT 'client1', 'BATCH' || lpad(n::text, 6, '0'), 'silver', s, 'silver_client1.' || s,
                      'SUCCESS', 20000, 1, now(), now()
               FROM generate_series(1, %(n)s) AS n,
                    unnest(ARRAY['crm_cust_info', 'crm_prd_info', 'crm_sales_details']) AS s""",
            {"n": BATCHES},
        )
        conn.execute(
            """INSERT INTO tools.rejected_rows (client_schema, batch_id, logical_source_file,
                   physical_file_name,
                   source_row_number, column_name, reason, raw_record)
               SELECT 'client1', 'BATCH' || lpad((1 + i / %(per_batch)s)::text, 6, '0'), f, f || '.csv',
                      i, 'sls_sales', 'not a number: ''x' || i || '''',
                      jsonb_build_object('sls_ord_num', 'SO' || i, 'sls_sales', 'x' || i)
               FROM generate_series(0, %(rows)s - 1) AS i,
                    LATERAL (SELECT (%(files)s::text[])[1 + i %% 6] AS f) AS file""",
            {"rows": REJECTED, "per_batch": REJECTED // BATCHES, "files": list(FILES)},
        )
        conn.execute("ANALYZE")


def measure_console(results: Results, warehouse_base: str, metadata_base: str) -> None:
    print(f"console: {BATCHES} batches, {REJECTED:,} rejected rows", flush=True)
    parts = urlsplit(warehouse_base)
    warehouse = urlunsplit(parts._replace(path="/bench_console"))
    fresh_database(warehouse)
    seed(libpq(warehouse))
    metadata = database_beside(metadata_base, "console")
    last = f"BATCH{BATCHES:06d}"
    pages = {
        "clients": "/console/",
        "batch": f"/console/clients/client1/batches/{last}",
        "rejected": f"/console/clients/client1/batches/{last}/rejected",
        "rejected_filtered": (
            f"/console/clients/client1/batches/{last}/rejected?file=sales_details&column=sls_sales"
        ),
        "rejected_csv": f"/console/clients/client1/batches/{last}/rejected.csv",
    }
    with tempfile.TemporaryDirectory() as folder:
        password = secrets.token_urlsafe(16)
        (Path(folder) / "passwords.json").write_text(json.dumps({"bench": password}))
        env = {
            "AIRFLOW_CONN_WAREHOUSE": warehouse,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "bench:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": f"{folder}/passwords.json",
        }
        with AirflowStack(Path(folder) / "airflow", metadata, env) as stack:
            stack.start("api-server")
            base = f"http://127.0.0.1:{stack.port}"
            token = stack.token("bench", password)
            for name, path in pages.items():
                times = []
                for _ in range(6):  # the first warms the route up, not counted
                    request = urllib.request.Request(
                        base + path, headers={"Authorization": f"Bearer {token}"}
                    )
                    started = time.perf_counter()
                    with urllib.request.urlopen(request, timeout=60) as response:
                        response.read()
                    times.append(time.perf_counter() - started)
                ms = statistics.median(times[1:]) * 1000
                results.values[f"console_{name}_ms"] = round(ms, 1)
                results.line(f"console page {name} (median of 5)", ms / 1000)
    results.values["console_slowest_page_ms"] = max(
        results.values[f"console_{name}_ms"] for name in pages if name != "rejected_csv"
    )


def measure_lineage(results: Results, dsn: str) -> None:
    """The Lineage page's queries (``queries.lineage``) on the SQL bench's warehouse after
    its history (11 batches, 2.46M fact lines): a sales line of the first batch (2M lines)
    and of the latest (52k), a customer, a customer whose CRM row is older than its gold
    row (the lookup's fallback) and a product, on a read-only connection as the console
    opens one. The median of 5 lookups after one to warm the cache, in ms."""
    cfg = client1()
    with psycopg.connect(dsn) as conn:
        first_and_latest = "SELECT min(dwh_batch_id), max(dwh_batch_id) FROM gold_client1.fact_sales"
        batches = one_row(conn.execute(first_and_latest))
        lines = [
            one_row(
                conn.execute(
                    """SELECT order_number, product_number FROM gold_client1.fact_sales
                       WHERE dwh_batch_id = %s ORDER BY order_number, product_number LIMIT 1""",
                    (batch,),
                )
            )
            for batch in batches
        ]
        (customer,) = one_row(conn.execute("SELECT min(customer_id) FROM gold_client1.dim_customers"))
        (product,) = one_row(conn.execute("SELECT min(product_number) FROM gold_client1.dim_products"))
        # a customer whose gold row a later batch wrote (an ERP change) while its CRM row
        # is older: the lookup that falls back to the latest batch before the gold row's
        (older,) = one_row(
            conn.execute(
                """SELECT min(d.customer_id) FROM gold_client1.dim_customers AS d
                   WHERE d.dwh_batch_id > 'BATCH000001' AND NOT EXISTS (
                       SELECT FROM silver_client1.crm_cust_info AS s
                       WHERE s.cst_id = d.customer_id AND s.dwh_batch_id = d.dwh_batch_id)"""
            )
        )
    cases = {
        "first_batch_line": ("fact_sales", lines[0]),
        "latest_batch_line": ("fact_sales", lines[1]),
        "customer": ("dim_customers", (customer,)),
        "customer_older_crm_row": ("dim_customers", (older,)),
        "product": ("dim_products", (product,)),
    }
    found: dict[str, float] = {}
    with psycopg.connect(dsn) as conn:
        conn.read_only = True
        for name, (table, key) in cases.items():
            entry = next(e for e in cfg.lineage if e.gold == table)
            times = []
            for _ in range(6):  # the first warms the cache up, not counted
                started = time.perf_counter()
                traced = queries.lineage(conn, cfg, entry, [str(v) for v in key])
                times.append(time.perf_counter() - started)
                conn.rollback()
            if not traced["gold"] or not traced["silver"] or not traced["silver"][0]["_bronze"]:
                raise RuntimeError(f"lineage of {table} {key}: not traced to bronze ({traced})")
            found[name] = round(statistics.median(times[1:]) * 1000, 1)
            results.line(f"  lineage of a {name.replace('_', ' ')} (median of 5)", found[name] / 1000)
    results.values["lineage_ms"] = found
    results.values["lineage_slowest_ms"] = max(found.values())
