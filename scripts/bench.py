"""`make bench`: the hot path of a client1 batch, measured against its baselines.

Generates client1-shaped files (``--rows`` sales lines, 2M by default), then measures in
one run, on the same data, each step in a process of its own (seconds, rows/s and the
peak resident memory of that process):

* convert: the project's CSV -> Parquet vs polars ``sink_parquet`` vs pandas;
* validate: the project's row validation, as the validate_rows task runs it (with the
  typed rows it writes for the load);
* bronze: the project's load, as the load_bronze task runs it (streaming those typed
  rows) vs ADBC binary COPY of the same typed rows into a bare table vs ``psql \\copy``
  of the source CSV (text columns); validate and the loads run interleaved;
* the SQL stage: each silver, gold and view step of the batch, then the same steps again
  for the same batch (a re-run that changes nothing);
* the whole client DAG with ``dag.test()``, from files in incoming to refreshed views,
  and the same run as a deployment runs it: the scheduler, the api-server and
  LocalExecutor workers, each task in a process of its own;
* the DAG parse time of the factory with 500 synthetic clients of 8 files each: the DAG
  file's import, and what the DAG processor does with it (DagBag and serialization).

Peak memory is the step's process's; for the SQL steps, whose work is in the database,
it is what the database backend took on during the step (``BackendMemory``).

Everything runs against a database of its own (``--db``, default ``bench``, created and
emptied here; Airflow's metadata goes to ``<db>_airflow``, and to
``<db>_airflow_scheduler`` for the scheduler's run, whose Airflow home and service logs
are in ``.local/bench/airflow-scheduler``) and a landing folder under ``.local/bench``.
Prints a table and writes ``bench-results.json``; ratios are the
project's time over the baseline's. Timing is reported, never asserted.

    scripts/with-env python scripts/bench.py --rows 2000000
    scripts/with-env python scripts/bench.py --only bronze --repeat 5   # convert once, validate + loads
    scripts/with-env python scripts/bench.py --only parse               # the parse steps and their floor
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".local" / "bench"
LANDING = WORK / "landing"  # the landing root of the whole runs
BATCH = "BATCH000001"
NEXT = "BATCH000002"  # the next delivery, a tenth the size
SALES = "sales_details"
MARK = "BENCH "


# ============================================================================ helpers
def db_url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


def libpq(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1).replace(
        "postgresql+psycopg2://", "postgresql://", 1
    )


def peak_mb() -> float:
    """Peak RSS of this process and of its finished children, in MB (ru_maxrss is KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def report(**values: object) -> None:
    values.setdefault("peak_rss_mb", round(peak_mb(), 1))
    print(MARK + json.dumps(values), flush=True)


def client1():
    from include.etl.config import config_for

    return config_for("client1")


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
            _, spec = cfg.file(logical)
            parquet = Path(p["out"]) / f"{logical}.parquet"
            convert_to_parquet(Path(src), parquet, spec)
            batch = p.get("batch", BATCH)
            typed = typed_file(parquet, logical, src, batch)
            rejects = {r.row_number for r in validate_rows(parquet, spec, typed=typed).rejects}
            typed.commit(rejects)
            total += load_bronze(conn, cfg, spec, parquet, batch, Path(src).name, rejects, typed=typed.path)
    report(seconds=time.perf_counter() - started, rows=total)


LABELS = {
    "first": "first run of the batch",
    "rerun": "re-run, unchanged",
    "forced": "re-run, no skipping",
    "next": "next day's delivery",
}


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

    from include.etl.warehouse.sqlstep import run_step

    logging.basicConfig(level=logging.WARNING)
    log = logging.getLogger("bench.sql")
    cfg = client1()
    steps = [("silver", s.name, cfg.sql_dir / s.sql, f"{cfg.silver_schema}.{s.table}") for s in cfg.silver]
    steps += [("gold", s.name, cfg.sql_dir / s.sql, f"{cfg.gold_schema}.{s.table}") for s in cfg.gold]
    steps += [
        ("views", v.name, cfg.sql_dir / v.sql if v.sql else None, f"{cfg.gold_schema}.{v.name}")
        for v in cfg.views
    ]
    results = {}
    batch = p.get("batch", BATCH)
    with psycopg.connect(p["dsn"], autocommit=True) as conn:
        for layer, name, path, target in steps:
            if path is None:
                text = f'REFRESH MATERIALIZED VIEW "{cfg.gold_schema}"."{name}"'
            else:
                text = path.read_text()
            with BackendMemory(conn.info.backend_pid) as memory:
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
            rows = conn.execute(query, (batch,) if layer != "views" else None).fetchone()[0]
            results[f"{layer}.{name}"] = {
                "seconds": res.seconds,
                "rows": rows,
                "skipped": res.skipped,
                "peak_rss_mb": memory.peak_mb,  # the database backend's (see BackendMemory)
            }
        # What recomputing the summaries from the whole fact table costs (a REFRESH's work),
        # as the baseline of the per-batch updates above.
        started = time.perf_counter()
        for query in WHOLE_SUMMARIES:
            conn.execute(f"CREATE TEMP TABLE whole AS {query}")
            conn.execute("DROP TABLE whole")
        full = time.perf_counter() - started
    report(steps=results, views_full_seconds=full)


# client1's two summaries computed from the whole fact table (what a REFRESH of the
# materialized views they replaced did after every batch; sql/clients/client1/views/).
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


def step_parse(p: dict) -> None:
    started = time.perf_counter()
    import runpy

    namespace = runpy.run_path(str(ROOT / "dags" / "client_pipelines.py"))
    seconds = time.perf_counter() - started
    report(seconds=seconds, dags=len(namespace["dags"]), errors=len(namespace["config_errors"]))


def step_parse_dag_processor(p: dict) -> None:
    """What the DAG processor's parsing process does with a DAG file (the factory's by
    default): fill a DagBag (import, checks, the SQL template files read) and serialize
    every DAG. Airflow itself is imported beforehand, untimed: that process is forked
    from one that has it."""
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.serialization.serialized_objects import DagSerialization

    dag_file = Path(p.get("file", ROOT / "dags" / "client_pipelines.py"))
    started = time.perf_counter()
    bag = BundleDagBag(
        dag_folder=str(dag_file),
        bundle_path=str(dag_file.parent),
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


# ============================================================================ parent side
def run_step(name: str, params: dict, env: dict | None = None, wrap: list[str] | None = None) -> dict:
    """Run one step in a fresh Python process; its wall time includes nothing but the step."""
    command = [*(wrap or []), sys.executable, str(Path(__file__)), "--step", name, json.dumps(params)]
    started = time.perf_counter()
    out = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )
    process_seconds = time.perf_counter() - started
    lines = [line for line in out.stdout.splitlines() if line.startswith(MARK)]
    if out.returncode != 0 or not lines:
        sys.stderr.write(out.stdout[-3000:] + out.stderr[-5000:])
        raise SystemExit(f"bench step {name} failed (exit {out.returncode})")
    result = json.loads(lines[-1][len(MARK) :])
    result["process_seconds"] = process_seconds
    return result


def best(name: str, params: dict, repeat: int, **kwargs: object) -> dict:
    """The fastest of ``repeat`` runs (peak memory: the largest)."""
    runs = [run_step(name, params, **kwargs) for _ in range(repeat)]
    fastest = min(runs, key=lambda r: r["seconds"])
    return {
        **fastest,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "runs": [r["seconds"] for r in runs],
    }


def generate(rows: int) -> dict[str, Path]:
    """The six client1 files for ``rows`` sales lines, generated once and kept."""
    from demo.client1 import SYSTEM_OF, file_name
    from demo.client1 import generate as write

    folder = WORK / "data" / str(rows)
    done = folder / ".done"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        write(folder, rows=rows)
        done.touch()
    return {logical: folder / system / file_name(logical) for logical, system in SYSTEM_OF.items()}


def ten_times(src: Path) -> Path:
    """``src`` with its lines ten times over (one header), made by copying and kept while
    ``src`` is the same file: the convert memory check at 10x the rows without
    generating them."""
    dest = src.parent.parent.with_name(f"{src.parent.parent.name}x10") / src.name
    done = dest.with_name(".done")
    stat = src.stat()
    source_id = f"{stat.st_size} {stat.st_mtime_ns}"
    if not (done.exists() and done.read_text() == source_id):
        dest.parent.mkdir(parents=True, exist_ok=True)
        with src.open("rb") as source, dest.open("wb") as out:
            out.write(source.readline())
            start = source.tell()
            source.seek(-1, os.SEEK_END)
            newline = b"" if source.read(1) == b"\n" else b"\n"  # a last line without one
            for _ in range(10):
                source.seek(start)
                shutil.copyfileobj(source, out, 16 * 1024 * 1024)
                out.write(newline)
        done.write_text(source_id)
    return dest


def next_delivery(files: dict[str, Path]) -> dict[str, Path]:
    """The next day's delivery: the given files, with only the sales lines ordered in the
    latest month they hold (a daily delivery adds recent orders; its customers and
    products come again in full)."""
    folder = WORK / "next"
    shutil.rmtree(folder, ignore_errors=True)
    out = {}
    for logical, src in files.items():
        dest = folder / src.parent.name / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if logical != SALES:
            shutil.copy(src, dest)
        else:
            with src.open() as f:
                header, lines = f.readline(), f.readlines()
            month = max(line.split(",")[3][:6] for line in lines if line.split(",")[3][:2] == "20")
            with dest.open("w") as f:
                f.write(header)
                f.writelines(line for line in lines if line.split(",")[3][:6] == month)
        out[logical] = dest
    return out


def reset_database(admin_dsn: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def ensure_database(admin_dsn: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def prepare_warehouse(dsn: str) -> None:
    """Tools + client1 schemas, bronze tables, and the baseline tables."""
    import psycopg

    from include.etl.warehouse.migrations import migrate

    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn, [client1()])
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench_baseline")
        _, spec = client1().file(SALES)
        columns = ", ".join(f'"{c.source}" text' for c in spec.columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS bench_baseline.csv_sales ({columns})")


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


def synthetic_clients(folder: Path, count: int = 500) -> None:
    """``count`` client files of 8 files each, shaped like client1, in ``folder``/clients,
    and their SQL (client1's) in ``folder``/sql: the ETL_CLIENTS_DIR and ETL_SQL_DIR of
    the parse steps."""
    import yaml

    from include.etl.config import CLIENTS_DIR, SQL_DIR

    sql = folder / "sql"
    (sql / "clients").mkdir(parents=True)
    (sql / "tools").symlink_to(SQL_DIR / "tools")
    folder = folder / "clients"
    folder.mkdir()

    base = yaml.safe_load((CLIENTS_DIR / "client1.yaml").read_text())
    shutil.copy(CLIENTS_DIR / "_defaults.yaml", folder / "_defaults.yaml")
    erp = base["sources"][1]["files"]
    for extra in ("EXTRA_A", "EXTRA_B"):
        erp.append({**erp[0], "name": extra, "pattern": rf"{extra}\.csv", "bronze_table": extra.lower()})
    for i in range(count):
        client = f"bench{i:03d}"
        (folder / f"{client}.yaml").write_text(yaml.safe_dump({**base, "client": client}))
        (sql / "clients" / client).symlink_to(SQL_DIR / "clients" / "client1")


def parent(args: argparse.Namespace) -> int:
    base = os.environ.get("AIRFLOW_CONN_WAREHOUSE")
    if not base:
        raise SystemExit("AIRFLOW_CONN_WAREHOUSE is not set: run through scripts/with-env (make bench)")
    for reserved in ("warehouse", "airflow"):
        if args.db == reserved or args.db.startswith("warehouse_test"):
            raise SystemExit(f"--db {args.db}: choose a database of the benchmark's own")
    url, admin = db_url(base, args.db), libpq(db_url(base, "postgres"))
    dsn = libpq(url)
    airflow_db = f"{args.db}_airflow"
    airflow_url = db_url(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], airflow_db)
    env = {"AIRFLOW_CONN_WAREHOUSE": url, "WAREHOUSE_DSN": dsn}
    rows = args.rows
    small = rows // 10 if rows >= 100_000 else rows  # the next day's delivery is generated at this size
    results: dict = {"rows": rows, "repeat": args.repeat, "cpu_count": os.cpu_count()}
    table: list[tuple] = []

    def record(key: str, label: str, res: dict, n: int | None = None) -> dict:
        n = n if n is not None else res.get("rows")
        seconds = res["seconds"]
        results[key] = {
            "seconds": round(seconds, 3),
            "rows": n,
            "rows_per_s": round(n / seconds) if n and seconds else None,
            "peak_rss_mb": res.get("peak_rss_mb"),
        }
        table.append((label, seconds, n, res.get("peak_rss_mb")))
        print(f"  {label:<44} {seconds:8.2f} s", flush=True)
        return res

    print(f"bench: {rows:,} sales lines, database {args.db}, work folder {WORK}", flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    files = generate(rows)
    src = files[SALES]
    results["sales_csv_mb"] = round(src.stat().st_size / 1e6, 1)
    out = WORK / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    # ------------------------------------------------------------ convert
    print("convert", flush=True)
    parquet = out / f"{SALES}.parquet"
    if args.only == "bronze":  # the converted file only, to validate and load
        record(
            "convert_project",
            "convert (project: Parquet + sha256 + quotes)",
            run_step("convert_project", {"src": str(src), "dest": str(parquet)}),
        )
    else:
        for _ in range(args.repeat):  # interleaved, so both see the same machine
            conv = best("convert_project", {"src": str(src), "dest": str(parquet)}, 1)
            pol = best("convert_polars", {"src": str(src), "dest": str(out / "polars.parquet")}, 1)
            results.setdefault("_conv", []).append(conv)
            results.setdefault("_pol", []).append(pol)
        conv = min(results.pop("_conv"), key=lambda r: r["seconds"])
        pol = min(results.pop("_pol"), key=lambda r: r["seconds"])
        record("convert_project", "convert (project: Parquet + sha256 + quotes)", conv)
        record("convert_polars", "convert (polars sink_parquet)", pol)
        if not args.skip_pandas:
            pan = record(
                "convert_pandas",
                "convert (pandas)",
                best("convert_pandas", {"src": str(src), "dest": str(out / "pandas.parquet")}, 1),
            )
            results["convert_vs_pandas"] = round(conv["seconds"] / pan["seconds"], 3)
        results["convert_vs_polars"] = round(conv["seconds"] / pol["seconds"], 3)
        # peak memory at 10x the rows: the same file ten times over (20M lines by default)
        big = best("convert_project", {"src": str(ten_times(src)), "dest": str(out / "big.parquet")}, 1)
        record(f"convert_project_{rows * 10}", f"convert (project) at {rows * 10:,} rows", big)
        results["convert_peak_rss_ratio_10x_rows"] = round(big["peak_rss_mb"] / conv["peak_rss_mb"], 3)
        (out / "big.parquet").unlink(missing_ok=True)

    if args.only == "convert":
        return finish(args, results, table)

    # ------------------------------------------------------------ validate + bronze
    print("validate + bronze", flush=True)
    reset_database(admin, args.db)
    prepare_warehouse(dsn)
    rejects = out / "rejects.json"
    typed = out / "typed.parquet"
    validate = {"parquet": str(parquet), "rejects": str(rejects), "src": str(src)}
    load = {"dsn": dsn, "parquet": str(parquet), "rejects": str(rejects), "src": str(src)}
    runs: dict[str, list] = {"validate": [], "bronze": [], "adbc": [], "psql": []}
    for attempt in range(args.repeat):  # interleaved, so all see the same machine
        runs["validate"].append(run_step("validate", validate))  # also the rows bronze loads
        if attempt == 0:  # the ADBC baseline's input: the same rows, typed
            run_step("typed_copy", {"parquet": str(parquet), "rejects": str(rejects), "dest": str(typed)})
        runs["bronze"].append(run_step("bronze_project", load))
        runs["adbc"].append(run_step("bronze_adbc", {"dsn": dsn, "typed": str(typed)}))
        runs["psql"].append(run_step("psql_copy", {"dsn": dsn, "src": str(src)}))
    fastest = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
    record("validate_project", "validate rows (project)", fastest["validate"])
    record("bronze_project", "bronze load (project)", fastest["bronze"])
    record("bronze_adbc", "bronze (ADBC binary COPY, typed, bare table)", fastest["adbc"])
    record("bronze_psql_copy", "psql \\copy of the CSV (text columns)", fastest["psql"])
    results["bronze_reload_seconds"] = [round(r["seconds"], 3) for r in runs["bronze"]]
    results["bronze_vs_adbc"] = round(fastest["bronze"]["seconds"] / fastest["adbc"]["seconds"], 3)
    results["bronze_vs_psql_copy"] = round(fastest["bronze"]["seconds"] / fastest["psql"]["seconds"], 3)

    # ------------------------------------------------------------ SQL stage
    if args.only == "bronze":
        return finish(args, results, table)

    print("SQL stage", flush=True)
    others = {k: str(v) for k, v in files.items() if k != SALES}
    record(
        "bronze_other_files",
        "other 5 files: convert+validate+load",
        run_step("bronze_others", {"dsn": dsn, "files": others, "out": str(out)}),
    )
    # first: the batch is new; rerun: the same batch again, nothing changed (steps skip);
    # forced: the same again with skipping off (what each step's SQL costs on a no-op)
    # next: the next day's delivery (BATCH000002: the files generated at a tenth the size,
    # with the sales lines of their latest month only; customers and products again in
    # full), to show a batch costs what it touches, not the history
    small_files = {k: str(v) for k, v in next_delivery(generate(small) if small != rows else files).items()}
    next_load = {"dsn": dsn, "files": small_files, "out": str(out), "batch": NEXT}
    next_bronze = run_step("bronze_others", next_load)
    record("bronze_next_batch", "next day's delivery: convert+validate+load", next_bronze)
    for attempt, key in ((1, "first"), (2, "rerun"), (3, "forced"), (4, "next")):
        params = {"dsn": dsn, "force": key == "forced"}
        res = run_step("sql", {**params, "batch": NEXT} if key == "next" else params)
        total = 0.0
        for layer in ("silver", "gold", "views"):
            steps = {k: v for k, v in res["steps"].items() if k.startswith(layer + ".")}
            seconds = sum(v["seconds"] for v in steps.values())
            total += seconds
            for name, v in steps.items():
                if attempt == 1:
                    record(f"sql_{name}", f"  {name}", v)
            record(
                f"sql_{layer}_{key}",
                f"{layer} ({LABELS[key]})",
                {
                    "seconds": seconds,
                    "rows": sum(v["rows"] for v in steps.values()),
                    "peak_rss_mb": max((v["peak_rss_mb"] or 0 for v in steps.values()), default=0) or None,
                },
            )
        results[f"sql_stage_{key}_seconds"] = round(total, 3)
        results[f"views_whole_recompute_{key}_seconds"] = round(res["views_full_seconds"], 3)
    table.append(
        ("  views recomputed whole (the old REFRESH), next day", res["views_full_seconds"], None, None)
    )
    for key in ("rerun", "forced", "next"):
        results[f"sql_{key}_vs_first"] = round(
            results[f"sql_stage_{key}_seconds"] / results["sql_stage_first_seconds"], 3
        )

    # ------------------------------------------------------------ end to end
    if not args.skip_e2e:
        print("end to end (dag.test)", flush=True)
        e2e_env = {
            **env,
            "ETL_DATA_ROOT": str(LANDING),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_url,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
        runs = []
        for _ in range(args.repeat):  # each from an empty warehouse; the fastest counts
            ensure_database(admin, airflow_db)
            migration = files_in_incoming(files, admin, args.db, dsn)
            res = run_step("e2e", {}, env=e2e_env, wrap=[str(ROOT / "scripts" / "with-env")])
            if res["state"] != "success":
                raise SystemExit(f"the client1 DAG run ended {res['state']}")
            runs.append(res)
        res = min(runs, key=lambda r: r["seconds"])
        record("warehouse_migration", "warehouse migration (tools + client1, once)", migration)
        record(
            "e2e_api_start", "dag.test's execution API start (once)", {"seconds": res["api_start_seconds"]}
        )
        record("e2e", "whole DAG run (dag.test, incoming -> views)", res, rows)
        results["e2e_runs_seconds"] = [round(r["seconds"], 3) for r in runs]
        results["e2e_vs_psql_copy"] = round(res["seconds"] / fastest["psql"]["seconds"], 3)

    if not args.skip_scheduler:  # once: it takes about as long as the two dag.test runs
        print("end to end (scheduler, api-server, LocalExecutor)", flush=True)
        files_in_incoming(files, admin, args.db, dsn)
        res = e2e_on_scheduler(env, admin, db_url(airflow_url, f"{args.db}_airflow_scheduler"))
        record("e2e_scheduler", "whole DAG run (scheduler + LocalExecutor)", res, rows)
        results["e2e_scheduler_tasks_seconds"] = res["tasks_seconds"]
        results["e2e_scheduler_vs_psql_copy"] = round(res["seconds"] / fastest["psql"]["seconds"], 3)

    if not args.skip_parse:
        measure_parse(results, table)
    return finish(args, results, table)


def files_in_incoming(files: dict[str, Path], admin: str, db: str, dsn: str) -> dict:
    """An empty, migrated warehouse and the day's files in client1's incoming folders:
    where a whole run starts. A deployed warehouse's schemas exist before the day's files
    arrive, so the migration (once per deployment or release) is timed on its own."""
    from include.etl.ingest.landing import Landing

    reset_database(admin, db)
    migration = run_step("migrate", {"dsn": dsn})
    shutil.rmtree(LANDING, ignore_errors=True)
    for path in files.values():
        incoming = Landing(LANDING).raw("client1", path.parent.name, "incoming")
        incoming.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, incoming / path.name)
    return migration


def e2e_on_scheduler(env: dict, admin: str, metadata_url: str) -> dict:
    """client1's run as a deployment runs it: ``airflow api-server`` and ``airflow
    scheduler`` (LocalExecutor, 4 task slots) on a metadata database of their own, the
    DAG unpaused with its files in incoming. Its seconds are the DAG run's own (start to
    end, as the UI shows them); starting the services, and the first request each of the
    api-server's two APIs answers (which generates its versioned routes), are not timed.
    Each task runs in a process of its own, and independent tasks (the file groups, the
    silver steps) run side by side on the machine's cores."""
    import secrets
    import signal
    import socket
    import urllib.request

    import psycopg

    reset_database(admin, urlsplit(metadata_url).path.lstrip("/"))
    home = WORK / "airflow-scheduler"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    run_env = {
        **os.environ,
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "ETL_DATA_ROOT": str(LANDING),
        "PYTHONPATH": str(ROOT),
    }

    def airflow(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=run_env, capture_output=True, text=True, timeout=600
        )
        if done.returncode:
            raise SystemExit(f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

    def query(sql_text: str, *params: object) -> list[tuple]:
        with psycopg.connect(libpq(metadata_url)) as conn:
            return conn.execute(sql_text, params).fetchall()

    def wait(what: str, seconds: float, done) -> object:
        deadline = time.monotonic() + seconds
        while not (result := done()):
            stopped = [name for name, service in services.items() if service.poll() is not None]
            if stopped or time.monotonic() > deadline:
                why = f"{', '.join(stopped)} stopped" if stopped else f"not after {seconds:.0f} s"
                raise SystemExit(f"{what}: {why}; see the logs in {home}")
            time.sleep(0.5)
        return result

    def answers(path: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30):
                return True
        except OSError:
            return False

    airflow("db", "migrate")
    airflow("dags", "reserialize")
    services: dict[str, subprocess.Popen] = {}
    try:
        for name in ("api-server", "scheduler"):
            with (home / f"{name}.log").open("w") as log:
                services[name] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", name],
                    env=run_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stopped whole below
                )
        wait("the api-server", 180, lambda: answers("/api/v2/monitor/health"))
        wait("the execution API", 60, lambda: answers("/execution/health"))
        airflow("dags", "unpause", "client1")  # its latest daily run starts
        ((run_id,),) = wait(
            "client1's run", 120, lambda: query("SELECT run_id FROM dag_run WHERE dag_id = 'client1'")
        )
        ended = "SELECT state FROM dag_run WHERE dag_id = 'client1' AND run_id = %s AND end_date IS NOT NULL"
        ((state,),) = wait("client1's run to finish", 1800, lambda: query(ended, run_id))
    finally:
        for service in services.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.pid, signal.SIGTERM)
        for service in services.values():
            try:
                service.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.pid, signal.SIGKILL)
                service.wait()
    if state != "success":
        raise SystemExit(f"the client1 DAG run (scheduler) ended {state}: see the logs in {home}")
    ((seconds, tasks),) = query(
        """SELECT extract(epoch FROM r.end_date - r.start_date)::float,
                  coalesce((SELECT sum(extract(epoch FROM t.end_date - t.start_date))::float
                            FROM task_instance AS t WHERE t.dag_id = r.dag_id AND t.run_id = r.run_id), 0)
           FROM dag_run AS r WHERE r.dag_id = 'client1' AND r.run_id = %s""",
        run_id,
    )
    return {"seconds": seconds, "tasks_seconds": round(tasks, 3)}


# Airflow's floor for the parse: the factory's graph for 500 clients (8 file groups of 4
# chained tasks, and a client's 16 other tasks wired as the factory wires them) built
# from EmptyOperators, with no config read and no SQL file opened.
FLOOR_DAGS = """
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TaskGroup

for i in range(500):
    with DAG(f"floor{i:03d}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        opened = EmptyOperator(task_id="open_batch")
        EmptyOperator(task_id="wait_for_files") >> opened
        loads = []
        for f in range(8):
            with TaskGroup(f"file{f}"):
                steps = [EmptyOperator(task_id=t)
                         for t in ("convert", "validate_mapping", "validate_rows", "load_bronze")]
                opened >> steps[0] >> steps[1] >> steps[2] >> steps[3]
                loads.append(steps[3])
        silver = [EmptyOperator(task_id=f"silver_{k}") for k in range(6)]
        for step in silver:
            loads >> step
        checked = EmptyOperator(task_id="quality_silver")
        silver >> checked
        dims = [EmptyOperator(task_id="gold_dim_1"), EmptyOperator(task_id="gold_dim_2")]
        fact = EmptyOperator(task_id="gold_fact")
        checked >> dims
        dims >> fact
        views = [EmptyOperator(task_id="view_1"), EmptyOperator(task_id="view_2")]
        fact >> views
        gold_checked = EmptyOperator(task_id="quality_gold")
        views >> gold_checked
        gold_checked >> EmptyOperator(task_id="close_batch", trigger_rule="all_done")
    globals()[dag.dag_id] = dag
"""


def measure_parse(results: dict, table: list[tuple]) -> None:
    """The factory's parse time with 500 synthetic clients: the DAG file's import, and what
    the DAG processor does with it (DagBag and serialization)."""
    print("DAG parse, 500 clients x 8 files", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        synthetic_clients(Path(folder))
        env = {"ETL_CLIENTS_DIR": f"{folder}/clients", "ETL_SQL_DIR": f"{folder}/sql"}
        res = run_step("parse", {}, env=env)
        processor = run_step("parse_dag_processor", {}, env=env)
        floor_file = Path(folder) / "floor" / "floor.py"
        floor_file.parent.mkdir()
        floor_file.write_text(FLOOR_DAGS)
        floor = run_step("parse_dag_processor", {"file": str(floor_file)})
    for name, got in (("parse", res), ("parse_dag_processor", processor), ("floor", floor)):
        if got["dags"] != 500 or got["errors"]:
            raise SystemExit(f"{name}: {got['dags']} DAGs, {got['errors']} errors")
    results["parse_500_clients_import_s"] = round(res["seconds"], 3)
    results["parse_500_clients_s"] = round(res["process_seconds"], 3)
    results["parse_500_clients_dag_processor_s"] = round(processor["seconds"], 3)
    results["parse_500_clients_dag_processor_serialize_s"] = round(processor["serialize_seconds"], 3)
    results["parse_500_clients_airflow_floor_s"] = round(floor["seconds"], 3)
    results["parse_500_clients_dag_processor_vs_airflow_floor"] = round(
        processor["seconds"] / floor["seconds"], 3
    )
    table.append(
        ("parse 500 clients (process, imports included)", res["process_seconds"], 500, res["peak_rss_mb"])
    )
    table.append(
        (
            "parse 500 clients, DAG processor (+ serialize)",
            processor["seconds"],
            500,
            processor["peak_rss_mb"],
        )
    )
    table.append(
        ("  the same graph of EmptyOperators (Airflow)", floor["seconds"], 500, floor["peak_rss_mb"])
    )


def finish(args: argparse.Namespace, results: dict, table: list[tuple]) -> int:
    """Print the table and the ratios, write the results file."""
    print()
    print(f"{'step':<48} {'seconds':>8} {'rows':>11} {'rows/s':>11} {'peak MB':>8}")
    for label, seconds, n, mb in table:
        rate = f"{n / seconds:,.0f}" if n and seconds else ""
        count = f"{n:,}" if n else ""
        print(f"{label:<48} {seconds:8.2f} {count:>11} {rate:>11} {mb or '':>8}")
    print()
    for key in sorted(
        k
        for k in results
        if k.endswith(
            ("_vs_polars", "_vs_pandas", "_vs_adbc", "_vs_psql_copy", "_ratio_10x_rows", "_vs_first")
        )
        or k.startswith("parse_")
    ):
        print(f"  {key:<36} {results[key]}")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "--step":
        steps = {name.removeprefix("step_"): fn for name, fn in globals().items() if name.startswith("step_")}
        steps[sys.argv[2]](json.loads(sys.argv[3]) if len(sys.argv) > 3 else {})
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="sales lines (default 2,000,000)")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each compared step (the fastest counts)"
    )
    parser.add_argument("--db", default="bench", help="the benchmark's own database (emptied)")
    parser.add_argument("--out", default=str(ROOT / "bench-results.json"))
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-scheduler", action="store_true", help="skip the run on a real scheduler")
    parser.add_argument("--skip-parse", action="store_true")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument(
        "--only",
        choices=["convert", "bronze", "parse"],
        help="run only this part (convert: the convert steps, at 1x and 10x the rows; "
        "bronze: convert once, then only validate and the bronze loads; parse: the parse steps)",
    )
    args = parser.parse_args()
    if args.only == "parse":
        results: dict = {"cpu_count": os.cpu_count()}
        table: list[tuple] = []
        measure_parse(results, table)
        return finish(args, results, table)
    if args.only:
        args.skip_e2e = args.skip_scheduler = args.skip_parse = args.skip_pandas = True
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
