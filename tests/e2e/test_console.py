"""The operator console, served by a real api-server with the plugin loaded, over a
warehouse holding a successful client1 batch (with a rejected row whose values are
markup) and a failed one (a file missing a column).

- every route refuses a request without a valid token (401/403), and answers with one;
- each page says what an operator must see, by value; markup from the data is text;
- the lineage of a fact row leads back to its delivered file and row;
- a headless Chromium (Debian's, no download) renders each page (screenshots kept in
  ``.local/artifacts/console``), and the nav entry is registered with the UI.
"""

from __future__ import annotations

import csv
import json
import secrets
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from include.etl.orchestration.factory import build_dag
from include.etl.warehouse.migrations import migrate
from scripts.airflow_stack import ROOT, AirflowStack, database_beside
from tests.conftest import deliver_demo, reset_client
from tests.e2e.test_pipeline import drop_gender_column

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / ".local" / "artifacts" / "console"
MARKUP_ORDER = "<script>alert(1)</script>"
MARKUP_SALES = "<img src=x onerror=alert(2)>"


def add_markup_row(path: Path) -> None:
    """A sales line whose order number and amount are markup: its amount is rejected."""
    if path.name == "sales_details.csv":
        text = path.read_text(encoding="utf-8")
        line = f"{MARKUP_ORDER},BK-R93R-62,11000,20101229,20110105,20110110,{MARKUP_SALES},1,3578\n"
        path.write_text(text + ("" if text.endswith("\n") else "\n") + line, encoding="utf-8")


@pytest.fixture(scope="module")
def warehouse_with_batches(tmp_path_factory, clients, warehouse_url) -> dict:
    """client1: BATCH000001 SUCCESS (one markup row rejected), BATCH000002 FAILED."""
    import psycopg

    from include.etl.ingest.landing import Landing

    tmp = tmp_path_factory.mktemp("console")
    landing = Landing(tmp / "landing")
    cfg = clients["client1"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ETL_DATA_ROOT", str(landing.root))
        dsn = warehouse_url.replace("postgres://", "postgresql://", 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            reset_client(conn, cfg)
            migrate(conn, [cfg])
        good = deliver_demo("client1", landing, tmp / "good", rows=300, edit=add_markup_row)
        assert build_dag(cfg).test(run_conf={"mode": "start"}).state == "success"
        deliver_demo("client1", landing, tmp / "bad", rows=300, edit=drop_gender_column)
        assert build_dag(cfg).test(run_conf={"mode": "start"}).state == "failed"
    return {"landing": landing, "sales": good["sales_details.csv"], "tmp": tmp}


@pytest.fixture(scope="module")
def console(warehouse_with_batches, warehouse_url) -> Iterator[dict]:
    """An api-server with the plugin, a user ``operator`` and its token."""
    tmp = warehouse_with_batches["tmp"]
    password = secrets.token_urlsafe(16)
    passwords = tmp / "passwords.json"
    passwords.write_text(json.dumps({"operator": password}))
    metadata = database_beside(warehouse_url, "airflow_console")
    env = {
        "AIRFLOW_CONN_WAREHOUSE": warehouse_url,
        "ETL_DATA_ROOT": str(warehouse_with_batches["landing"].root),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "operator:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    with AirflowStack(tmp / "airflow", metadata, env) as stack:
        stack.start("api-server")
        base = f"http://127.0.0.1:{stack.port}"
        token = stack.token("operator", password)
        yield {"base": base, "token": token, "stack": stack}


def get(console: dict, path: str, token: str | None = "valid") -> tuple[int, str, dict]:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {console['token'] if token == 'valid' else token}"
    request = urllib.request.Request(console["base"] + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), dict(exc.headers)


ROUTES = [
    "/console/",
    "/console/clients/client1/batches/BATCH000001",
    "/console/clients/client1/batches/BATCH000001/rejected",
    "/console/clients/client1/batches/BATCH000001/rejected.csv",
    "/console/lineage?client=client1&table=fact_sales&key=SO1,BK-1",
]


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_needs_an_authenticated_user(console, route) -> None:
    assert get(console, route, token=None)[0] in (401, 403)
    assert get(console, route, token="not-a-token")[0] in (401, 403)
    assert get(console, route)[0] == 200


def test_the_clients_page_shows_each_clients_last_batch(console) -> None:
    status, page, _ = get(console, "/console/")
    assert status == 200
    assert 'href="/console/clients/client1/batches/BATCH000002">BATCH000002</a>' in page
    assert '<td class="FAILED">FAILED</td>' in page
    assert '<svg width="240" height="64" role="img" aria-label="last 2 batches">' in page


def test_the_failed_batch_page_says_why_and_what_to_do(console) -> None:
    _, page, _ = get(console, "/console/clients/client1/batches/BATCH000002")
    reason = "cust_info_BATCH000002.parquet: column(s) missing from the file: cst_gndr"
    assert f"<b>cust_info.validate_mapping</b> failed: {reason}" in page
    assert "A wrong file: fix it, put it back under its claimed name and trigger restart." in page
    assert 'href="/dags/client1/runs/' in page and "/tasks/cust_info.validate_mapping" in page
    assert "cust_info_BATCH000002.csv" in page  # the files table


def test_rejected_rows_are_shown_as_text_and_downloadable(console, warehouse_with_batches) -> None:
    _, page, _ = get(console, "/console/clients/client1/batches/BATCH000001/rejected?file=sales_details")
    assert MARKUP_ORDER not in page and MARKUP_SALES not in page  # never markup
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    with warehouse_with_batches["sales"].open(encoding="utf-8") as f:
        line = next(i for i, row in enumerate(csv.reader(f)) if row and row[0] == MARKUP_ORDER)
    status, body, headers = get(
        console, "/console/clients/client1/batches/BATCH000001/rejected.csv?file=sales_details"
    )
    assert status == 200 and headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(body.splitlines()))
    (markup,) = [r for r in rows if MARKUP_SALES in r["raw_record"]]
    assert (markup["file"], markup["column"], int(markup["row"])) == ("sales_details", "sls_sales", line)
    assert f'<td class="n">{line}</td>' in page


def test_the_batch_page_shows_its_snapshot_deliveries_and_extract_windows(console, conn) -> None:
    """What each snapshot delivered and what silver kept of it (the first batch keeps all),
    whether it was compared (not when it repeated an earlier batch's files), and a
    database source's window: where it started, where it ended, the rows it took."""
    customers = conn.execute(
        "SELECT count(*) FROM silver_client1.crm_cust_info WHERE dwh_batch_id = 'BATCH000001'"
    ).fetchone()[0]
    conn.execute(
        """INSERT INTO tools.extract_window (client_schema, batch_id, logical_source_file, full_load,
               lower_watermark, lower_key, upper_watermark, extracted_rows, last_watermark, last_key,
               extracted_at)
           VALUES ('client1', 'BATCH000001', 'customers', false, '2026-03-01 12:00:00+00', '7',
                   '2026-03-01 14:00:00+00', 659, '2026-03-01 13:59:00+00', '42', '2026-03-01 14:05:00+00')"""
    )
    # a snapshot that repeated an earlier batch's files (not compared), as the page says it
    repeated = """UPDATE tools.snapshot_delivery SET same_as_batch = %s
                  WHERE client_schema = 'client1' AND batch_id = 'BATCH000001'
                    AND table_name = 'silver_client1.erp_px_cat_g1v2'"""
    conn.execute(repeated, ("BATCH000000",))
    changed_only = """UPDATE tools.snapshot_delivery SET compared_keys = %s
                      WHERE client_schema = 'client1' AND batch_id = 'BATCH000001'
                        AND table_name = 'silver_client1.erp_loc_a101'"""
    conn.execute(changed_only, (1234,))
    try:
        _, page, _ = get(console, "/console/clients/client1/batches/BATCH000001")
    finally:
        conn.execute("DELETE FROM tools.extract_window WHERE client_schema = 'client1'")
        conn.execute(repeated, (None,))
        conn.execute(changed_only, (None,))
    assert (
        f'<tr><td>silver_client1.crm_cust_info</td><td class="n">{customers:,}</td>\n'
        f'<td class="n">{customers:,}</td><td class="n">0</td>\n<td>every key</td></tr>'
    ) in page
    assert "<td>no: BATCH000000's files again</td></tr>" in page
    assert "<td>the changed rows' 1,234 keys</td></tr>" in page
    assert (
        "<tr><td>customers</td><td>incremental</td>\n<td>2026-03-01 12:00:00 UTC (key 7)</td>\n"
        '<td>2026-03-01 14:00:00 UTC</td><td class="n">659</td>\n'
        "<td>2026-03-01 13:59:00 UTC (key 42)</td>\n<td>2026-03-01 14:05:00 UTC</td></tr>"
    ) in page


def test_the_batch_page_says_when_a_step_ran_again_for_it(console, conn) -> None:
    """A step run again for this batch because an earlier batch was run again (a snapshot's
    later comparison) shows as the step's last run, with the batch that caused it."""
    conn.execute(
        """INSERT INTO tools.sql_step_log (client_schema, batch_id, layer, step_name, target_table,
               status, rows_in_batch, try_number, started_at, ended_at, again_after)
           VALUES ('client1', 'BATCH000002', 'silver', 'crm_cust_info', 'silver_client1.crm_cust_info',
                   'SUCCESS', 12, 1, '2026-03-02 10:00:00+00', '2026-03-02 10:00:02.5+00',
                   '<b>BATCH000001</b>')"""
    )
    try:
        _, page, _ = get(console, "/console/clients/client1/batches/BATCH000002")
    finally:
        conn.execute("DELETE FROM tools.sql_step_log WHERE again_after IS NOT NULL")
    assert (
        '<td class="SUCCESS">SUCCESS</td><td class="n">12</td>\n'
        '<td class="n">2.50</td><td class="n">1</td><td><span class="muted">'
        "run again after &lt;b&gt;BATCH000001&lt;/b&gt; was run again</span></td></tr>"
    ) in page


def test_a_fact_row_traced_back_to_its_file_and_row(console, warehouse_with_batches) -> None:
    with warehouse_with_batches["sales"].open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    line, row = 7, rows[7]  # the seventh data row (the header is row 0)
    order, product = row[0].strip(), row[1].strip()
    _, page, _ = get(
        console, f"/console/lineage?client=client1&table=fact_sales&key={quote(order)},{quote(product)}"
    )
    assert f"<td>{order}</td>" in page
    assert f"Delivered file <b>sales_details_BATCH000001.csv</b>, data row <b>{line}</b>" in page
    assert "bronze.crm_sales_details (as delivered)" in page


def test_a_lineage_key_of_the_wrong_type_is_said_so(console) -> None:
    _, page, _ = get(console, "/console/lineage?client=client1&table=dim_customers&key=%3Cb%3EAW7")
    assert (
        '<p class="FAILED">dim_customers is found by customer_id: '
        "invalid input syntax for type bigint: &#34;&lt;b&gt;AW7&#34;</p>"
    ) in page


def test_an_unknown_client_or_batch_is_not_found(console) -> None:
    assert get(console, "/console/clients/nobody/batches/BATCH000001")[0] == 404
    assert get(console, "/console/clients/client1/batches/..%2F..%2Fetc")[0] == 404
    assert get(console, "/console/clients/client1/batches/BATCH999999")[0] == 404


def test_the_console_is_in_the_uis_navigation(console) -> None:
    _, body, _ = get(console, "/api/v2/plugins")
    (plugin,) = [p for p in json.loads(body)["plugins"] if p["name"] == "etl_console"]
    assert plugin["external_views"][0]["href"] == "/console/"
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/console"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (Debian's chromium package)")
def test_each_page_in_a_real_browser(console, warehouse_with_batches) -> None:
    from playwright.sync_api import sync_playwright

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    alerts: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.add_cookies([{"name": "_token", "value": console["token"], "url": console["base"]}])
        page = context.new_page()
        page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))

        page.goto(f"{console['base']}/console/")
        assert page.locator("td.FAILED").first.inner_text() == "FAILED"
        page.screenshot(path=str(ARTIFACTS / "clients.png"), full_page=True)

        # client1's last batch (other clients of this warehouse may have one of that id)
        page.locator('a[href="/console/clients/client1/batches/BATCH000002"]').click()
        assert "column(s) missing from the file: cst_gndr" in page.locator("div.action").inner_text()
        page.screenshot(path=str(ARTIFACTS / "batch.png"), full_page=True)

        page.goto(
            f"{console['base']}/console/clients/client1/batches/BATCH000001/rejected?file=sales_details"
        )
        cell = page.get_by_text(MARKUP_SALES, exact=False).first
        assert cell.is_visible()  # the markup is text on the page, not an element
        assert page.locator("img").count() == 0 and page.locator("body script").count() == 0
        page.screenshot(path=str(ARTIFACTS / "rejected.png"), full_page=True)

        page.goto(f"{console['base']}/console/lineage")
        page.fill("input[name=key]", "")
        with warehouse_with_batches["sales"].open(encoding="utf-8") as f:
            row = list(csv.reader(f))[3]
        page.fill("input[name=key]", f"{row[0].strip()},{row[1].strip()}")
        page.get_by_role("button", name="trace").click()
        assert "data row 3" in page.locator("p.origin").first.inner_text()
        page.screenshot(path=str(ARTIFACTS / "lineage.png"), full_page=True)
        browser.close()
    assert alerts == []  # no markup from the data ever ran
    assert sorted(p.name for p in ARTIFACTS.glob("*.png")) == [
        "batch.png",
        "clients.png",
        "lineage.png",
        "rejected.png",
    ]
