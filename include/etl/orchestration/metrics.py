"""Metrics of each closed batch and its files, through Airflow's metrics (StatsD or
OpenTelemetry, as Airflow's ``[metrics]`` configuration chooses; nothing is sent when it
enables neither).

Every name is under ``etl.`` (after Airflow's own prefix, ``airflow.`` by default) and
tagged with the client only (``client=client1``; with plain StatsD, turn on
``[metrics] statsd_influxdb_enabled`` so the tag travels, as the compose file does):

- ``etl.batch.duration`` (timing, ms), ``etl.batch.rows_loaded``, ``etl.batch.rows_rejected``,
  ``etl.batch.bytes`` (gauges), ``etl.batch.freshness_lag_seconds`` (gauge: how long the
  client's gold had gone without a successful batch when this one closed), and
  ``etl.batch.closed.<status>`` (a count per SUCCESS / PARTIAL / FAILED);
- per file, ``etl.file.<logical file>.rows_loaded``, ``.rows_rejected``, ``.bytes``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import psycopg

from include.etl.config import ClientConfig

log = logging.getLogger(__name__)
PREFIX = "etl"


def _stats() -> Any:
    """Airflow's metrics, initialised from its configuration if this process has not
    done so (``dag.test`` runs tasks without the task runner that does it)."""
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability.metrics import stats_utils

    if stats._factory is None:
        stats.initialize(
            factory=stats_utils.get_stats_factory(),
            export_legacy_names=conf.getboolean("metrics", "legacy_names_on", fallback=False),
        )
    return stats


def batch_closed(conn: psycopg.Connection, cfg: ClientConfig, batch_id: str, status: str) -> None:
    """Emit the metrics of a batch that just closed (never fails the task)."""
    try:
        _emit(conn, cfg, batch_id, status)
    except Exception as exc:  # metrics must never fail a batch
        log.warning("metrics of %s %s not emitted: %s", cfg.client, batch_id, exc)


def _emit(conn: psycopg.Connection, cfg: ClientConfig, batch_id: str, status: str) -> None:
    stats, tags = _stats(), {"client": cfg.client}
    row = conn.execute(
        """SELECT extract(epoch FROM b.ended_at - b.started_at)::float,
                  extract(epoch FROM b.ended_at - (
                      SELECT max(p.ended_at) FROM tools.batch AS p
                      WHERE p.client_schema = b.client_schema AND p.status = 'SUCCESS'
                        AND p.batch_id <> b.batch_id))::float
           FROM tools.batch AS b WHERE b.client_schema = %s AND b.batch_id = %s""",
        (cfg.client, batch_id),
    ).fetchone()
    files = conn.execute(
        """SELECT logical_source_file, coalesce(loaded_rows, 0), coalesce(rejected_rows, 0),
                  coalesce(file_size_bytes, 0)
           FROM tools.file_audit_log WHERE client_schema = %s AND batch_id = %s""",
        (cfg.client, batch_id),
    ).fetchall()
    seconds, lag = row if row else (None, None)
    if seconds is not None:
        stats.timing(f"{PREFIX}.batch.duration", timedelta(seconds=seconds), tags=tags)
    if lag is not None:
        stats.gauge(f"{PREFIX}.batch.freshness_lag_seconds", round(lag), tags=tags)
    stats.gauge(f"{PREFIX}.batch.rows_loaded", sum(f[1] for f in files), tags=tags)
    stats.gauge(f"{PREFIX}.batch.rows_rejected", sum(f[2] for f in files), tags=tags)
    stats.gauge(f"{PREFIX}.batch.bytes", sum(f[3] for f in files), tags=tags)
    stats.incr(f"{PREFIX}.batch.closed.{status.lower()}", tags=tags)
    for logical, loaded, rejected, size in files:
        stats.gauge(f"{PREFIX}.file.{logical}.rows_loaded", loaded, tags=tags)
        stats.gauge(f"{PREFIX}.file.{logical}.rows_rejected", rejected, tags=tags)
        stats.gauge(f"{PREFIX}.file.{logical}.bytes", size, tags=tags)
