"""What every part of the benchmark shares: where it works, how a measured step runs in a
process of its own and reports, and the benchmark's own databases."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".local" / "bench"
LANDING = WORK / "landing"  # the landing root of the whole runs
BATCH = "BATCH000001"
NEXT = "BATCH000002"  # the next day: reference files again (1% changed), a month of sales
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


def run_step(name: str, params: dict, env: dict | None = None, wrap: list[str] | None = None) -> dict:
    """Run one step (``benchmarks.steps``) in a fresh Python process; its wall time
    includes nothing but the step."""
    command = [*(wrap or []), sys.executable, "-m", "benchmarks.steps", name, json.dumps(params)]
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


def best(name: str, params: dict, repeat: int, env: dict | None = None) -> dict:
    """The fastest of ``repeat`` runs (peak memory: the largest)."""
    runs = [run_step(name, params, env) for _ in range(repeat)]
    fastest = min(runs, key=lambda r: r["seconds"])
    return {
        **fastest,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "runs": [r["seconds"] for r in runs],
    }


def reset_database(admin_dsn: str, name: str, template: str | None = None) -> None:
    """``name`` dropped and made again: empty, or a copy of database ``template`` (file by
    file: a few seconds for the bench's warehouse; nothing may be connected to it)."""
    import psycopg
    from psycopg import sql

    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        create += sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(template))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(create)


def drop_database(admin_dsn: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def ensure_database(admin_dsn: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
