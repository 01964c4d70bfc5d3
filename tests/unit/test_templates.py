"""SQL templates: no client's name in a template, rendering with the client's names (here
and in the DAG, as the UI's "Rendered Template" shows it), a client file over its
template's settings (steps overridden or added by name), and the contract checks, each a
one-line error naming the file and the entry."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import include.etl.config as config
from include.etl.config import ConfigError, config_for, load_client

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "sql" / "templates"
CLIENT_NAMES = sorted(
    p.stem for p in (ROOT / "include" / "clients").glob("*.yaml") if not p.stem.startswith("_")
)


@pytest.mark.parametrize(
    "path",
    sorted(p for p in TEMPLATES.rglob("*") if p.is_file()),
    ids=lambda p: str(p.relative_to(TEMPLATES)),
)
def test_no_template_names_a_client_schema(path: Path) -> None:
    text = path.read_text()
    assert not re.findall(r"\b(?:bronze|silver|gold)_[a-z0-9_]+\s*\.", text), "a schema named literally"
    for client in CLIENT_NAMES:
        assert f"'{client}'" not in text, f"the client {client} as a literal value"
        assert not re.search(rf"\w_{client}\b", text), f"a name ending in _{client}"


def test_a_step_file_renders_with_the_clients_names() -> None:
    client1, client3 = config_for("client1"), config_for("client3")
    text1 = client1.render_sql("silver/crm_cust_info.sql")
    text3 = client3.render_sql("silver/crm_cust_info.sql")
    assert "INSERT INTO silver_client3.crm_cust_info" in text3
    assert "FROM bronze_client3.crm_cust_info" in text3
    assert "shared.clean_text(cst_key)" in text3
    assert "client1" not in text3
    assert text3 == text1.replace("client1", "client3")
    summary = client3.render_sql("views/mv_customer_lifetime_value.sql")
    assert "WHERE client_schema = 'client3' AND layer = 'views'" in summary


def test_the_dag_renders_a_step_with_the_clients_names() -> None:
    from include.etl.orchestration.factory import build_dag

    cfg = config_for("client3")
    dag = build_dag(cfg)
    task = dag.get_task("silver.crm_cust_info")
    assert task.sql == "silver/crm_cust_info.sql"
    rendered = task.render_template(task.sql, {}, dag.get_template_env())
    assert rendered == cfg.render_sql("silver/crm_cust_info.sql")
    assert "silver_client3.crm_cust_info" in rendered


# ------------------------------------------------------------------ a client over its template
@pytest.fixture
def sql_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQL folder with the real templates and an empty sql/clients/acme."""
    root = tmp_path / "sql"
    shutil.copytree(TEMPLATES, root / "templates")
    (root / "clients" / "acme").mkdir(parents=True)
    monkeypatch.setattr(config, "SQL_DIR", root)
    return root


def acme(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "clients"
    folder.mkdir(exist_ok=True)
    path = folder / "acme.yaml"
    path.write_text("client: acme\ndisplay_name: Acme stores\ntemplate: retail_crm_erp\n" + text)
    return path


def test_a_client_of_a_template_is_its_file_and_the_templates_settings(
    sql_root: Path, tmp_path: Path
) -> None:
    cfg = load_client(acme(tmp_path, "schedule: '0 4 * * *'\n"))
    client1 = config_for("client1")
    assert cfg.schedule == "0 4 * * *"
    assert [f.name for _, f in cfg.files] == [f.name for _, f in client1.files]
    assert cfg.silver == client1.silver and cfg.gold == client1.gold and cfg.views == client1.views
    assert cfg.silver_schema == "silver_acme"
    assert cfg.sql_search_path == [sql_root / "clients" / "acme", sql_root / "templates" / "retail_crm_erp"]
    assert cfg.migration_folders() == [
        ("acme", sql_root / "templates" / "retail_crm_erp" / "migrations"),
        ("acme:own", sql_root / "clients" / "acme" / "migrations"),
    ]


def test_a_client_overrides_a_steps_file_and_adds_a_step(sql_root: Path, tmp_path: Path) -> None:
    own = sql_root / "clients" / "acme"
    (own / "silver").mkdir()
    (own / "silver" / "crm_cust_info_v2.sql").write_text(
        "DELETE FROM {{ silver }}.crm_cust_info WHERE false;\n"
    )
    (own / "silver" / "store_visits.sql").write_text("DELETE FROM {{ silver }}.store_visits WHERE false;\n")
    (own / "migrations").mkdir()
    (own / "migrations" / "V001__store_visits.sql").write_text(
        "CREATE TABLE IF NOT EXISTS {{ silver }}.store_visits (\n"
        "    store text, visits bigint, dwh_batch_id text NOT NULL\n);\n"
    )
    path = acme(
        tmp_path,
        "silver:\n"
        "  - {name: crm_cust_info, sql: silver/crm_cust_info_v2.sql}\n"
        "  - {name: store_visits, sql: silver/store_visits.sql, table: store_visits}\n",
    )

    cfg = load_client(path)

    template = config_for("client1")
    assert [s.name for s in cfg.silver] == [s.name for s in template.silver] + ["store_visits"]
    overridden = next(s for s in cfg.silver if s.name == "crm_cust_info")
    assert (overridden.sql, overridden.table) == ("silver/crm_cust_info_v2.sql", "crm_cust_info")
    assert cfg.render_sql(overridden.sql) == "DELETE FROM silver_acme.crm_cust_info WHERE false;\n"
    assert (
        cfg.sql_file("silver/crm_prd_info.sql")
        == sql_root / "templates/retail_crm_erp/silver/crm_prd_info.sql"
    )
    # A file of the template's path in the client's folder wins over the template's.
    (own / "silver" / "crm_prd_info.sql").write_text("SELECT 1;\n")
    assert cfg.render_sql("silver/crm_prd_info.sql") == "SELECT 1;\n"


def test_a_template_that_does_not_exist(sql_root: Path, tmp_path: Path) -> None:
    path = acme(tmp_path, "")
    path.write_text(path.read_text().replace("retail_crm_erp", "retail_crm"))
    with pytest.raises(ConfigError) as error:
        load_client(path)
    assert str(error.value) == (
        f"acme.yaml: template: no template 'retail_crm' in {sql_root / 'templates'} "
        "(there are: retail_crm_erp, saas_billing)"
    )


def test_an_override_file_that_does_not_exist(sql_root: Path, tmp_path: Path) -> None:
    path = acme(tmp_path, "gold:\n  - {name: dim_products, sql: gold/dim_products_v2.sql}\n")
    with pytest.raises(ConfigError) as error:
        load_client(path)
    assert str(error.value) == (
        "acme.yaml: gold[dim_products].sql: gold/dim_products_v2.sql is in neither "
        "sql/templates/retail_crm_erp or sql/clients/acme"
    )


def test_a_step_whose_table_no_migration_creates(sql_root: Path, tmp_path: Path) -> None:
    (sql_root / "clients" / "acme" / "silver").mkdir()
    (sql_root / "clients" / "acme" / "silver" / "returns.sql").write_text("SELECT 1;\n")
    path = acme(tmp_path, "silver:\n  - {name: returns, sql: silver/returns.sql, table: returns}\n")
    with pytest.raises(ConfigError) as error:
        load_client(path)
    assert str(error.value) == (
        "acme.yaml: silver[returns].table: silver.returns is not created by the migrations "
        "of template retail_crm_erp (or the client's own)"
    )


def test_a_target_without_dwh_batch_id(sql_root: Path, tmp_path: Path) -> None:
    own = sql_root / "clients" / "acme"
    (own / "silver").mkdir()
    (own / "silver" / "returns.sql").write_text("SELECT 1;\n")
    (own / "migrations").mkdir()
    (own / "migrations" / "V001__returns.sql").write_text(
        "-- a table a step could not replace by batch: no dwh_batch_id\n"
        "CREATE TABLE IF NOT EXISTS {{ silver }}.returns (order_number text, returned_on date);\n"
    )
    path = acme(tmp_path, "silver:\n  - {name: returns, sql: silver/returns.sql, table: returns}\n")
    with pytest.raises(ConfigError) as error:
        load_client(path)
    assert str(error.value) == (
        "acme.yaml: silver[returns].table: silver.returns has no dwh_batch_id column "
        "(every step replaces its batch's rows by it)"
    )
    # Added by a later migration, it is there.
    (own / "migrations" / "V002__returns_batch.sql").write_text(
        "ALTER TABLE {{ silver }}.returns ADD COLUMN IF NOT EXISTS dwh_batch_id text;\n"
    )
    assert [s.name for s in load_client(path).silver][-1] == "returns"


def test_every_template_step_writes_a_batch_scoped_table() -> None:
    """The shipped templates meet their own contract (what the checks above enforce)."""
    from include.etl.templates import created_tables

    for template in ("retail_crm_erp", "saas_billing"):
        created = created_tables(sorted((TEMPLATES / template / "migrations").glob("V*.sql")))
        settings = config._read_yaml(TEMPLATES / template / "template.yaml")
        for layer in ("silver", "gold"):
            for step in settings[layer]:
                assert created[layer].get(step["table"]) is True, f"{template} {layer}.{step['table']}"
