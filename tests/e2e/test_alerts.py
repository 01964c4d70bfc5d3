"""Nobody has to look: a batch's outcome reaches the client's alert routes through
Airflow's notifiers, received here by real servers the tests start (an SMTP server, an
HTTP server standing in for a Slack webhook, a StatsD UDP listener).

- a FAILED batch sends exactly one e-mail and one chat message, with the failed file's
  one-line reason and the runbook's action;
- a SUCCESS batch sends nothing, unless it is unhealthy against its history: then one
  warning, and the batch stays SUCCESS;
- a closed batch's metrics arrive at StatsD, tagged with the client;
- a run not done by the client's deadline alerts its routes, through Airflow's deadline
  alerts evaluated by a real scheduler.
"""

from __future__ import annotations

import email
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from aiosmtpd.controller import Controller

from include.etl.config import CLIENTS_DIR, load_client
from include.etl.orchestration.factory import build_dag
from include.etl.warehouse.migrations import migrate
from scripts.airflow_stack import AirflowStack, StackError, database_beside, free_port
from tests.conftest import deliver_demo, reset_client
from tests.e2e.test_pipeline import drop_gender_column


class Inbox:
    """An SMTP server's handler: every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port  # type: ignore[attr-defined]
    yield handler
    controller.stop()


@pytest.fixture
def chat() -> Iterator[tuple[str, list[dict]]]:
    """A local HTTP server taking Slack webhook posts: its URL and what it received."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def client1_with(folder: Path, **changes: object) -> Path:
    """A clients folder holding the real defaults and client1's real config with
    ``changes``; its client1.yaml."""
    folder.mkdir()
    shutil.copy(CLIENTS_DIR / "_defaults.yaml", folder / "_defaults.yaml")
    config = yaml.safe_load((CLIENTS_DIR / "client1.yaml").read_text())
    config.update(changes)
    (folder / "client1.yaml").write_text(yaml.safe_dump(config))
    return folder / "client1.yaml"


ROUTES = {
    "emails": ["retail-oncall@example.com"],
    "routes": [{"slack": "chat_ops", "events": ["failed", "partial", "quality_failed", "unhealthy"]}],
    "smtp_conn_id": "smtp_alerts",
}


@pytest.fixture
def alerting(inbox: Inbox, chat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """client1's real config with alert routes: on-call e-mail (every event) and a chat
    channel (failures and warnings), through connections pointed at the test's servers."""
    url, _ = chat
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_ALERTS",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": inbox.port,  # type: ignore[attr-defined]
                "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "etl@example.com"},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_CHAT_OPS", json.dumps({"conn_type": "slackwebhook", "password": url}))
    path = client1_with(tmp_path / "clients", alerts=ROUTES)
    monkeypatch.setenv("ETL_CLIENTS_DIR", str(path.parent))
    return load_client(path)


def test_a_failed_batch_sends_one_email_and_one_chat_message(alerting, inbox, chat, conn, landing, tmp_path):
    cfg = alerting
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    deliver_demo("client1", landing, tmp_path / "generated", rows=300, edit=drop_gender_column)

    run = build_dag(cfg).test(run_conf={"mode": "start"})

    assert run.state == "failed"
    reason = "cust_info_BATCH000001.parquet: column(s) missing from the file: cst_gndr"
    (mail,) = inbox.messages
    assert mail["Subject"] == "[ALERT] client1 BATCH000001: failed"
    assert mail["To"] == "retail-oncall@example.com"
    body = (
        mail.get_payload(decode=True)
        if not mail.is_multipart()
        else mail.get_payload()[0].get_payload(decode=True)
    )
    assert f"Reason: {reason}" in body.decode()
    assert "A wrong file: fix it, put it back under its claimed name and trigger restart." in body.decode()
    _, received = chat
    (message,) = received
    assert message["text"].splitlines()[:2] == ["[ALERT] client1 BATCH000001: failed", f"Reason: {reason}"]
    assert f"Airflow run: http://localhost:8080/dags/client1/runs/{quote(run.run_id)}" in message["text"]
    assert "Console: http://localhost:8080/console/clients/client1/batches/BATCH000001" in message["text"]
    sent = conn.execute(
        "SELECT event, target, status FROM tools.alert_log WHERE client_schema = 'client1' ORDER BY target"
    ).fetchall()
    assert sent == [("failed", "retail-oncall@example.com", "SENT"), ("failed", "slack:chat_ops", "SENT")]


def seed_history(conn, loaded_rows: int) -> None:
    """Three earlier successful batches of client1, each 60 s and ``loaded_rows`` rows."""
    conn.execute("UPDATE tools.client_reference SET last_batch_id = 3 WHERE client_schema = 'client1'")
    for n in (1, 2, 3):
        batch = f"BATCH00000{n}"
        conn.execute(
            """INSERT INTO tools.batch
                   (client_schema, batch_id, status, mode, config_version, started_at, ended_at)
               VALUES ('client1', %s, 'SUCCESS', 'start', 'seed', now() - %s::interval,
                       now() - %s::interval + interval '60 seconds')""",
            (batch, f"{10 - n} days", f"{10 - n} days"),
        )
        conn.execute(
            """INSERT INTO tools.file_audit_log (client_schema, batch_id, logical_source_file, source_system,
                   loaded_rows, rejected_rows) VALUES ('client1', %s, 'sales_details', 'crm', %s, 10)""",
            (batch, loaded_rows),
        )


def test_a_successful_batch_alerts_only_when_it_is_unhealthy(alerting, inbox, chat, conn, landing, tmp_path):
    cfg = alerting
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    deliver_demo("client1", landing, tmp_path / "quiet", rows=300)
    assert build_dag(cfg).test(run_conf={"mode": "start"}).state == "success"
    assert inbox.messages == [] and chat[1] == []  # a healthy success says nothing

    reset_client(conn, cfg)
    migrate(conn, [cfg])
    seed_history(conn, loaded_rows=100_000)  # its usual deliveries were far bigger
    deliver_demo("client1", landing, tmp_path / "small", rows=300)
    run = build_dag(cfg).test(run_conf={"mode": "start"})

    assert run.state == "success"
    status, healthy, reasons = conn.execute(
        """SELECT b.status, h.healthy, h.reasons FROM tools.batch AS b
           JOIN tools.batch_health AS h USING (client_schema, batch_id)
           WHERE b.client_schema = 'client1' AND b.batch_id = 'BATCH000004'"""
    ).fetchone()
    assert (status, healthy) == ("SUCCESS", False)
    assert (
        reasons[0].startswith("loaded ")
        and "fewer than the median 100,000 of the last 3 successful" in reasons[0]
    )
    (mail,) = inbox.messages
    assert mail["Subject"] == "[WARNING] client1 BATCH000004: unhealthy"
    (message,) = chat[1]
    assert message["text"].splitlines()[1] == f"Reason: {'; '.join(reasons)}"


def test_a_closed_batch_sends_its_metrics_to_statsd(clients, conn, landing, tmp_path, monkeypatch):
    from airflow.sdk._shared.observability.metrics import stats

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.5)
    for key, value in {
        "STATSD_ON": "True",
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(listener.getsockname()[1]),
        "STATSD_INFLUXDB_ENABLED": "True",
    }.items():
        monkeypatch.setenv(f"AIRFLOW__METRICS__{key}", value)
    monkeypatch.setattr(stats, "_factory", None)  # initialised again, with StatsD on
    monkeypatch.setattr(stats, "_backend", None)
    cfg = clients["client1"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    deliver_demo("client1", landing, tmp_path / "generated", rows=300)

    assert build_dag(cfg).test(run_conf={"mode": "start"}).state == "success"

    received = []
    while True:
        try:
            received.append(listener.recv(4096).decode())
        except TimeoutError:
            break
    ours = {line.split(":")[0]: line for line in received if line.startswith("airflow.etl.")}
    loaded = conn.execute(
        "SELECT sum(loaded_rows) FROM tools.file_audit_log WHERE client_schema = 'client1'"
    ).fetchone()[0]
    assert ours["airflow.etl.batch.rows_loaded,client=client1"] == (
        f"airflow.etl.batch.rows_loaded,client=client1:{loaded}|g"
    )
    assert "airflow.etl.batch.closed.success,client=client1" in ours
    assert "airflow.etl.batch.duration,client=client1" in ours
    assert "airflow.etl.file.sales_details.rows_loaded,client=client1" in ours


def test_a_run_not_done_by_its_deadline_alerts_the_routes(
    alerting, inbox, chat, conn, landing, tmp_path, warehouse_url
):
    """client1 due 20 s after its run is queued, and nothing delivered: the sensor is
    still waiting when the deadline passes; the scheduler's deadline alert e-mails the
    on-call address (the chat route does not take the event) and the run goes on."""
    cfg = alerting
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    path = client1_with(
        tmp_path / "due",
        alerts=ROUTES,
        deadline={"within": "20s", "of": "queued"},
        sensor={"poke_interval_seconds": 5, "timeout_seconds": 600},
    )
    metadata = database_beside(warehouse_url, "airflow_deadline")
    env = {"AIRFLOW_CONN_WAREHOUSE": warehouse_url, "ETL_CLIENTS_DIR": str(path.parent)}
    with AirflowStack(tmp_path / "airflow", metadata, env) as stack:
        stack.start("api-server", "scheduler")
        stack.airflow("dags", "unpause", "client1")
        try:
            stack.wait_for("the deadline alert's e-mail", lambda: inbox.messages, 180, every=2)
        except StackError as exc:
            raise AssertionError(f"no deadline alert: {exc}\n{stack.log_tail('scheduler')}") from None
        ((run_id, state),) = stack.metadata("SELECT run_id, state FROM dag_run WHERE dag_id = 'client1'")

    (mail,) = inbox.messages
    assert mail["Subject"] == "[ALERT] client1 (no batch): deadline missed"
    body = mail.get_payload(decode=True) or mail.get_payload()[0].get_payload(decode=True)
    assert "Reason: the day&#x27;s batch is not SUCCESS within 20s of its queued (the run is running)" in (
        body.decode()
    )
    assert f"/dags/client1/runs/{quote(run_id)}" in body.decode()
    assert state == "running"  # an alert, not a kill: the run still waits for its files
    assert chat[1] == []
    assert conn.execute(
        "SELECT event, target, dag_run_id FROM tools.alert_log WHERE client_schema = 'client1'"
    ).fetchall() == [("deadline_missed", "retail-oncall@example.com", run_id)]


def test_no_delivery_before_the_sensors_timeout_alerts_once(alerting, inbox, chat, conn, landing, tmp_path):
    """Nothing delivered: the sensor times out, no batch is opened, and the on-call
    address hears it once (the chat route does not take ``no_delivery``)."""
    sensor = alerting.sensor.model_copy(update={"poke_interval_seconds": 1, "timeout_seconds": 3})
    cfg = alerting.model_copy(update={"sensor": sensor})
    reset_client(conn, cfg)
    migrate(conn, [cfg])

    run = build_dag(cfg).test(run_conf={"mode": "start"})

    assert run.state == "failed"
    (mail,) = inbox.messages
    assert mail["Subject"] == "[ALERT] client1 (no batch): no delivery"
    body = mail.get_payload(decode=True) or mail.get_payload()[0].get_payload(decode=True)
    assert "Reason: no delivery before the sensor&#x27;s timeout: no batch was opened" in body.decode()
    assert "Deliver the missing file into raw/client1/&lt;system&gt;/incoming" in body.decode()
    assert chat[1] == []
