"""Client configuration: the real client files load, defaults merge, bad files are refused
with an error that names the file and the field."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml

from include.etl.config import (
    CLIENTS_DIR,
    DEFAULTS_FILE,
    SCHEMA_FILE,
    ClientConfig,
    ConfigError,
    client_files,
    client_schema,
    load_client,
    load_clients,
)

CLIENT_FILES = client_files()
DEFAULTS = yaml.safe_load((CLIENTS_DIR / DEFAULTS_FILE).read_text(encoding="utf-8"))

MINIMAL: dict = {
    "display_name": "Test client",
    "owner": "test-team",
    "sources": [
        {
            "name": "crm",
            "files": [
                {
                    "name": "customers",
                    "pattern": r"customers(_\d{8})?\.csv",
                    "type": "csv",
                    "bronze_table": "crm_customers",
                    "key_columns": ["customer_id"],
                    "columns": [
                        {"source": "customer_id", "type": "integer", "required": True},
                        {"source": "Full Name", "target": "full_name"},
                        {"source": "signup", "type": "date"},
                    ],
                }
            ],
        }
    ],
    "silver": [{"name": "customers", "sql": "silver/customers.sql", "table": "customers"}],
    "gold": [
        {"name": "dim_customers", "sql": "gold/dim_customers.sql", "table": "dim_customers"},
        {
            "name": "fact_signups",
            "sql": "gold/fact_signups.sql",
            "table": "fact_signups",
            "depends_on": ["dim_customers"],
        },
    ],
}


def minimal(name: str) -> dict:
    return {"client": name, **copy.deepcopy(MINIMAL)}


def the_file(data: dict) -> dict:
    """The (only) source file of a config built from MINIMAL."""
    return data["sources"][0]["files"][0]


@pytest.fixture
def clients_dir(tmp_path: Path) -> Path:
    """A clients folder holding a copy of the real _defaults.yaml."""
    folder = tmp_path / "clients"
    folder.mkdir()
    shutil.copy(CLIENTS_DIR / DEFAULTS_FILE, folder / DEFAULTS_FILE)
    return folder


def write(folder: Path, name: str, data: dict | str) -> Path:
    path = folder / f"{name}.yaml"
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def load_error(folder: Path, name: str, data: dict | str) -> str:
    path = write(folder, name, data)
    with pytest.raises(ConfigError) as info:
        load_client(path)
    return str(info.value)


# ------------------------------------------------------------------ the real client files
@pytest.mark.parametrize("path", CLIENT_FILES, ids=[p.stem for p in CLIENT_FILES])
def test_every_client_file_loads(path: Path) -> None:
    cfg = load_client(path)
    assert cfg.client == path.stem
    assert cfg.config_file == path.name
    assert len(cfg.config_version) == 12
    assert cfg.files, "a client has at least one source file"
    for _, f in cfg.files:
        assert set(f.key_columns) <= {c.name for c in f.columns}
    for step in [*cfg.silver, *cfg.gold, *(v for v in cfg.views if v.sql)]:
        assert cfg.sql_file(step.sql) is not None, f"{step.sql} exists"


def test_load_clients_finds_every_client_without_errors() -> None:
    configs, errors = load_clients()
    assert errors == {}
    assert sorted(c.client for c in configs) == sorted(p.stem for p in CLIENT_FILES)
    assert {"client1", "client2"} <= {c.client for c in configs}


def test_client_that_omits_a_setting_gets_the_default() -> None:
    client1_raw = yaml.safe_load((CLIENTS_DIR / "client1.yaml").read_text(encoding="utf-8"))
    assert "retries" not in client1_raw and "sensor" not in client1_raw
    cfg = load_client(CLIENTS_DIR / "client1.yaml")
    assert cfg.retries == DEFAULTS["retries"]
    assert cfg.retry_delay_seconds == DEFAULTS["retry_delay_seconds"]
    assert cfg.sensor.poke_interval_seconds == DEFAULTS["sensor"]["poke_interval_seconds"]
    assert cfg.sensor.timeout_seconds == DEFAULTS["sensor"]["timeout_seconds"]
    # ... and a client that sets it keeps its own value.
    client2 = load_client(CLIENTS_DIR / "client2.yaml")
    assert client2.retries == 3
    assert client2.sensor.poke_interval_seconds == 120


def test_defaults_merge_deeply_and_the_client_wins(clients_dir: Path) -> None:
    (clients_dir / DEFAULTS_FILE).write_text(
        yaml.safe_dump(
            {
                "owner": "platform",
                "retries": 5,
                "tags": ["etl"],
                "sensor": {"poke_interval_seconds": 30, "timeout_seconds": 600},
            }
        ),
        encoding="utf-8",
    )
    data = minimal("acme")
    del data["owner"]
    data["sensor"] = {"timeout_seconds": 900}
    data["tags"] = ["acme"]
    cfg = load_client(write(clients_dir, "acme", data))
    assert cfg.owner == "platform"  # only in the defaults
    assert cfg.retries == 5  # the defaults beat the model's own default
    assert cfg.sensor.poke_interval_seconds == 30  # nested: the rest of the mapping is kept
    assert cfg.sensor.timeout_seconds == 900  # nested: the client's value wins
    assert cfg.tags == ["acme"]  # lists are replaced, not appended


def test_config_version_follows_the_file_content(clients_dir: Path) -> None:
    path = write(clients_dir, "acme", minimal("acme"))
    first = load_client(path).config_version
    assert load_client(path).config_version == first
    data = minimal("acme")
    data["description"] = "changed"
    write(clients_dir, "acme", data)
    assert load_client(path).config_version != first


# ------------------------------------------------------------------ errors name the file and field
def test_wrong_type_for_a_column(clients_dir: Path) -> None:
    data = minimal("acme")
    the_file(data)["columns"][2]["type"] = "datetime"
    message = load_error(clients_dir, "acme", data)
    assert message.startswith("acme.yaml: ")
    assert "sources[crm].files[customers].columns[signup].type" in message


def test_unknown_key_is_refused(clients_dir: Path) -> None:
    data = minimal("acme")
    the_file(data)["colums"] = []
    message = load_error(clients_dir, "acme", data)
    assert message.startswith("acme.yaml: ")
    assert "sources[crm].files[customers].colums" in message
    assert "Extra inputs are not permitted" in message


def test_unknown_top_level_key_is_refused(clients_dir: Path) -> None:
    data = minimal("acme")
    data["retires"] = 3
    message = load_error(clients_dir, "acme", data)
    assert "acme.yaml: " in message and "retires" in message


def test_bad_regex_pattern(clients_dir: Path) -> None:
    data = minimal("acme")
    the_file(data)["pattern"] = r"customers(\d{8}\.csv"
    message = load_error(clients_dir, "acme", data)
    assert message.startswith("acme.yaml: ")
    assert "sources[crm].files[customers].pattern" in message
    assert "not a valid regular expression" in message


def test_client_must_equal_the_file_name(clients_dir: Path) -> None:
    message = load_error(clients_dir, "acme", minimal("other"))
    assert message.startswith("acme.yaml: client:")
    assert "'acme'" in message


def test_missing_client_is_refused(clients_dir: Path) -> None:
    data = minimal("acme")
    del data["client"]
    assert load_error(clients_dir, "acme", data).startswith("acme.yaml: client:")


def test_gold_depends_on_an_unknown_step(clients_dir: Path) -> None:
    data = minimal("acme")
    data["gold"][1]["depends_on"] = ["dim_customers", "dim_nowhere"]
    message = load_error(clients_dir, "acme", data)
    assert message.startswith("acme.yaml: ")
    assert "gold step 'fact_signups' depends on unknown step(s): dim_nowhere" in message


@pytest.mark.parametrize(
    ("step", "said"),
    [
        (
            {"bronze_key": {"columns": ["id"]}},
            "step 'customers': bronze_key is for a snapshot delivery's step",
        ),
        (
            {"delivery": "snapshot", "key": ["id", "name"], "bronze_key": {"columns": ["id"]}},
            "step 'customers': bronze_key.columns must name one bronze column per key column (2)",
        ),
        (
            {
                "delivery": "snapshot",
                "key": ["id", "name"],
                "bronze_key": {"function": "customer_key", "columns": ["id"]},
            },
            "step 'customers': a bronze_key function computes a key of one column, not 2",
        ),
        (
            {
                "delivery": "snapshot",
                "key": ["id"],
                "bronze_key": {"function": "key; drop", "columns": ["id"]},
            },
            "bronze_key.function",
        ),
    ],
)
def test_a_bronze_key_that_cannot_compute_the_key_is_refused(
    clients_dir: Path, step: dict, said: str
) -> None:
    data = minimal("acme")
    data["silver"][0].update(step)
    assert said in load_error(clients_dir, "acme", data)


def test_dependency_cycle(clients_dir: Path) -> None:
    data = minimal("acme")
    data["gold"][0]["depends_on"] = ["fact_signups"]
    message = load_error(clients_dir, "acme", data)
    assert message.startswith("acme.yaml: ")
    assert "gold steps have a dependency cycle" in message
    assert "dim_customers" in message and "fact_signups" in message


def test_self_dependency_is_a_cycle(clients_dir: Path) -> None:
    data = minimal("acme")
    data["silver"][0]["depends_on"] = ["customers"]
    assert "silver steps have a dependency cycle: customers" in load_error(clients_dir, "acme", data)


def test_duplicate_target_columns(clients_dir: Path) -> None:
    data = minimal("acme")
    the_file(data)["columns"].append({"source": "Customer_ID"})  # lower-cases onto customer_id
    message = load_error(clients_dir, "acme", data)
    assert message.startswith("acme.yaml: ")
    assert "sources[crm].files[customers]: " in message
    assert "duplicate target column(s): customer_id" in message


def test_key_columns_not_among_the_columns(clients_dir: Path) -> None:
    data = minimal("acme")
    the_file(data)["key_columns"] = ["customer_id", "email"]
    message = load_error(clients_dir, "acme", data)
    assert message.startswith("acme.yaml: ")
    assert "sources[crm].files[customers]: " in message
    assert "key_columns not among the columns: email" in message


def test_duplicate_logical_files_and_bronze_tables(clients_dir: Path) -> None:
    data = minimal("acme")
    data["sources"].append({"name": "erp", "files": [copy.deepcopy(the_file(data))]})
    assert "logical file names must be unique: customers" in load_error(clients_dir, "acme", data)
    data["sources"][1]["files"][0]["name"] = "erp_customers"
    assert "bronze tables must be unique: crm_customers" in load_error(clients_dir, "acme", data)


def test_invalid_yaml(clients_dir: Path) -> None:
    message = load_error(clients_dir, "acme", "client: acme\nsources: [unclosed\n")
    assert message.startswith("acme.yaml: not valid YAML")
    assert "\n" not in message


def test_yaml_that_is_not_a_mapping(clients_dir: Path) -> None:
    assert "acme.yaml: (top level)" in load_error(clients_dir, "acme", "- just\n- a list\n")


def test_load_clients_keeps_the_good_client_and_reports_the_bad_one(clients_dir: Path) -> None:
    write(clients_dir, "good", minimal("good"))
    bad = minimal("bad")
    the_file(bad)["bronze_table"] = "Crm Customers"
    write(clients_dir, "bad", bad)
    write(clients_dir, "broken", "client: [broken\n")
    configs, errors = load_clients(clients_dir)
    assert [c.client for c in configs] == ["good"]
    assert set(errors) == {"bad.yaml", "broken.yaml"}
    assert errors["bad.yaml"].startswith("bad.yaml: ")
    assert "sources[crm].files[customers].bronze_table" in errors["bad.yaml"]
    assert errors["broken.yaml"].startswith("broken.yaml: not valid YAML")
    assert configs[0].owner == "test-team"
    assert configs[0].retries == DEFAULTS["retries"]


def test_files_starting_with_underscore_are_not_clients(clients_dir: Path) -> None:
    write(clients_dir, "_draft", "client: [not even yaml\n")
    write(clients_dir, "acme", minimal("acme"))
    configs, errors = load_clients(clients_dir)
    assert [c.client for c in configs] == ["acme"]
    assert errors == {}


# ------------------------------------------------------------------ identifiers and paths
@pytest.mark.parametrize(
    "value",
    ["x; drop table y", 'crm"; drop table y; --', "Crm", "1crm", "crm-customers", "x\n", "a" * 49, ""],
    ids=["statement", "quote", "upper", "digit-first", "dash", "newline", "too-long", "empty"],
)
def test_bronze_table_must_be_a_plain_identifier(clients_dir: Path, value: str) -> None:
    data = minimal("acme")
    the_file(data)["bronze_table"] = value
    message = load_error(clients_dir, "acme", data)
    assert "acme.yaml: " in message
    assert "sources[crm].files[customers].bronze_table" in message


@pytest.mark.parametrize("target", ['a"b', "a b", "A", "a;b", "drop table x"])
def test_column_target_must_be_a_plain_identifier(clients_dir: Path, target: str) -> None:
    data = minimal("acme")
    the_file(data)["columns"][1]["target"] = target
    message = load_error(clients_dir, "acme", data)
    assert "sources[crm].files[customers].columns[Full Name].target" in message


def test_source_column_that_is_no_identifier_needs_a_target(clients_dir: Path) -> None:
    data = minimal("acme")
    the_file(data)["columns"][1] = {"source": "Full Name"}  # lower-cases to 'full name'
    message = load_error(clients_dir, "acme", data)
    assert "sources[crm].files[customers]: " in message
    assert "column 'full name' is not a valid identifier; set 'target'" in message
    data = minimal("acme")
    the_file(data)["columns"][1] = {"source": 'x"); drop table y; --'}
    assert "is not a valid identifier" in load_error(clients_dir, "acme", data)


def test_source_column_lower_cased_when_it_is_an_identifier(clients_dir: Path) -> None:
    data = minimal("acme")
    the_file(data)["columns"].append({"source": "CID"})
    cfg = load_client(write(clients_dir, "acme", data))
    assert [c.name for c in cfg.file("customers")[1].columns] == ["customer_id", "full_name", "signup", "cid"]


@pytest.mark.parametrize(
    ("where", "value", "named"),
    [
        (("sources", 0, "name"), "crm/../../etc", "sources[crm/../../etc].name"),
        (("silver", 0, "name"), "customers; drop", "silver[customers; drop].name"),
        (("silver", 0, "table"), 'x"y', "silver[customers].table"),
        (
            ("sources", 0, "files", 0, "key_columns"),
            ["customer_id; --"],
            "sources[crm].files[customers].key_columns[customer_id; --]",
        ),
        (("views",), ["mv; drop table x"], "views[mv; drop table x].name"),
    ],
    ids=["system", "step-name", "step-table", "key-column", "view"],
)
def test_other_identifiers_are_refused(clients_dir: Path, where: tuple, value: object, named: str) -> None:
    data = minimal("acme")
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    message = load_error(clients_dir, "acme", data)
    assert message.startswith(f"acme.yaml: {named}: ")


@pytest.mark.parametrize(
    "sql_path",
    ["../other_client/silver/x.sql", "silver/../../../x.sql", "/etc/x.sql", "silver/x.txt"],
    ids=["parent", "nested-parent", "absolute", "not-sql"],
)
def test_sql_path_must_stay_in_the_client_folder(clients_dir: Path, sql_path: str) -> None:
    data = minimal("acme")
    data["silver"][0]["sql"] = sql_path
    message = load_error(clients_dir, "acme", data)
    assert "acme.yaml: silver[customers].sql" in message
    assert "relative path to a .sql file" in message


def test_a_view_is_a_name_or_a_summary_with_its_sql_file(clients_dir: Path) -> None:
    data = minimal("acme")
    data["views"] = ["mv_whole", {"name": "mv_per_batch", "sql": "views/mv_per_batch.sql"}]
    cfg = load_client(write(clients_dir, "acme", data))
    views = [(v.name, v.sql) for v in cfg.views]
    assert views == [("mv_whole", None), ("mv_per_batch", "views/mv_per_batch.sql")]

    data["views"] = [{"name": "mv_per_batch", "sql": "../other_client/views/x.sql"}]
    message = load_error(clients_dir, "acme", data)
    assert "acme.yaml: views[mv_per_batch].sql" in message
    assert "relative path to a .sql file" in message


def test_relative_sql_path_is_accepted(clients_dir: Path) -> None:
    cfg = load_client(write(clients_dir, "acme", minimal("acme")))
    assert cfg.silver[0].sql == "silver/customers.sql"
    assert cfg.sql_dir.name == "acme"


def test_file_lookup_and_schemas(clients_dir: Path) -> None:
    cfg = load_client(write(clients_dir, "acme", minimal("acme")))
    assert isinstance(cfg, ClientConfig)
    assert (cfg.bronze_schema, cfg.silver_schema, cfg.gold_schema) == (
        "bronze_acme",
        "silver_acme",
        "gold_acme",
    )
    system, spec = cfg.file("customers")
    assert (system.name, spec.bronze_table) == ("crm", "crm_customers")
    assert spec.matches("customers_20240101.csv")
    assert not spec.matches("customers_2024.csv")
    assert not spec.matches("old_customers.csv")  # the whole name must match
    with pytest.raises(KeyError, match="no source file named 'nope'"):
        cfg.file("nope")


# ------------------------------------------------------------------ gaps found in review
@pytest.mark.parametrize("layer", ["silver", "gold", "views"])
def test_duplicate_step_names_are_refused(clients_dir: Path, layer: str) -> None:
    data = minimal("acme")
    if layer == "views":
        data["views"] = ["mv_one", "mv_one"]
    else:
        data[layer].append({**data[layer][0], "depends_on": []})
    message = load_error(clients_dir, "acme", data)
    assert message.startswith("acme.yaml: ")
    assert ("listed more than once" if layer == "views" else f"{layer} step names must be unique") in message


def test_column_named_like_a_lineage_column_is_refused(clients_dir: Path) -> None:
    data = minimal("acme")
    the_file(data)["columns"][1]["target"] = "dwh_batch_id"
    message = load_error(clients_dir, "acme", data)
    assert "dwh_batch_id" in message and "reserved for lineage" in message


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("start_date", "2026-13-01", "start_date: Input should be a valid date"),
        ("schedule", "0 25 * * *", "schedule: not a cron expression or one of"),
        ("schedule", "@sometimes", "schedule: not a cron expression"),
    ],
)
def test_a_bad_start_date_or_schedule_is_a_config_error(clients_dir: Path, field, value, message) -> None:
    data = minimal("acme")
    data[field] = value
    assert message in load_error(clients_dir, "acme", data)


# ------------------------------------------------------------------ errors name entries; defaults; schema
def test_an_error_names_each_list_entry_by_its_name(clients_dir: Path) -> None:
    data = minimal("client3")
    data["sources"][0]["files"].append(
        {
            "name": "sales_details",
            "pattern": r"sales_details\.csv",
            "type": "csv",
            "bronze_table": "crm_sales_details",
            "columns": [{"source": "sls_ord_num"}, {"source": "sls_price", "type": "money"}],
        }
    )
    message = load_error(clients_dir, "client3", data)
    assert message.startswith(
        "client3.yaml: sources[crm].files[sales_details].columns[sls_price].type: Input should be 'text', "
    )


def test_an_entry_without_a_name_is_named_by_its_position(clients_dir: Path) -> None:
    data = minimal("acme")
    the_file(data)["columns"].append({"type": "integer"})  # no source: no name to give
    message = load_error(clients_dir, "acme", data)
    assert "acme.yaml: sources[crm].files[customers].columns[3].source: Field required" in message


def test_defaults_are_layered_built_in_then_the_folders_own(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    write(folder, "acme", minimal("acme"))
    cfg = load_client(folder / "acme.yaml")  # no _defaults.yaml there: the built-in ones
    assert (cfg.retries, cfg.sensor.timeout_seconds) == (
        DEFAULTS["retries"],
        DEFAULTS["sensor"]["timeout_seconds"],
    )
    (folder / DEFAULTS_FILE).write_text("retries: 7\nsensor: {poke_interval_seconds: 5}\n")
    cfg = load_client(folder / "acme.yaml")
    assert (cfg.retries, cfg.sensor.poke_interval_seconds) == (7, 5)  # the folder's own
    assert cfg.sensor.timeout_seconds == DEFAULTS["sensor"]["timeout_seconds"]  # the rest built in


def test_the_model_has_no_default_of_its_own_for_what_defaults_yaml_sets() -> None:
    fields = ClientConfig.model_fields
    for name in DEFAULTS:
        assert fields[name].is_required(), f"{name}: its default belongs in {DEFAULTS_FILE} only"


def test_the_checked_in_json_schema_is_current() -> None:
    """`make schema` writes it; editors validate client files against it as they are typed."""
    checked_in = json.loads((CLIENTS_DIR / SCHEMA_FILE).read_text(encoding="utf-8"))
    assert checked_in == client_schema(), "run `make schema` and commit include/clients/client.schema.json"


def test_the_json_schema_accepts_every_client_file_and_refuses_a_typo() -> None:
    import jsonschema

    schema = client_schema()
    for path in CLIENT_FILES:
        jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)
    data = minimal("acme")
    the_file(data)["colums"] = []
    with pytest.raises(jsonschema.ValidationError, match="colums"):
        jsonschema.validate(data, schema)
    assert "retries" not in schema.get("required", []) and schema["properties"]["retries"]["default"] == 2


def test_runs_started_by_the_delivery_need_a_periodic_schedule_and_a_file(clients_dir: Path) -> None:
    data = minimal("acme")
    data.update(schedule="@once", sensor={"start": "delivery"})
    assert "sensor.start: delivery needs a cron schedule (or none), not @once" in load_error(
        clients_dir, "acme", data
    )
    the_file(data)["required"] = False
    data["schedule"] = "@daily"
    assert "sensor.start: delivery watches files, and no required file is delivered" in load_error(
        clients_dir, "acme", data
    )
    the_file(data)["required"] = True
    assert load_client(write(clients_dir, "acme", data)).sensor.start == "delivery"


def test_a_client_that_replaces_a_steps_sql_does_not_keep_the_templates_bronze_key(clients_dir: Path) -> None:
    """The template's bronze_key says how its own SQL computes the key: a client giving the
    step other SQL keeps it only by saying so again."""
    base = {
        "client": "acme",
        "display_name": "Acme",
        "owner": "acme-team",
        "template": "retail_crm_erp",
        "schedule": "30 5 * * *",
    }
    assert load_client(write(clients_dir, "acme", base)).silver[0].bronze_key is not None
    other_sql = {**base, "silver": [{"name": "crm_cust_info", "sql": "silver/crm_cust_info.sql"}]}
    steps = {s.name: s for s in load_client(write(clients_dir, "acme", other_sql)).silver}
    assert steps["crm_cust_info"].bronze_key is None
    assert steps["erp_loc_a101"].bronze_key is not None  # the steps it left as they are keep theirs
    step = {"name": "crm_cust_info", "sql": "silver/crm_cust_info.sql", "bronze_key": {"columns": ["cst_id"]}}
    said_again = {**base, "silver": [step]}
    assert load_client(write(clients_dir, "acme", said_again)).silver[0].bronze_key is not None
