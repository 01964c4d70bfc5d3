"""A batch at a glance: the figures `make demo` prints, read from the tools tables."""

from __future__ import annotations

from psycopg import sql

from include.etl.config import ClientConfig
from include.etl.ingest.landing import Landing
from include.etl.orchestration.connections import warehouse
from include.etl.warehouse.connection import one_row
from include.etl.warehouse.migrations import ident


def batch_summary(cfg: ClientConfig, landing: Landing, dag_run_id: str) -> dict:
    with warehouse() as conn:
        row = conn.execute(
            """SELECT b.batch_id, b.status, b.manifest_path FROM tools.batch_run r
               JOIN tools.batch b USING (client_schema, batch_id)
               WHERE r.client_schema = %s AND r.dag_run_id = %s""",
            (cfg.client, dag_run_id),
        ).fetchone()
        if row is None:
            return {"batch_id": None}
        batch_id, status, manifest = row

        def count(schema: str, table: str, batch_only: bool) -> int:
            query = sql.SQL("SELECT count(*) FROM {}").format(ident(schema, table))
            if batch_only:
                return one_row(conn.execute(query + sql.SQL(" WHERE dwh_batch_id = %s"), (batch_id,)))[0]
            return one_row(conn.execute(query))[0]

        files = conn.execute(
            """SELECT logical_source_file, physical_file_name, total_rows, rejected_rows,
                      loaded_rows, load_status
               FROM tools.file_audit_log WHERE client_schema = %s AND batch_id = %s
               ORDER BY logical_source_file""",
            (cfg.client, batch_id),
        ).fetchall()
        windows = conn.execute(
            """SELECT logical_source_file, full_load, lower_watermark, lower_key, upper_watermark,
                      extracted_rows
               FROM tools.extract_window WHERE client_schema = %s AND batch_id = %s
               ORDER BY logical_source_file""",
            (cfg.client, batch_id),
        ).fetchall()
        return {
            "windows": windows,
            "batch_id": batch_id,
            "status": status,
            "manifest": manifest,
            "files": files,
            "bronze": sum(count(cfg.bronze_schema, f.bronze_table, True) for _, f in cfg.files),
            "silver": sum(count(cfg.silver_schema, s.table, True) for s in cfg.silver),
            "gold": {s.table: count(cfg.gold_schema, s.table, False) for s in cfg.gold},
            "views": {v.name: count(cfg.gold_schema, v.name, False) for v in cfg.views},
            "rejected": sum(f[3] or 0 for f in files),
            "archive": str(landing.root / "raw" / cfg.client / "<system>" / "archive"),
        }


def format_summary(client: str, state: object, s: dict) -> str:
    if not s.get("batch_id"):
        return f"{client}: DAG run {state}, no batch opened"
    lines = [
        f"{client}: DAG run {state}, {s['batch_id']} {s['status']}",
        f"  rows      bronze {s['bronze']:,} (this batch) | silver {s['silver']:,} (this batch)"
        f" | rejected {s['rejected']:,}",
        "  gold      " + (", ".join(f"{t} {n:,}" for t, n in s["gold"].items()) or "-"),
        "  views     " + (", ".join(f"{t} {n:,}" for t, n in s["views"].items()) or "-"),
    ]
    for logical, physical, total, rejected, loaded, status in s["files"]:
        lines.append(
            f"  file      {logical:<14} {physical or '-':<36} rows {total or 0:>8,}"
            f"  rejected {rejected or 0:>5,}  loaded {loaded or 0:>8,}  {status or '-'}"
        )
    for logical, full_load, lower, lower_key, upper, rows in s.get("windows", []):
        taken = (
            "full load"
            if full_load
            else f"after {lower:%Y-%m-%d %H:%M:%S}"
            + (f" (key {lower_key})" if lower_key is not None else " (the mark less the lookback)")
        )
        lines.append(
            f"  extract   {logical:<14} {rows or 0:>8,} rows, {taken}, up to {upper:%Y-%m-%d %H:%M:%S}"
        )
    lines += [f"  files  -> {s['archive']}", f"  manifest {s['manifest']}"]
    return "\n".join(lines)
