"""What an alert says, and which routes take it (include/etl/alerts.py, the config's
``alerts:``): by value, no server needed."""

from __future__ import annotations

import pytest

from include.etl.alerts import action_for, batch_alert, deadline_alert, outcome_event
from include.etl.config import AlertRoute, Alerts
from tests.unit.test_config import clients_dir as clients_dir  # a fixture, used by name
from tests.unit.test_config import load_error, minimal


@pytest.mark.parametrize(
    ("status", "failed", "unhealthy", "event"),
    [
        ("SUCCESS", [], False, None),  # a healthy success says nothing
        ("SUCCESS", [], True, "unhealthy"),
        ("PARTIAL", ["plans.convert"], False, "partial"),
        ("FAILED", ["quality.gold"], False, "quality_failed"),
        ("FAILED", ["quality.silver", "gold.fact_sales"], False, "failed"),
        ("FAILED", ["cust_info.validate_mapping"], False, "failed"),
        (None, ["wait_for_files"], False, "no_delivery"),  # the sensor timed out: no batch
        (None, ["open_batch"], False, "failed"),
    ],
)
def test_the_event_of_a_batch_outcome(status, failed, unhealthy, event) -> None:
    assert outcome_event(status, failed, unhealthy) == event


def test_a_failed_batch_says_who_what_why_and_what_to_do() -> None:
    alert = batch_alert(
        "client1",
        "BATCH000007",
        "FAILED",
        ["LOC_A101.convert", "silver.erp_loc_a101"],
        ("LOC_A101.convert", "LOC_A101_BATCH000007.csv: line 46 has 1 fields, the header has 2"),
        [],
        "http://airflow/dags/client1/runs/r1",
    )
    assert alert is not None
    assert alert.text().splitlines() == [
        "[ALERT] client1 BATCH000007: failed",
        "Reason: LOC_A101_BATCH000007.csv: line 46 has 1 fields, the header has 2",
        "Action: Fix the file, put it back into raw/client1/<system>/incoming under its claimed name, "
        "then trigger restart.",
        "Airflow run: http://airflow/dags/client1/runs/r1",
    ]


def test_an_alert_escapes_what_it_quotes_in_html() -> None:
    alert = batch_alert(
        "client1", "B1", "FAILED", ["x.convert"], ("x.convert", "<script>alert(1)</script>"), []
    )
    assert alert is not None
    assert "<script>" not in alert.html() and "&lt;script&gt;alert(1)&lt;/script&gt;" in alert.html()


def test_unhealthy_is_a_warning_with_every_reason_and_a_missed_deadline_names_the_run_state() -> None:
    alert = batch_alert("c", "B2", "SUCCESS", [], None, ["took 5x the median", "loaded 90% fewer rows"])
    assert alert is not None and alert.warning
    assert alert.subject == "[WARNING] c B2: unhealthy"
    assert alert.reason == "took 5x the median; loaded 90% fewer rows"
    late = deadline_alert("c", "within 7h of its logical date", None, "running")
    assert late.subject == "[ALERT] c (no batch): deadline missed"
    assert late.reason == "the day's batch is not SUCCESS within 7h of its logical date (the run is running)"


def test_the_runbook_action_by_failed_task() -> None:
    assert action_for("c", "quality.gold").startswith("Find the rows the check names")
    assert action_for("c", "gold.fact_sales").startswith("Fix the SQL file")
    assert action_for("c", "wait_for_files").startswith("Deliver the missing file into raw/c/")
    assert action_for("c", "something_else").startswith("Read the red task's log")


def test_routes_take_their_events_and_emails_take_every_event() -> None:
    alerts = Alerts(
        emails=["oncall@example.com"],
        routes=[
            AlertRoute(slack="chat", events=["failed"]),
            AlertRoute(apprise="teams", events=["unhealthy"]),
        ],
        smtp_conn_id="smtp_default",
    )
    assert [r.target for r in alerts.routes_for("failed")] == ["oncall@example.com", "slack:chat"]
    assert [r.target for r in alerts.routes_for("unhealthy")] == ["oncall@example.com", "apprise:teams"]
    assert [r.target for r in alerts.routes_for("deadline_missed")] == ["oncall@example.com"]


def test_a_route_with_two_targets_an_unknown_event_or_a_bad_deadline_is_refused(clients_dir) -> None:
    both = {**minimal("acme"), "alerts": {"routes": [{"slack": "a", "apprise": "b"}]}}
    assert "exactly one of email, slack or apprise" in load_error(clients_dir, "acme", both)
    unknown = {**minimal("acme"), "alerts": {"routes": [{"slack": "a", "events": ["sometimes"]}]}}
    message = load_error(clients_dir, "acme", unknown)
    assert message.startswith("acme.yaml") and "alerts.routes" in message and "sometimes" in message
    late = {**minimal("acme"), "deadline": {"within": "soon"}}
    assert "deadline.within" in load_error(clients_dir, "acme", late)
