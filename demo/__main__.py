"""`make demo`: deliver demo files for each client, run its DAG with Airflow, summarise.

Runs each client DAG with ``dag.test()``: real Airflow task execution (XCom, trigger
rules, retries' bookkeeping in the metadata database) in one process, against the
warehouse connection ``AIRFLOW_CONN_WAREHOUSE``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

if "--verbose" not in sys.argv:  # before Airflow configures its logging
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

import psycopg

from demo import GENERATORS, app_source, deliver
from demo.report import batch_summary, format_summary
from include.etl.config import config_for, load_clients
from include.etl.ingest.landing import Landing
from include.etl.orchestration.factory import build_all


def demo_clients() -> list[str]:
    """The clients whose template has a demo data generator (every client file here)."""
    configs, _ = load_clients()
    return [cfg.client for cfg in configs if cfg.template in GENERATORS]


def database_clients() -> list[str]:
    """The clients reading the demo's source database (client4)."""
    configs, _ = load_clients()
    return [cfg.client for cfg in configs if any(f.is_database for _, f in cfg.files)]


def database_demo(client: str, dag, landing: Landing, rows: int) -> list[tuple]:
    """client4: the source database filled on the first demo (a day of changes applied on
    later ones), a run, one more day of changes, a second run: what each run took."""
    url = os.environ["AIRFLOW_CONN_APP_SOURCE"].replace("postgres://", "postgresql://", 1)
    results = []
    with psycopg.connect(url, autocommit=True) as source:
        if source.execute("SELECT to_regclass('shop.customers')").fetchone() == (None,):
            app_source.create(source, rows)
            print(f"[{client}] filled app_source: shop.customers, {rows:,} customers")
        for run in (1, 2):
            if run == 2:
                changed = app_source.apply_day(source)
                print(f"[{client}] a day of changes in shop.customers: {changed}")
            print(f"[{client}] running DAG {client} with Airflow (run {run}) ...", flush=True)
            dag_run = dag.test(run_conf={"mode": "start"})
            results.append(
                (client, dag_run.state, batch_summary(config_for(client), landing, dag_run.run_id))
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000, help="sales lines / rows per client")
    parser.add_argument("--clients", nargs="*", help="default: every client with a demo data generator")
    parser.add_argument("--verbose", action="store_true", help="show every task's log")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    landing = Landing.from_env()
    dags, errors = build_all()
    if errors:
        print("config errors:", *errors.values(), sep="\n  ")
        return 1
    results = []
    with_files, with_database = demo_clients(), database_clients()
    for client in [c for c in args.clients or with_files if c in with_files]:
        files = deliver(client, landing, rows=args.rows)
        print(f"[{client}] delivered {len(files)} files into {landing.root}/raw/{client}/*/incoming")
        print(f"[{client}] running DAG {client} with Airflow ...", flush=True)
        run = dags[client].test(run_conf={"mode": "start"})
        results.append((client, run.state, batch_summary(config_for(client), landing, run.run_id)))
    for client in [c for c in args.clients or with_database if c in with_database]:
        results += database_demo(client, dags[client], landing, args.rows)
    print()
    for client, state, summary in results:
        print(format_summary(client, state, summary))
    print("\nSee them in Airflow: `make airflow`, then http://localhost:8080 (ETL console: Browse)")
    return 0 if all(str(state) == "success" for _, state, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
