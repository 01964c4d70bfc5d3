"""The embedded PostgreSQL starts from a checkout under a mode-700 folder (a home
directory, a ``mktemp -d`` folder): as root, its server runs as the ``postgres`` user,
who cannot enter such a folder, so the cluster lives outside it, and nothing of the
user's folders is opened up."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "devenv.py"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as ourselves unless we are root")
def test_the_embedded_cluster_starts_from_a_checkout_in_a_private_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    project = home / "etl"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, project / "scripts" / "devenv.py")
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}

    def devenv(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "scripts/devenv.py", command],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    # What an earlier checkout at this same path left behind (its .local deleted, or a
    # copied machine): a half cluster whose recorded port is taken. It is replaced.
    leftover = Path("/var/tmp/medallion-etl-pg") / hashlib.sha256(str(project).encode()).hexdigest()[:16]
    (leftover / "data").mkdir(parents=True, exist_ok=True)
    (leftover / "data" / "PG_VERSION").write_text("15\n")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    (leftover / "port").write_text(str(busy.getsockname()[1]))

    up = devenv("up")
    try:
        assert up.returncode == 0, up.stderr
        assert f"the postgres user cannot enter {project / '.local'}" in up.stderr
        outside = Path((project / ".local" / "pg-location").read_text().strip())
        assert outside.parent == Path("/var/tmp/medallion-etl-pg")
        assert (outside / "data" / "PG_VERSION").exists()
        assert home.stat().st_mode & 0o777 == 0o700  # the user's folder is left as it was
        exports = dict(
            shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in up.stdout.splitlines()
        )
        with psycopg.connect(exports["AIRFLOW_CONN_WAREHOUSE"]) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("warehouse",)
        again = devenv("up")  # the next command finds the same cluster, says nothing more
        assert again.returncode == 0 and again.stderr == ""

        # Stopped, and its port taken by another program meanwhile: it starts on another.
        assert devenv("down").returncode == 0
        port = int((outside / "port").read_text())
        with socket.socket() as squatter, socket.socket() as client_end:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the server's TIME_WAIT
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            # The next free port is the local end of some connection: nothing answers on
            # it, but it cannot be bound either.
            bound = next(p for p in range(port + 1, port + 100) if _bindable(p))
            client_end.bind(("127.0.0.1", bound))
            moved = devenv("up")
            assert moved.returncode == 0, moved.stderr
            url = next(line for line in moved.stdout.splitlines() if "AIRFLOW_CONN_WAREHOUSE" in line)
            new_port = int((outside / "port").read_text())
            assert new_port not in (port, bound) and f":{new_port}/warehouse" in url
            with psycopg.connect(shlex.split(url.removeprefix("export "))[0].split("=", 1)[1]) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        busy.close()
        cleaned = devenv("clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not outside.exists() and not (project / ".local" / "pg-location").exists()
