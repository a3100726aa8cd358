"""PostgreSQL servers and databases for the tests: CI's, or a throwaway one.

CI starts a server and sets ``SEGMENT_ASSETS_TEST_PG_DSN``; without it a throwaway server is
started from the local PostgreSQL binaries (password authentication on, so a wrong password
is refused). Every test that asks for ``database`` gets its own database, owned by its own
role whose password is a canary that must never appear in an error, a log or a run record.
The fixtures are made available to every test module by ``conftest.py``.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from .dagster_ui import free_port

DSN_ENV = "SEGMENT_ASSETS_TEST_PG_DSN"


def postgres_bin() -> Path | None:
    """The folder with initdb/pg_ctl/postgres, from PATH or Debian's versioned layout."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: p.split("/"))
    return Path(versions[-1]).parent if versions else None


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass(frozen=True)
class Server:
    admin_url: str  # a superuser's URL
    checks_passwords: bool

    def url(self, user: str, password: str, database: str) -> str:
        parts = urlsplit(self.admin_url)
        netloc = f"{quote(user)}:{quote(password, safe='')}@{parts.hostname}:{parts.port or 5432}"
        return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True)


def _start_server() -> Iterator[Server]:
    """A throwaway server from the local binaries, with password authentication."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip(
            f"no PostgreSQL server binaries (initdb, pg_ctl) on this machine and {DSN_ENV} "
            "is not set; install them with `apt-get install postgresql` (CI does)"
        )
    folder = tempfile.mkdtemp(prefix="segment_assets_store_pg_")
    password = secrets.token_hex(12)
    Path(folder, "pw").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(f"{folder}/pw", "postgres")
    data, port = f"{folder}/data", free_port()
    run = dict(check=True, capture_output=True, timeout=60)
    subprocess.run(
        _as_postgres(
            [
                f"{bin_dir}/initdb",
                "-D",
                data,
                "-U",
                "dagster",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={folder}/pw",
            ]
        ),
        **run,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = f"{bin_dir}/pg_ctl"
    subprocess.run(
        _as_postgres([pg_ctl, "-D", data, "-o", options, "-l", f"{folder}/log", "-w", "start"]),
        **run,
    )
    try:
        yield Server(f"postgresql://dagster:{password}@127.0.0.1:{port}/postgres", True)
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", data, "-m", "immediate", "stop"]), **run)
        shutil.rmtree(folder, ignore_errors=True)


def _refuses_wrong_passwords(admin_url: str) -> bool:
    role, password = f"sa_probe_{uuid.uuid4().hex[:8]}", secrets.token_hex(8)
    server = Server(admin_url, False)
    with server.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    try:
        psycopg.connect(server.url(role, "wrong", "postgres"), connect_timeout=5).close()
        return False
    except psycopg.OperationalError:
        return True
    finally:
        with server.admin() as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    if os.environ.get(DSN_ENV):
        yield Server(os.environ[DSN_ENV], _refuses_wrong_passwords(os.environ[DSN_ENV]))
        return
    yield from _start_server()


@pytest.fixture(scope="session")
def password_server(pg_server: Server) -> Iterator[Server]:
    """A server that checks passwords (CI's trusts every local connection)."""
    if pg_server.checks_passwords:
        yield pg_server
        return
    yield from _start_server()


@dataclass
class Database:
    server: Server
    name: str
    owner: str
    password: str  # a canary: it must never show up anywhere
    _roles: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url(self.owner, self.password, self.name)

    def role(self) -> tuple[str, str]:
        """A new login role (name, password), dropped with the database."""
        role, password = f"sa_{uuid.uuid4().hex[:10]}", f"canary-{secrets.token_hex(8)}"
        with self.server.admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
        self._roles.append(role)
        return role, password

    def execute(self, statement: str | sql.Composable, params: tuple = ()) -> list[tuple]:
        """Run ``statement`` in this database as the server's superuser."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    @property
    def admin_url(self) -> str:
        parts = urlsplit(self.server.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, f"/{self.name}", parts.query, ""))


def _new_database(server: Server) -> Database:
    token = uuid.uuid4().hex[:10]
    db = Database(server, f"sa_{token}", f"sa_owner_{token}", f"canary-{secrets.token_hex(10)}")
    with server.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(db.owner), sql.Literal(db.password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(db.name), sql.Identifier(db.owner)
            )
        )
    return db


def _drop_database(db: Database) -> None:
    with db.server.admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db.name)))
        for role in [*db._roles, db.owner]:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def database(pg_server: Server) -> Iterator[Database]:
    db = _new_database(pg_server)
    try:
        yield db
    finally:
        _drop_database(db)


@pytest.fixture(params=["duckdb", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each store in turn, chosen through the environment as a deployment chooses it: a
    DuckDB file, then a throwaway PostgreSQL database (``SEGMENT_ASSETS_DATABASE_URL``)."""
    from segment_assets.store import store_from_env

    if request.param == "duckdb":
        monkeypatch.delenv("SEGMENT_ASSETS_DATABASE_URL", raising=False)
        monkeypatch.setenv("SEGMENT_ASSETS_DUCKDB", str(tmp_path / "segment_assets.duckdb"))
    else:
        monkeypatch.setenv("SEGMENT_ASSETS_DATABASE_URL", request.getfixturevalue("database").url)
    return store_from_env()
