"""The measured steps, each run in a process of its own (``python -m benchmarks.steps
<name> <json params>``): the project's code as the DAG's tasks run it, and the
baselines it is compared with. Each prints one ``BENCH {...}`` line (``common.report``):
seconds, rows and the process's peak resident memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import BATCH, ROOT, SALES, client1, report
from benchmarks.extract import step_extract_group  # noqa: F401  (a step of its own module)


# ============================================================================ steps (child side)
def step_convert_project(p: dict) -> None:
    """The raw-file work of the convert task: ``convert_to_parquet`` reads the CSV once,
    writing the Parquet, hashing the bytes (the sha256 the task records) and counting
    their quotes (the unclosed-quote check) as it goes."""
    from include.etl.ingest.convert import convert_to_parquet

    _, spec = client1().file(SALES)
    started = time.perf_counter()
    result = convert_to_parquet(Path(p["src"]), Path(p["dest"]), spec)
    report(seconds=time.perf_counter() - started, rows=result.rows, sha256=result.sha256)


def step_convert_polars(p: dict) -> None:
    import polars as pl

    started = time.perf_counter()
    pl.scan_csv(p["src"], infer_schema=False).sink_parquet(
        p["dest"], compression="snappy", row_group_size=256 * 1024
    )
    seconds = time.perf_counter() - started
    report(seconds=seconds, rows=pl.scan_parquet(p["dest"]).select(pl.len()).collect().item())


def step_convert_pandas(p: dict) -> None:
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_csv(p["src"], dtype=str, keep_default_na=False, na_values=[""])
    frame.to_parquet(p["dest"], compression="snappy", index=False)
    report(seconds=time.perf_counter() - started, rows=len(frame))


def typed_file(parquet: Path, logical: str, src: str, batch: str = BATCH):
    """The typed rows validation writes for the load, where the DAG's task writes them
    (``include.etl.ingest.landing.typed_name``, beside the converted file)."""
    from include.etl.ingest.bronze import TypedFile
    from include.etl.ingest.landing import typed_name

    _, spec = client1().file(logical)
    return TypedFile(parquet.with_name(typed_name(parquet.name)), spec, parquet, batch, Path(src).name)


def step_validate(p: dict) -> None:
    """What the validate_rows task does: check every row, write the typed rows for the load."""
    import include.etl.ingest.bronze  # noqa: F401  (imported by the task's module, not timed)
    from include.etl.ingest.validation import validate_rows

    logical = p.get("logical", SALES)
    _, spec = client1().file(logical)
    parquet = Path(p["parquet"])
    started = time.perf_counter()
    typed = typed_file(parquet, logical, p["src"])
    result = validate_rows(parquet, spec, typed=typed)
    typed.commit(r.row_number for r in result.rejects)
    seconds = time.perf_counter() - started
    Path(p["rejects"]).write_text(json.dumps([r.row_number for r in result.rejects]))
    report(seconds=seconds, rows=result.total, rejected=result.rejected, typed_rows=typed.rows)


def step_bronze_project(p: dict) -> None:
    """What the load_bronze task does: stream validation's typed rows into bronze."""
    from include.etl.ingest.bronze import load_bronze
    from include.etl.ingest.landing import typed_name
    from include.etl.warehouse.connection import connect

    cfg = client1()
    _, spec = cfg.file(p.get("logical", SALES))
    skip = set(json.loads(Path(p["rejects"]).read_text()))
    parquet = Path(p["parquet"])
    typed = parquet.with_name(typed_name(parquet.name))
    with connect(p["dsn"]) as conn:
        conn.autocommit = True
        started = time.perf_counter()
        rows = load_bronze(conn, cfg, spec, parquet, BATCH, Path(p["src"]).name, skip, typed=typed)
        report(seconds=time.perf_counter() - started, rows=rows)


def step_bronze_adbc(p: dict) -> None:
    """The floor: typed Arrow rows (prepared beforehand) into a bare table, binary COPY."""
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow.parquet as pq

    source = pq.ParquetFile(p["typed"])
    with adbc.connect(p["dsn"], autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_baseline.adbc_sales")
        cur.execute(
            "CREATE TABLE bench_baseline.adbc_sales"
            " (LIKE bronze_client1.crm_sales_details INCLUDING DEFAULTS)"
        )
        conn.commit()
        started = time.perf_counter()
        reader = source.iter_batches(batch_size=128 * 1024)
        import pyarrow as pa

        rows = cur.adbc_ingest(
            "adbc_sales",
            pa.RecordBatchReader.from_batches(source.schema_arrow, reader),
            mode="append",
            db_schema_name="bench_baseline",
        )
        conn.commit()
        report(seconds=time.perf_counter() - started, rows=rows)


def step_psql_copy(p: dict) -> None:
    started = time.perf_counter()
    out = subprocess.run(
        [
            "psql",
            p["dsn"],
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            "TRUNCATE bench_baseline.csv_sales",
            "-c",
            f"\\copy bench_baseline.csv_sales FROM '{p['src']}' WITH (FORMAT csv, HEADER true)",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    rows = int(out.stdout.split()[-1]) if out.stdout.strip() else None
    report(seconds=seconds, rows=rows)


def step_bronze_others(p: dict) -> None:
    """The other five files, convert + validate + load (not compared, needed by silver)."""
    from include.etl.ingest.bronze import load_bronze
    from include.etl.ingest.convert import convert_to_parquet
    from include.etl.ingest.validation import validate_rows
    from include.etl.warehouse.connection import connect

    cfg = client1()
    total = 0
    started = time.perf_counter()
    with connect(p["dsn"]) as conn:
        conn.autocommit = True
        for logical, src in p["files"].items():
            system, spec = cfg.file(logical)
            parquet = Path(p["out"]) / f"{logical}.parquet"
            converted = convert_to_parquet(Path(src), parquet, spec)
            batch = p.get("batch", BATCH)
            typed = typed_file(parquet, logical, src, batch)
            rejects = {r.row_number for r in validate_rows(parquet, spec, typed=typed).rejects}
            typed.commit(rejects)
            total += load_bronze(conn, cfg, spec, parquet, batch, Path(src).name, rejects, typed=typed.path)
            # the file's hash, as the convert task records it (a snapshot step reads it)
            conn.execute(
                """INSERT INTO tools.batch (client_schema, batch_id, mode, config_version)
                   VALUES (%s, %s, 'start', 'bench') ON CONFLICT DO NOTHING""",
                (cfg.client, batch),
            )
            conn.execute(
                """INSERT INTO tools.file_audit_log
                       (client_schema, batch_id, logical_source_file, source_system, file_sha256)
                   VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (client_schema, batch_id, logical_source_file)
                   DO UPDATE SET file_sha256 = EXCLUDED.file_sha256""",
                (cfg.client, batch, logical, system.name, converted.sha256),
            )
    report(seconds=time.perf_counter() - started, rows=total)


def step_typed_copy(p: dict) -> None:
    """The rows bronze receives, typed, with their lineage: the ADBC baseline's input.

    A step of its own, so the parent stays small: a child's ru_maxrss starts from the
    parent's resident size at fork.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from include.etl.ingest.validation import pg_type, pg_values

    parquet, rejects, dest = Path(p["parquet"]), Path(p["rejects"]), Path(p["dest"])
    _, spec = client1().file(SALES)
    skip = np.array(json.loads(rejects.read_text()), dtype=np.int64)
    table = pq.read_table(parquet)
    numbers = np.arange(1, table.num_rows + 1, dtype=np.int64)
    keep = ~np.isin(numbers, skip)
    table, numbers = table.filter(pa.array(keep)), numbers[keep]
    arrays = []
    for c in spec.columns:
        values = table.column(c.source).combine_chunks()
        arrays.append(pg_values(values, c, pg_type(c, values)))
    n = table.num_rows
    arrays += [pa.repeat(pa.scalar(BATCH), n), pa.repeat(pa.scalar(f"{SALES}.csv"), n), pa.array(numbers)]
    names = [c.name for c in spec.columns] + ["dwh_batch_id", "dwh_source_file", "dwh_row_number"]
    pq.write_table(pa.table(arrays, names=names), dest, row_group_size=256 * 1024)
    report(seconds=0.0, rows=n)


class BackendMemory:
    """How much private memory (``RssAnon``: sorts, hash tables) one database backend
    takes on while a step runs, above what it held when the step began: sampled every
    20 ms from /proc. None when the backend is not a process this one can see (a server
    on another machine or in another container, /proc hidden). Parallel workers are
    processes of their own and are not counted."""

    def __init__(self, pid: int) -> None:
        import threading

        self._status = Path(f"/proc/{pid}/status")
        try:
            self._local = "postgres" in Path(f"/proc/{pid}/comm").read_text()
            self._start_kb = self._read() if self._local else 0
        except OSError:
            self._local = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak_kb = 0

    def _read(self) -> int:
        for line in self._status.read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
        return 0

    def _sample(self) -> None:
        while True:
            try:
                self.peak_kb = max(self.peak_kb, self._read() - self._start_kb)
            except OSError:  # the backend went away
                return
            if self._stop.wait(0.02):
                return

    def __enter__(self) -> BackendMemory:
        if self._local:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._local:
            self._stop.set()
            self._thread.join()

    @property
    def peak_mb(self) -> float | None:
        return round(self.peak_kb / 1024, 1) if self._local else None


def step_sql(p: dict) -> None:
    """The silver, gold and view steps of the batch, as the DAG's operator runs them
    (``include.etl.warehouse.sqlstep.run_step``: one transaction per SQL file, batch_id bound, a step
    skipped when nothing it reads changed; ``force`` runs every step regardless)."""
    import logging

    import psycopg
    from psycopg import sql

    from include.etl.warehouse.connection import one_row
    from include.etl.warehouse.snapshot import batch_step_text
    from include.etl.warehouse.sqlstep import run_step

    logging.basicConfig(level=logging.WARNING)
    log = logging.getLogger("bench.sql")
    cfg = client1()
    steps: list[tuple[str, str, str | None, str]]
    steps = [("silver", s.name, s.sql, f"{cfg.silver_schema}.{s.table}") for s in cfg.silver]
    steps += [("gold", s.name, s.sql, f"{cfg.gold_schema}.{s.table}") for s in cfg.gold]
    steps += [("views", v.name, v.sql, f"{cfg.gold_schema}.{v.name}") for v in cfg.views]
    snapshot_keys = {s.name: s.snapshot_key for s in cfg.silver}  # as the DAG's tasks
    bronze_keys = {s.name: s.bronze_key for s in cfg.silver}
    results = {}
    batch = p.get("batch", BATCH)
    with psycopg.connect(p["dsn"], autocommit=True) as conn:
        for layer, name, path, target in steps:
            key = snapshot_keys.get(name) if layer == "silver" else None
            if path is None:
                text = f'REFRESH MATERIALIZED VIEW "{cfg.gold_schema}"."{name}"'
            else:
                text = cfg.render_sql(path)
            # as the operator: the snapshot's checks and the step in one transaction
            with conn.transaction(), BackendMemory(conn.info.backend_pid) as memory:
                started = time.perf_counter()
                if key:  # a snapshot delivered again, or its changed keys only
                    text, _ = batch_step_text(
                        conn, cfg.client, target, key, text, batch, cfg.bronze_files, bronze_keys[name]
                    )
                decided = time.perf_counter() - started
                res = run_step(
                    conn,
                    client=cfg.client,
                    layer=layer,
                    step=name,
                    target=target,
                    sql_text=text,
                    batch_id=batch,
                    log=log,
                    skip_unchanged=not p.get("force"),
                )
            table = sql.Identifier(*target.split("."))
            query = sql.SQL("SELECT count(*) FROM {}").format(table)
            if layer != "views":
                query += sql.SQL(" WHERE dwh_batch_id = %s")
            rows = one_row(conn.execute(query, (batch,) if layer != "views" else None))[0]
            results[f"{layer}.{name}"] = {
                "seconds": res.seconds + decided,  # with the check for a snapshot delivered again
                "rows": rows,
                "skipped": res.skipped,
                "peak_rss_mb": memory.peak_mb,  # the database backend's (see BackendMemory)
            }
        # What recomputing the summaries from the whole fact table costs (a REFRESH's work),
        # as the baseline of the per-batch updates above.
        # (``"whole": false`` leaves it out: the history's interleaved samples.)
        started = time.perf_counter()
        for summary in WHOLE_SUMMARIES if p.get("whole", True) else ():
            conn.execute(f"CREATE TEMP TABLE whole AS {summary}")
            conn.execute("DROP TABLE whole")
        full = time.perf_counter() - started
    report(steps=results, views_full_seconds=full)


# client1's two summaries computed from the whole fact table (what a REFRESH of the
# materialized views they replaced did after every batch; sql/templates/retail_crm_erp/views/).
WHOLE_SUMMARIES = (
    """SELECT date_trunc('month', f.order_date)::date AS sales_month,
              coalesce(p.product_line, 'n/a') AS product_line,
              count(DISTINCT f.order_number) AS orders, count(*) AS sales_lines,
              count(DISTINCT f.customer_key) AS customers, sum(f.quantity) AS quantity,
              sum(f.sales_amount) AS sales_amount
       FROM gold_client1.fact_sales AS f
       LEFT JOIN gold_client1.dim_products AS p ON p.product_key = f.product_key
       WHERE f.order_date IS NOT NULL
       GROUP BY 1, 2""",
    """SELECT c.customer_key, c.customer_id, c.customer_number, c.first_name, c.last_name,
              c.country, count(DISTINCT f.order_number) AS orders,
              count(f.order_number) AS sales_lines, coalesce(sum(f.quantity), 0) AS quantity,
              coalesce(sum(f.sales_amount), 0) AS lifetime_value,
              round(coalesce(sum(f.sales_amount), 0)
                    / nullif(count(DISTINCT f.order_number), 0), 2) AS average_order_value,
              min(f.order_date) AS first_order_date, max(f.order_date) AS last_order_date
       FROM gold_client1.dim_customers AS c
       LEFT JOIN gold_client1.fact_sales AS f ON f.customer_key = c.customer_key
       GROUP BY c.customer_key""",
)


def step_migrate(p: dict) -> None:
    import psycopg

    from include.etl.warehouse.migrations import migrate

    with psycopg.connect(p["dsn"], autocommit=True) as conn:
        started = time.perf_counter()
        applied = migrate(conn, [client1()])
        report(seconds=time.perf_counter() - started, migrations=len(applied))


def step_e2e(p: dict) -> None:
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    from include.etl.orchestration.factory import build_all

    dags, errors = build_all()
    if errors:
        raise SystemExit(f"config errors: {errors}")
    # dag.test() serves Airflow's execution API in this process, created on its first
    # task (~2 s: the FastAPI app), and its versioned routes are generated on the first
    # request it serves (Cadwyn, ~5 s). A deployment's API server has done both before the
    # day's files arrive, so both happen before the clock, timed on their own.
    import httpx

    started = time.perf_counter()
    api = in_process_api_server()
    with httpx.Client(transport=api.transport, base_url="http://in-process") as client:
        client.get("/health")  # any request: its answer does not matter
    api_seconds = time.perf_counter() - started
    started = time.perf_counter()
    run = dags["client1"].test(run_conf={"mode": "start"})
    seconds = time.perf_counter() - started
    report(seconds=seconds, state=str(run.state), api_start_seconds=api_seconds)


def step_parse_dag_processor(p: dict) -> None:
    """What the DAG processor's parsing process does with a DAG file (``file``, the first
    client DAG file by default): fill a DagBag (import, checks, the SQL template files read) and serialize
    every DAG. Airflow itself is imported beforehand, untimed: that process is forked
    from one that has it, and that has imported the Airflow modules the file imports
    (``[dag_processor] parsing_pre_import_modules``, done by the processor before it forks)."""
    import structlog
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.dag_processing.processor import _pre_import_airflow_modules
    from airflow.serialization.serialized_objects import DagSerialization

    dag_file = Path(p.get("file", ROOT / "dags" / "client_pipelines_0.py"))
    _pre_import_airflow_modules(str(dag_file), structlog.get_logger())
    started = time.perf_counter()
    bag = BundleDagBag(
        dag_folder=str(dag_file),
        bundle_path=dag_file.parent,
        bundle_name="dags-folder",
        load_op_links=False,
    )
    bagged = time.perf_counter()
    serialized = [DagSerialization.to_dict(dag) for dag in bag.dags.values()]
    done = time.perf_counter()
    report(
        seconds=done - started,
        dagbag_seconds=bagged - started,
        serialize_seconds=done - bagged,
        dags=len(serialized),
        errors=len(bag.import_errors),
    )


def main(argv: list[str]) -> None:
    steps = {name.removeprefix("step_"): fn for name, fn in globals().items() if name.startswith("step_")}
    steps[argv[1]](json.loads(argv[2]) if len(argv) > 2 else {})


if __name__ == "__main__":
    main(sys.argv)
