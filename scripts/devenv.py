"""Local development environment: the embedded PostgreSQL and the Airflow settings.

With nothing configured, a project-local PostgreSQL cluster is created in ``.local/pg``
(the machine's PostgreSQL binaries, run as an unprivileged user when we are root) and
holds three databases: ``airflow`` (Airflow's metadata), ``warehouse`` (the medallion
warehouse) and ``app_source`` (the application database client4 reads incrementally).
It listens on 127.0.0.1 only (no Unix socket); its superuser ``postgres`` has a
generated password kept in ``.local/pg/password`` (mode 600), which goes into the exported
URLs. When ``AIRFLOW_CONN_WAREHOUSE`` is already set, the warehouse is left alone
and only the Airflow metadata database is served from the embedded cluster (unless
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` is set as well).

    python scripts/devenv.py up       # start (creating if needed), print `export` lines
    python scripts/devenv.py down     # stop the embedded cluster
    python scripts/devenv.py clean    # stop it and delete its data, wherever it lives
    python scripts/devenv.py status

As root, the server runs as the ``postgres`` user, which must be able to enter the
checkout. A checkout under a mode-700 home (``/root/etl``) or a ``mktemp -d`` folder
is closed to it; the user's folders are not opened up. The cluster then lives in
``/var/tmp/medallion-etl-pg/<hash of the checkout path>`` instead, ``.local/pg-location``
says where, and ``clean`` deletes it with the rest.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
LOCATION_FILE = LOCAL / "pg-location"  # where the cluster lives when not in .local/pg
OUTSIDE = Path("/var/tmp/medallion-etl-pg")  # for checkouts the server user cannot enter
RUN_AS = "postgres"  # PostgreSQL refuses to run as root
DATABASES = ("airflow", "warehouse", "app_source")  # app_source: the demo database source (client4)


def _cluster_dir() -> Path:
    """Where the cluster's files are: .local/pg, or where .local/pg-location says."""
    if LOCATION_FILE.exists():
        return Path(LOCATION_FILE.read_text().strip())
    return LOCAL / "pg"


def _place(pgdir: Path) -> None:
    """Point the module's paths at the cluster in ``pgdir``."""
    global PGDIR, PGDATA, PORT_FILE, PASSWORD_FILE, LOG_FILE
    PGDIR = pgdir
    PGDATA = pgdir / "data"
    PORT_FILE = pgdir / "port"
    PASSWORD_FILE = pgdir / "password"
    LOG_FILE = pgdir / "server.log"


PGDIR = PGDATA = PORT_FILE = PASSWORD_FILE = LOG_FILE = Path()
_place(_cluster_dir())


def _bin(name: str) -> str:
    """A PostgreSQL program: the newest Debian server install first, else PATH."""
    installs = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    installs.sort(key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    found = installs[-1] if installs else shutil.which(name)
    if not found:
        sys.exit(
            f"devenv: PostgreSQL program '{name}' not found; "
            "install the Debian package postgresql-15 (apt-get install postgresql-15)."
        )
    return found


def _as_db_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", RUN_AS], check=True)
    return ["runuser", "-u", RUN_AS, "--", *cmd]


def _db_user_can_enter(folder: Path) -> bool:
    """Whether the server's user can reach ``folder`` (every folder above it searchable)."""
    if os.geteuid() != 0:
        return True  # the server runs as ourselves
    probe = subprocess.run(_as_db_user(["test", "-x", str(folder)]), capture_output=True, cwd="/")
    return probe.returncode == 0


def _choose_place() -> None:
    """Before a cluster is created: keep it in .local/pg if the server's user can enter
    the checkout, else in a folder of its own outside (the checkout's permissions are the
    user's; they are not changed)."""
    LOCAL.mkdir(parents=True, exist_ok=True)
    if LOCATION_FILE.exists() or _db_user_can_enter(LOCAL):
        return
    outside = OUTSIDE / hashlib.sha256(str(ROOT).encode()).hexdigest()[:16]
    if outside.exists():
        # Left by an earlier checkout at this same path whose .local was deleted (or by a
        # copied machine): nothing points at it any more, so it is stopped and replaced.
        subprocess.run(
            _as_db_user([_bin("pg_ctl"), "-D", str(outside / "data"), "-m", "immediate", "stop"]),
            capture_output=True,
            cwd="/",
        )
        shutil.rmtree(outside, ignore_errors=True)
    try:
        OUTSIDE.mkdir(mode=0o755, exist_ok=True)
        outside.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        sys.exit(
            f"devenv: the {RUN_AS} user cannot enter {LOCAL} and {OUTSIDE} is not writable ({exc}); "
            "clone the project under a folder other users can enter, e.g. /srv or /opt"
        )
    LOCATION_FILE.write_text(f"{outside}\n")
    _place(outside)
    print(
        f"devenv: the {RUN_AS} user cannot enter {LOCAL} (a mode-700 home?): the embedded "
        f"PostgreSQL keeps its data in {outside} instead; `make clean` deletes it",
        file=sys.stderr,
    )


def _free_port(start: int = 54329) -> int:
    """The first port from ``start`` nothing uses: neither a server listening on it nor
    a connection whose local end it is (a client's ephemeral port), so it can be bound."""
    for port in range(start, start + 200):
        if not _port_taken(port):
            return port
    sys.exit("devenv: no free TCP port for the embedded PostgreSQL")


def _port() -> int:
    if not PORT_FILE.exists():
        PGDIR.mkdir(parents=True, exist_ok=True)
        PORT_FILE.write_text(str(_free_port()))
    return int(PORT_FILE.read_text())


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as PostgreSQL binds it
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def _start() -> None:
    """Start the stopped cluster; on its recorded port, or a free one if another program
    took that port meanwhile. A failure ends with the server log's last lines."""
    port = _port()
    for _ in range(3):  # a port can be taken between the look and the bind: then another
        if _port_taken(port):
            port = _free_port(port + 1)
            PORT_FILE.write_text(str(port))
        LOG_FILE.touch()
        _chown_for_db_user(LOG_FILE)
        logged = LOG_FILE.stat().st_size  # what this start writes comes after
        pg_ctl = [_bin("pg_ctl"), "-D", str(PGDATA), "-l", str(LOG_FILE), "-o", f"-p {port}"]
        started = subprocess.run(
            _as_db_user([*pg_ctl, "-w", "-t", "60", "start"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd="/",
        )
        if started.returncode == 0 or b"could not bind" not in LOG_FILE.read_bytes()[logged:]:
            break
        port = _free_port(port + 1)  # taken by the time the server bound it: the next free one
        PORT_FILE.write_text(str(port))
    if started.returncode != 0:
        log = LOG_FILE.read_text(errors="replace").splitlines()[-5:]
        sys.exit(
            f"devenv: the embedded PostgreSQL in {PGDATA} did not start ({started.stderr.strip()}); "
            f"`make clean` deletes it and the next command creates a new one. Its log ends:\n"
            + "\n".join(log)
        )


def _password() -> str | None:
    """The superuser's password, or None for a cluster that has none.

    Clusters created before passwords were introduced have no password file and use
    ``trust`` authentication; they keep working as they are: a throwaway development
    cluster that listens on 127.0.0.1 only, without a Unix socket. `make clean` and the
    next `up` recreate it with a password.
    """
    try:
        return PASSWORD_FILE.read_text().strip() or None
    except FileNotFoundError:
        return None


def _new_password() -> None:
    """Write a fresh random password to PASSWORD_FILE, readable by its owner only."""
    PGDIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(24) + "\n")
    os.chmod(PASSWORD_FILE, 0o600)  # O_CREAT's mode does not apply to an existing file


def _chown_for_db_user(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam(RUN_AS)
        for p in [path, *path.rglob("*")]:
            os.chown(p, user.pw_uid, user.pw_gid)


def _running() -> bool:
    result = subprocess.run(
        _as_db_user([_bin("pg_ctl"), "-D", str(PGDATA), "status"]),
        capture_output=True,
        cwd="/",  # the server's user may not be able to enter the checkout
    )
    return result.returncode == 0


def _psql(sql: str, db: str = "postgres") -> str:
    env = dict(os.environ)
    password = _password()
    if password:
        env["PGPASSWORD"] = password
    out = subprocess.run(
        [_bin("psql"), "-h", "127.0.0.1", "-p", str(_port()), "-U", "postgres", "-d", db, "-Atqc", sql],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return out.stdout.strip()


def up() -> None:
    if not (PGDATA / "PG_VERSION").exists():
        _choose_place()
    port = _port()
    if not (PGDATA / "PG_VERSION").exists():
        PGDATA.mkdir(parents=True, exist_ok=True)
        _new_password()
        _chown_for_db_user(PGDIR)  # the password file too: initdb reads it as RUN_AS
        subprocess.run(
            _as_db_user(
                [
                    _bin("initdb"),
                    "-D",
                    str(PGDATA),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={PASSWORD_FILE}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    # Byte-order collation: text sorts and indexes (business keys, batch
                    # ids) compare with memcmp and abbreviated keys instead of strcoll.
                    # Same order as C.UTF-8 for UTF-8 text; docs/benchmarks.md has the gain.
                    "--lc-collate=C",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            cwd="/",
        )
        with open(PGDATA / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# embedded development cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {port}\n"
                "unix_socket_directories = ''\n"
                "max_connections = 200\n"
                "shared_buffers = 512MB\n"
                "fsync = off\n"  # a throwaway local cluster; production keeps the default
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_wal_size = 4GB\n"
            )
    if not _running():
        _start()
    for _ in range(60):
        try:
            _psql("select 1")
            break
        except subprocess.CalledProcessError:
            time.sleep(0.5)
    existing = set(_psql("select datname from pg_database").split())
    for db in DATABASES:
        if db not in existing:
            _psql(f'create database "{db}"')


def down() -> None:
    if (PGDATA / "PG_VERSION").exists() and _running():
        subprocess.run(
            _as_db_user([_bin("pg_ctl"), "-D", str(PGDATA), "-m", "fast", "stop"]), check=True, cwd="/"
        )


def clean() -> None:
    """Stop the cluster and delete its files, also when they live outside the checkout."""
    down()
    if PGDIR != LOCAL / "pg" and PGDIR.parent == OUTSIDE:
        shutil.rmtree(PGDIR, ignore_errors=True)
    LOCATION_FILE.unlink(missing_ok=True)
    shutil.rmtree(LOCAL / "pg", ignore_errors=True)


def _url(scheme: str, db: str) -> str:
    """A URL of the embedded cluster's superuser (with its password when it has one)."""
    password = _password()
    user = f"postgres:{quote(password, safe='')}" if password else "postgres"
    return f"{scheme}://{user}@127.0.0.1:{_port()}/{db}"


def env_lines() -> list[str]:
    """`export` lines for the shell: Airflow settings and the warehouse connection."""
    env = {
        "AIRFLOW_HOME": str(LOCAL / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__PORT": os.environ.get("AIRFLOW__API__PORT", "8080"),
        "ETL_DATA_ROOT": os.environ.get("ETL_DATA_ROOT", str(LOCAL / "landing")),
    }
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in os.environ:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = _url("postgresql+psycopg2", "airflow")
        # housekeeping's `airflow db clean`: a task process is not given the URL above
        env["AIRFLOW_CONN_AIRFLOW_METADATA_DB"] = _url("postgresql", "airflow")
    if "AIRFLOW_CONN_WAREHOUSE" not in os.environ:
        env["AIRFLOW_CONN_WAREHOUSE"] = _url("postgresql", "warehouse")
        if "AIRFLOW_CONN_APP_SOURCE" not in os.environ:  # the demo's source database, beside it
            env["AIRFLOW_CONN_APP_SOURCE"] = _url("postgresql", "app_source")
    return [f"export {k}={shlex.quote(v)}" for k, v in env.items()]


def main(argv: list[str]) -> None:
    command = argv[1] if len(argv) > 1 else "up"
    if command == "up":
        configured = {"AIRFLOW_CONN_WAREHOUSE", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"} <= set(os.environ)
        if not configured:  # both databases given: no embedded cluster needed
            up()
        print("\n".join(env_lines()))
    elif command == "down":
        down()
    elif command == "clean":
        clean()
    elif command == "status":
        print("running" if _running() else "stopped", f"port={_port()}")
    elif command == "env":
        print("\n".join(env_lines()))
    else:
        sys.exit(f"usage: {argv[0]} up|down|clean|status|env")


if __name__ == "__main__":
    main(sys.argv)
