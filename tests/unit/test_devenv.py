"""scripts/devenv.py without starting a cluster: the `export` lines and when `up` is skipped."""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "devenv.py"
DB_VARS = ("AIRFLOW_CONN_WAREHOUSE", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")


@pytest.fixture
def devenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """devenv with its project root in a directory whose name needs quoting."""
    spec = importlib.util.spec_from_file_location("devenv_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = tmp_path / "it's a $(touch pwned) dir"
    root.mkdir()
    pgdir = root / ".local" / "pg"
    for name, value in {
        "ROOT": root,
        "LOCAL": root / ".local",
        "PGDIR": pgdir,
        "PGDATA": pgdir / "data",
        "PORT_FILE": pgdir / "port",
        "PASSWORD_FILE": pgdir / "password",
        "LOG_FILE": pgdir / "server.log",
    }.items():
        monkeypatch.setattr(module, name, value)
    pgdir.mkdir(parents=True)
    (pgdir / "port").write_text("54999")
    return module


def _shell_environment(lines: list[str], cwd: Path) -> dict[str, str]:
    """What a shell has after `eval`-ing the lines (as scripts/with-env does)."""
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    script = "\n".join([*lines, f"{shlex.quote(sys.executable)} -c {shlex.quote(dump)}"])
    out = subprocess.run(["bash", "-c", 'eval "$1"', "bash", script], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_env_lines_survive_quotes_and_spaces(
    devenv: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = str(tmp_path / "o'brien's landing" / "$HOME `id`")
    monkeypatch.setenv("ETL_DATA_ROOT", landing)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://etl:x@db/warehouse")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://a:b@db/airflow")

    lines = devenv.env_lines()
    env = _shell_environment(lines, tmp_path)

    assert env["ETL_DATA_ROOT"] == landing
    assert env["AIRFLOW_HOME"] == str(devenv.LOCAL / "airflow")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(devenv.ROOT / "dags")
    assert "'" in env["AIRFLOW_HOME"] and " " in env["AIRFLOW_HOME"]
    assert not list(tmp_path.rglob("pwned")), "a value was executed by the shell"
    # Configured databases are left to the caller's environment, not re-exported.
    assert not any(line.startswith(f"export {var}=") for line in lines for var in DB_VARS)


def test_embedded_urls_carry_the_password_when_the_cluster_has_one(
    devenv: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in DB_VARS:
        monkeypatch.delenv(var, raising=False)
    devenv.PASSWORD_FILE.write_text("p@ss w'rd/\n")

    env = _shell_environment(devenv.env_lines(), tmp_path)

    userinfo = "postgres:p%40ss%20w%27rd%2F@127.0.0.1:54999"
    assert env["AIRFLOW_CONN_WAREHOUSE"] == f"postgresql://{userinfo}/warehouse"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"postgresql+psycopg2://{userinfo}/airflow"


def test_a_trust_cluster_without_password_file_keeps_working(
    devenv: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in DB_VARS:
        monkeypatch.delenv(var, raising=False)

    env = _shell_environment(devenv.env_lines(), tmp_path)

    assert env["AIRFLOW_CONN_WAREHOUSE"] == "postgresql://postgres@127.0.0.1:54999/warehouse"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        "postgresql+psycopg2://postgres@127.0.0.1:54999/airflow"
    )


def test_new_password_file_is_private(devenv: ModuleType) -> None:
    devenv._new_password()
    assert devenv.PASSWORD_FILE.stat().st_mode & 0o777 == 0o600
    assert len(devenv._password()) >= 32


def test_up_is_skipped_when_both_databases_are_configured(tmp_path: Path) -> None:
    # A copy of the script: its project root is an empty directory, so had `up` gone on to
    # the embedded cluster it would have had to create one there.
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, project / "scripts" / "devenv.py")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "AIRFLOW_CONN_WAREHOUSE": "postgresql://dummy:dummy@nowhere.invalid:1/warehouse",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://dummy:dummy@nowhere.invalid:1/airflow",
    }

    out = subprocess.run(
        [sys.executable, "scripts/devenv.py", "up"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines and all(line.startswith("export ") for line in lines)
    exported = _shell_environment(lines, tmp_path)
    assert exported["AIRFLOW_HOME"] == str(project / ".local" / "airflow")
    assert not (project / ".local").exists(), "up created an embedded cluster"
