"""Alerts through Airflow's notifiers: one message per batch outcome, to the client's
``alerts:`` routes (e-mail through ``SmtpNotifier``, chat through
``SlackWebhookNotifier`` or ``AppriseNotifier``).

- ``BatchOutcomeNotifier``: the factory sets it as ``close_batch``'s failure and success
  callback, so a batch says its outcome once, whatever number of tasks went red: FAILED,
  PARTIAL, a quality gate failed, no delivery before the sensor's timeout (no batch was
  opened), or a SUCCESS batch that is unhealthy (a warning).
- ``deadline_missed``: the callback of the client's deadline alert (Airflow's
  ``DeadlineAlert``, see the factory), when the day's run is not done in time.
- ``source_empty``: for a source that delivered nothing N runs in a row (database
  sources); it sends the ``source_empty`` event to the routes that take it.

What goes out is ``include.etl.alerts.Alert``; each attempt is a ``tools.alert_log`` row,
and a message already sent for a run, event and target is not sent again (a callback
run twice stays one message).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from include.etl.alerts import Alert, batch_alert, deadline_alert
from include.etl.config import AlertRoute, ClientConfig, config_for
from include.etl.orchestration.connections import warehouse
from include.etl.warehouse.audit import failure_reason, one_line

log = logging.getLogger(__name__)


def _base_url() -> str:
    from airflow.sdk.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")


def run_url(dag_id: str, run_id: str | None) -> str | None:
    """The Airflow UI's page of a DAG run."""
    if not run_id:
        return None
    return f"{_base_url()}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


def console_url(client: str, batch_id: str | None) -> str | None:
    """The operator console's page of a batch."""
    if not batch_id:
        return None
    return f"{_base_url()}/console/clients/{quote(client)}/batches/{quote(batch_id)}"


class BatchOutcomeNotifier(BaseNotifier):
    """The alert of a batch's outcome, sent once to every route that takes its event."""

    template_fields = ()

    def __init__(self, client: str) -> None:
        super().__init__()
        self.client = client

    def notify(self, context: Any) -> None:
        """Build the outcome's alert from the warehouse and send it; never raises."""
        try:
            cfg = config_for(self.client)
            ti = context["ti"]
            states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
            failed = sorted(
                t for t, s in states.items() if s in ("failed", "upstream_failed") and t != ti.task_id
            )
            with warehouse() as conn:
                conn.autocommit = True
                alert = _outcome(conn, cfg, ti.run_id, failed, run_url(ti.dag_id, ti.run_id))
                if alert is not None:
                    send(conn, cfg, alert, ti.run_id, context)
        except Exception:  # an alert that cannot be built must not hide the batch's own error
            log.exception("%s: the batch outcome's alert could not be sent", self.client)


def _outcome(
    conn: Any, cfg: ClientConfig, dag_run_id: str, failed: list[str], url: str | None
) -> Alert | None:
    """The alert of the run's batch, from ``tools.batch`` and the failed tasks' errors."""
    row = conn.execute(
        """SELECT b.batch_id, b.status, h.reasons FROM tools.batch_run AS r
           JOIN tools.batch AS b USING (client_schema, batch_id)
           LEFT JOIN tools.batch_health AS h USING (client_schema, batch_id)
           WHERE r.client_schema = %s AND r.dag_run_id = %s""",
        (cfg.client, dag_run_id),
    ).fetchone()
    batch_id, status, health = row if row else (None, None, None)
    failing = None
    for task in failed:  # the first that recorded an error is the one that failed
        reason = failure_reason(conn, cfg.client, batch_id, task)
        if reason:
            failing = (task, reason)
            break
    if failing is None and batch_id is None and "wait_for_files" in failed:
        failing = ("wait_for_files", "no delivery before the sensor's timeout: no batch was opened")
    alert = batch_alert(cfg.client, batch_id, status, failed, failing, list(health or []), url)
    return dataclasses.replace(alert, console_url=console_url(cfg.client, batch_id)) if alert else None


def send(conn: Any, cfg: ClientConfig, alert: Alert, dag_run_id: str | None, context: Any) -> int:
    """Send ``alert`` to each route of the client that takes its event; returns the
    messages sent. Each attempt is logged in ``tools.alert_log``."""
    sent = 0
    for route in cfg.alerts.routes_for(alert.event):
        done = conn.execute(
            """SELECT 1 FROM tools.alert_log WHERE client_schema = %s AND dag_run_id IS NOT DISTINCT FROM %s
               AND event = %s AND target = %s AND status = 'SENT'""",
            (cfg.client, dag_run_id, alert.event, route.target),
        ).fetchone()
        if done and dag_run_id is not None:
            continue
        try:
            _notifier(cfg, route, alert).notify(context)
            status, error = "SENT", None
            sent += 1
        except Exception as exc:
            status, error = "FAILED", one_line(exc)
            log.error("%s: alert to %s not sent: %s", cfg.client, route.target, error)
        conn.execute(
            """INSERT INTO tools.alert_log
                   (client_schema, batch_id, dag_run_id, event, target, subject, status, error_message)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (cfg.client, alert.batch_id, dag_run_id, alert.event, route.target, alert.subject, status, error),
        )
    return sent


def _notifier(cfg: ClientConfig, route: AlertRoute, alert: Alert) -> BaseNotifier:
    """Airflow's notifier for a route, with the alert's message (not re-rendered)."""
    if route.email:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(
            to=route.email,
            subject=alert.subject,
            html_content=alert.html(),
            smtp_conn_id=cfg.alerts.smtp_conn_id,
        )
    if route.slack:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        return SlackWebhookNotifier(slack_webhook_conn_id=route.slack, text=alert.text())
    from airflow.providers.apprise.notifications.apprise import AppriseNotifier

    return AppriseNotifier(title=alert.subject, body=alert.text(), apprise_conn_id=route.apprise or "")


def deadline_missed(client: str, deadline: str, context: Any = None, **_: Any) -> None:
    """The client's deadline alert's callback: the day's run is not SUCCESS in time."""
    cfg = config_for(client)
    # The scheduler passes the run as the REST API shows it (``dag_run_id``, ``state``).
    dag_run = (context or {}).get("dag_run") or {}
    if isinstance(dag_run, dict):
        run_id, state = dag_run.get("dag_run_id") or dag_run.get("run_id"), dag_run.get("state")
    else:
        run_id, state = getattr(dag_run, "run_id", None), getattr(dag_run, "state", None)
    alert = deadline_alert(client, deadline, run_url(client, run_id), str(state) if state else None)
    with warehouse() as conn:
        conn.autocommit = True
        send(conn, cfg, alert, run_id, context or {})


def source_empty(client: str, source: str, runs: int, dag_run_id: str | None, context: Any) -> int:
    """For a source that delivered nothing ``runs`` times in a row: its alert, sent to the
    routes that take ``source_empty``; returns the messages sent."""
    cfg = config_for(client)
    alert = Alert(
        client,
        "source_empty",
        None,
        f"{source} delivered nothing {runs} runs in a row",
        "Ask the source's owner whether it is down or really has nothing new.",
        run_url(client, dag_run_id),
    )
    with warehouse() as conn:
        conn.autocommit = True
        return send(conn, cfg, alert, dag_run_id, context)
