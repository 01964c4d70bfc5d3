"""What an alert says: the event a batch outcome is, and a short, actionable message.

One alert per batch outcome (not one per red task): the client, the batch, what failed
with its one-line reason, the runbook's action for it, and a link to the Airflow run.
Sending it is ``include.etl.orchestration.notifications``' job (Airflow's notifiers).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

# The runbook's action for the first failed task, by what the task is (README: Runbook).
ACTIONS: tuple[tuple[str, str], ...] = (
    (
        "wait_for_files",
        "Deliver the missing file into raw/{client}/<system>/incoming (its name must match the "
        "pattern in the DAG's docs), then clear wait_for_files with downstream.",
    ),
    (
        "open_batch",
        "Read open_batch's log: a refused run mode or a broken config; fix it and trigger again.",
    ),
    (
        ".convert",
        "Fix the file, put it back into raw/{client}/<system>/incoming under its claimed name, "
        "then trigger restart.",
    ),
    (
        ".validate_mapping",
        "A wrong file: fix it, put it back under its claimed name and trigger restart. A wrong "
        "mapping: fix the config, then trigger reprocessing.",
    ),
    (
        ".validate_rows",
        "Look at tools.rejected_rows: fix the file and restart, or, if the policy is too strict, "
        "change reject_policy and trigger reprocessing.",
    ),
    (
        ".load_bronze",
        "Fix the cause (database space, permissions, network), then clear the task.",
    ),
    ("silver.", "Fix the SQL file, then clear the red task with downstream (or trigger reprocessing)."),
    ("gold.", "Fix the SQL file, then clear the red task with downstream (or trigger reprocessing)."),
    ("refresh_views.", "Fix the view (a new migration), then clear the task."),
    (
        "quality.",
        "Find the rows the check names and fix the cause; then clear the gate (data repaired) or "
        "restart (a bad delivery).",
    ),
)
UNHEALTHY_ACTION = (
    "The batch loaded and passed its gates: check the delivery against the client's recent "
    "batches (tools.batch_health) before analysts rely on it."
)
DEADLINE_ACTION = "Look at the run: a file not delivered yet (ask the sender), a red task (see its log)."


@dataclass(frozen=True)
class Alert:
    """One alert: a batch outcome (or a missed deadline), said in a few lines."""

    client: str
    event: str  # an AlertEvent of include.etl.config
    batch_id: str | None
    reason: str
    action: str
    run_url: str | None = None
    warning: bool = False  # unhealthy: a warning, the batch itself succeeded
    console_url: str | None = None  # the batch's page in the operator console

    @property
    def subject(self) -> str:
        """One line: who, what, which batch."""
        level = "WARNING" if self.warning else "ALERT"
        what = self.event.replace("_", " ")
        return f"[{level}] {self.client} {self.batch_id or '(no batch)'}: {what}"

    def text(self) -> str:
        """The message as plain text (chat)."""
        lines = [self.subject, f"Reason: {self.reason}", f"Action: {self.action}"]
        if self.run_url:
            lines.append(f"Airflow run: {self.run_url}")
        if self.console_url:
            lines.append(f"Console: {self.console_url}")
        return "\n".join(lines)

    def html(self) -> str:
        """The message as HTML (e-mail), every value escaped."""
        e = html.escape
        run = f'<p><a href="{e(self.run_url)}">The Airflow run</a></p>' if self.run_url else ""
        if self.console_url:
            run += f'<p><a href="{e(self.console_url)}">The batch in the console</a></p>'
        return (
            f"<p><b>{e(self.subject)}</b></p><p>Reason: {e(self.reason)}</p>"
            f"<p>Action: {e(self.action)}</p>{run}"
        )


def failed_tasks_of(message: str | None) -> list[str]:
    """The failed task ids a batch's closing message lists (``failed tasks: a, b``)."""
    if not message or "failed tasks: " not in message:
        return []
    return [t.strip() for t in message.rsplit("failed tasks: ", 1)[1].split(",") if t.strip()]


def action_for(client: str, task_id: str | None) -> str:
    """The runbook's action for a failed task."""
    for kind, action in ACTIONS:
        if task_id and (task_id == kind or task_id.startswith(kind) or task_id.endswith(kind)):
            return action.format(client=client)
    return "Read the red task's log in Airflow, fix the cause, then clear the task with downstream."


def outcome_event(status: str | None, failed: list[str], unhealthy: bool) -> str | None:
    """The alert event of a batch outcome; None for a healthy success."""
    if status is None:
        return "no_delivery" if "wait_for_files" in failed else "failed"
    if status == "PARTIAL":
        return "partial"
    if status == "FAILED":
        return "quality_failed" if failed and all(t.startswith("quality.") for t in failed) else "failed"
    return "unhealthy" if unhealthy else None


def batch_alert(
    client: str,
    batch_id: str | None,
    status: str | None,
    failed: list[str],
    failing: tuple[str, str] | None,
    health: list[str],
    run_url: str | None = None,
) -> Alert | None:
    """The alert of a batch outcome, or None when there is nothing to say.

    ``failed``: the run's failed tasks (upstream-failed ones too); ``failing``: the task
    that failed first and its one-line error; ``health``: why a SUCCESS batch is unhealthy.
    """
    event = outcome_event(status, failed, bool(health))
    if event is None:
        return None
    if event == "unhealthy":
        return Alert(client, event, batch_id, "; ".join(health), UNHEALTHY_ACTION, run_url, warning=True)
    task, reason = failing or (failed[0] if failed else None, f"failed tasks: {', '.join(failed)}")
    return Alert(client, event, batch_id, reason, action_for(client, task), run_url)


def deadline_alert(client: str, deadline: str, run_url: str | None, state: str | None) -> Alert:
    """The alert of a missed deadline: the day's batch is not SUCCESS in time."""
    reason = f"the day's batch is not SUCCESS {deadline} (the run is {state or 'not started'})"
    return Alert(client, "deadline_missed", None, reason, DEADLINE_ACTION, run_url)
