"""Batch health: a closed batch compared with the client's recent successful batches.

A batch is unhealthy when, against the median of the client's last ``history``
successful batches (judged once at least ``min_history`` exist):

- it took more than ``max_duration_ratio`` times the median duration;
- it loaded a number of rows more than ``max_rows_change`` (a ratio) away from the median;
- its share of rejected rows is above ``max_reject_ratio_increase`` times the median share
  and above ``reject_ratio_floor`` (a client that rejects nothing is not alarmed by one row).

An unhealthy batch stays ``SUCCESS``: its data loaded and passed the quality gates. It is
recorded in ``tools.batch_health`` with the reasons, one line each, and alerted as a
warning. Every judged batch gets a row there (healthy or not), with its figures and the
medians it was compared with.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from statistics import median

import psycopg

from include.etl.config import Health


@dataclass(frozen=True)
class BatchFigures:
    """What a batch did: its wall time, and the rows its files loaded and rejected."""

    batch_id: str
    seconds: float
    loaded_rows: int
    rejected_rows: int

    @property
    def reject_ratio(self) -> float:
        total = self.loaded_rows + self.rejected_rows
        return self.rejected_rows / total if total else 0.0


def judge(current: BatchFigures, history: list[BatchFigures], rules: Health) -> list[str]:
    """Why ``current`` is unhealthy against ``history`` (one line each); [] when healthy
    or when the history is too short to judge."""
    if len(history) < rules.min_history:
        return []
    n = len(history)
    reasons = []
    seconds = median(b.seconds for b in history)
    if seconds > 0 and current.seconds > rules.max_duration_ratio * seconds:
        reasons.append(
            f"took {current.seconds:,.0f} s, {current.seconds / seconds:.1f}x the median {seconds:,.0f} s "
            f"of the last {n} successful batches (at most {rules.max_duration_ratio:g}x)"
        )
    rows = median(b.loaded_rows for b in history)
    if rows > 0 and abs(current.loaded_rows - rows) > rules.max_rows_change * rows:
        change = (current.loaded_rows - rows) / rows
        direction = "more" if change > 0 else "fewer"
        reasons.append(
            f"loaded {current.loaded_rows:,} rows, {abs(change):.0%} {direction} than the median "
            f"{rows:,.0f} of the last {n} successful batches (at most {rules.max_rows_change:.0%} off)"
        )
    ratio = median(b.reject_ratio for b in history)
    limit = max(rules.max_reject_ratio_increase * ratio, rules.reject_ratio_floor)
    if current.reject_ratio > limit:
        reasons.append(
            f"rejected {current.reject_ratio:.1%} of its rows, against a median of {ratio:.1%} over the "
            f"last {n} successful batches (at most {limit:.1%})"
        )
    return reasons


def _figures(conn: psycopg.Connection, client: str, where: str, params: tuple) -> list[BatchFigures]:
    """The figures of the client's batches that ``where`` picks, newest first, in one query."""
    rows = conn.execute(
        f"""SELECT b.batch_id, extract(epoch FROM coalesce(b.ended_at, now()) - b.started_at)::float,
                   coalesce(sum(f.loaded_rows), 0), coalesce(sum(f.rejected_rows), 0)
            FROM tools.batch AS b
            LEFT JOIN tools.file_audit_log AS f USING (client_schema, batch_id)
            WHERE b.client_schema = %s AND {where}
            GROUP BY b.batch_id, b.started_at, b.ended_at
            ORDER BY b.batch_id DESC""",
        (client, *params),
    ).fetchall()
    return [BatchFigures(r[0], float(r[1]), int(r[2]), int(r[3])) for r in rows]


def figures(conn: psycopg.Connection, client: str, batch_id: str) -> BatchFigures:
    """The figures of one batch, from ``tools.batch`` and ``tools.file_audit_log``."""
    found = _figures(conn, client, "b.batch_id = %s", (batch_id,))
    if not found:
        raise LookupError(f"{client} {batch_id}: no such batch")
    return found[0]


def recent_successes(conn: psycopg.Connection, client: str, before: str, count: int) -> list[BatchFigures]:
    """The figures of the client's last ``count`` successful batches before ``before``."""
    return _figures(
        conn,
        client,
        """b.batch_id IN (SELECT batch_id FROM tools.batch
                            WHERE client_schema = b.client_schema AND status = 'SUCCESS' AND batch_id < %s
                              AND ended_at IS NOT NULL ORDER BY batch_id DESC LIMIT %s)""",
        (before, count),
    )


def check(conn: psycopg.Connection, client: str, batch_id: str, rules: Health) -> list[str]:
    """Judge a closed batch against its client's history and record the verdict in
    ``tools.batch_health``; the reasons it is unhealthy ([] when it is not)."""
    current = figures(conn, client, batch_id)
    history = recent_successes(conn, client, batch_id, rules.history)
    reasons = judge(current, history, rules)
    baseline = {
        "batches": [b.batch_id for b in history],
        "median_seconds": median(b.seconds for b in history) if history else None,
        "median_loaded_rows": median(b.loaded_rows for b in history) if history else None,
        "median_reject_ratio": median(b.reject_ratio for b in history) if history else None,
    }
    conn.execute(
        """INSERT INTO tools.batch_health
               (client_schema, batch_id, healthy, reasons, figures, baseline)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (client_schema, batch_id) DO UPDATE SET
               healthy = EXCLUDED.healthy, reasons = EXCLUDED.reasons, figures = EXCLUDED.figures,
               baseline = EXCLUDED.baseline, judged_at = now()""",
        (client, batch_id, not reasons, reasons, json.dumps(asdict(current)), json.dumps(baseline)),
    )
    return reasons
