"""Credentials: refused keys fail at once, keys never travel to another host, and a key is
never printed, logged, stored in Dagster's records or written to DuckDB."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from segment_assets.emulator import EmulatorConfig

from .conftest import YESTERDAY, failure_text
from .resilience import (
    ONESIGNAL_APP,
    PROVIDERS,
    counts_of,
    expected_counts,
    fast_resources,
    materialize,
    requests_made,
    small_config,
    stored,
)


class ForeignHost:
    """A second loopback server standing in for "another host": it records what arrives."""

    def __init__(self) -> None:
        received: list[tuple[str, dict[str, str]]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                received.append((self.path, dict(self.headers.items())))
                body = b'{"count": 0, "next": null, "results": [], "items": [], "total": 0}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ForeignHost:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def foreign() -> Iterator[ForeignHost]:
    with ForeignHost() as host:
        yield host


@pytest.fixture
def emulator_config(foreign, request) -> EmulatorConfig:
    keys = getattr(request, "param", {})
    return small_config(keys=keys, foreign_origin=foreign.url)


@pytest.fixture
def fast(env, duckdb_path) -> dict:
    return fast_resources()


def test_the_foreign_host_is_reachable_so_the_refusals_below_mean_something(foreign):
    import requests

    before = len(foreign.received)
    assert requests.get(f"{foreign.url}/probe", timeout=2).status_code == 200
    assert len(foreign.received) == before + 1
    del foreign.received[before:]


NAMES = {"actionhub": "ACTIONHUB_API_KEY", "usercom": "USERCOM_API_KEY"}
NAMES["onesignal"] = "ONESIGNAL_API_KEY"


@pytest.mark.parametrize("status", ["401", "403"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_refused_credentials_fail_at_once_naming_the_variable_to_fix(
    provider, status, emulator, fast, instance, duckdb_path
):
    emulator.state.set_faults(provider, fail_always=status)

    result = materialize(fast, instance, YESTERDAY, providers=[provider])

    assert not result.success
    message = failure_text(result)
    assert f"HTTP {status}: credentials refused" in message
    assert f"Check {NAMES[provider]}" in message
    assert requests_made(emulator, provider) == 1  # no retry with a refused key
    assert stored(duckdb_path, provider).empty


def test_a_usercom_next_link_to_another_host_is_refused_and_gets_no_token(
    foreign, emulator, fast, instance, duckdb_path
):
    emulator.state.set_faults("usercom", next_foreign=True)

    result = materialize(fast, instance, YESTERDAY, providers=["usercom"])

    assert not result.success
    host = foreign.url.removeprefix("http://")
    assert f"refused to send credentials to '{host}'" in failure_text(result)
    assert foreign.received == []
    assert stored(duckdb_path, "usercom").empty


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_redirect_to_another_host_is_not_followed(
    provider, foreign, emulator, fast, instance, duckdb_path
):
    emulator.state.set_faults(provider, fail_next=["redirect-foreign"])

    result = materialize(fast, instance, YESTERDAY, providers=[provider])

    assert not result.success
    assert "refused to send credentials to" in failure_text(result)
    assert foreign.received == []
    assert requests_made(emulator, provider) == 1


CANARY = "cAnArY7q"
CANARY_KEYS = {
    "actionhub": f"ah-{CANARY}-actionhub-key",
    "usercom": f"{CANARY}usercom".ljust(64, "9"),
    "onesignal": f"os_v2_app_{CANARY}onesignal",
}
WRONG_KEYS = {
    "ACTIONHUB_API_KEY": f"ah-{CANARY}-wrong",
    "USERCOM_API_KEY": f"{CANARY}wrong".ljust(64, "8"),
    "ONESIGNAL_API_KEY": f"os_v2_app_{CANARY}wrong",
}


def files_under(*roots: str) -> Iterator[Path]:
    for root in roots:
        path = Path(root)
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from (p for p in path.rglob("*") if p.is_file())


@pytest.mark.slow
@pytest.mark.parametrize("emulator_config", [CANARY_KEYS], indirect=True, ids=["canary-keys"])
def test_a_canary_key_appears_nowhere_after_success_and_failure(
    emulator, env, foreign, instance, duckdb_path, monkeypatch, capfd
):
    assert CANARY in env["ACTIONHUB_API_KEY"]  # the emulator accounts use the canary keys
    runs = []

    def run(**overrides):
        result = materialize(fast_resources(**overrides), instance, YESTERDAY)
        runs.append(result)
        return result

    # 1. success, with a transient 503 on each provider on the way
    for provider in PROVIDERS:
        emulator.state.set_faults(provider, fail_next=["503-html", "503-empty"])
    assert run().success
    for provider in PROVIDERS:
        assert counts_of(stored(duckdb_path, provider)) == expected_counts(emulator, provider)

    # 2. persistent 503s: every step fails after its retries
    for provider in PROVIDERS:
        emulator.state.set_faults(provider, fail_always="503-html")
    assert not run().success
    emulator.state.clear_faults()

    # 3. a foreign next link and foreign redirects
    emulator.state.set_faults("usercom", next_foreign=True)
    emulator.state.set_faults("actionhub", fail_next=["redirect-foreign"])
    emulator.state.set_faults("onesignal", fail_next=["redirect-foreign"])
    assert not run().success
    emulator.state.clear_faults()

    # 4. wrong keys, also canaries, sent and refused by the provider
    emulator.state.reset_stats()
    for name, wrong in WRONG_KEYS.items():
        monkeypatch.setenv(name, wrong)
    wrong_run = run()
    assert not wrong_run.success
    assert "credentials refused" in failure_text(wrong_run)
    assert all(emulator.state.stats()[p]["requests"] == 1 for p in PROVIDERS)

    assert foreign.received == []
    captured = capfd.readouterr()
    places: dict[str, str] = {
        "stdout": captured.out,
        "stderr": captured.err,
        "failures": "\n".join(failure_text(r) for r in runs),
    }
    for result in runs:
        places[f"run {result.run_id}"] = serialize_value(instance.get_run_by_id(result.run_id))
        for entry in instance.all_logs(result.run_id):
            places[f"event {result.run_id}"] = (
                places.get(f"event {result.run_id}", "") + serialize_value(entry) + "\n"
            )
    records = instance.fetch_materializations(dg.AssetKey("usercom_segments"), limit=100)
    assert records.records  # the search below covers real materialisation metadata
    for path in files_under(instance.root_directory, str(Path(duckdb_path).parent)):
        places[str(path)] = path.read_bytes().decode("latin-1")
    assert len(places) > 5 and any(p.endswith(".duckdb") for p in places)

    hits = {where: text.count(CANARY) for where, text in places.items() if CANARY in text}
    assert hits == {}, f"a credential leaked into: {sorted(hits)}"
    assert ONESIGNAL_APP in places["stderr"]  # the search does see what was printed
