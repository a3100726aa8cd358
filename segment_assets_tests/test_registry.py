"""Each provider is described once, in the registry, and the project reads it from there: a
fourth provider is one module and one registry entry."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import duckdb
import pytest

from segment_assets.cli import parse_args
from segment_assets.config import (
    ConfigurationError,
    parse_accounts,
    provider_resources,
    provider_resources_from_env,
)
from segment_assets.config.settings import file_model
from segment_assets.defs.assets import PROVIDER_ASSETS, build_provider_asset
from segment_assets.defs.checks import DROP_CHECKS
from segment_assets.providers import registry, schema
from segment_assets.store.duckdb_files import io_manager

from .conftest import YESTERDAY
from .example_provider import ACME

ACME_KEY = "acme-test-key"
ACME_SEGMENTS = [
    {"id": 1, "name": "Newsletter", "size": 1200, "description": "weekly readers"},
    {"id": 2, "name": "Trial", "size": 45},
]


def test_every_provider_is_described_once_and_the_project_reads_it():
    assets = {a.key.path[-1]: a for a in PROVIDER_ASSETS}
    checks = {k.asset_key.path[-1]: c for c in DROP_CHECKS for k in c.check_keys}
    assert tuple(assets) == registry.TABLES
    for provider in registry.PROVIDERS:
        resource = provider.resource
        assert resource.spec is provider
        assert provider.accounts.model_fields["accounts"].annotation == list[resource]
        for setting in provider.settings:  # each setting of the file fills a resource field
            assert setting.target in resource.model_fields, setting
        assert provider.identity in resource.model_fields
        asset = assets[provider.table]
        assert provider.name in asset.required_resource_keys
        spec = asset.specs_by_key[asset.key]
        assert provider.label in (spec.description or "")
        assert [c.name for c in spec.metadata["dagster/column_schema"].columns] == (
            schema.column_names(provider.name)
        )
        [check] = checks[provider.table].check_specs
        assert provider.label in (check.description or "")
        assert parse_args(["drops", "--date", "2026-01-01", "--provider", provider.name])


def test_a_provider_the_registry_does_not_list_is_refused_where_it_is_named():
    with pytest.raises(KeyError, match="unknown provider 'mailchimp'; the providers are"):
        registry.get("mailchimp")
    with pytest.raises(SystemExit):
        parse_args(["drops", "--date", "2026-01-01", "--provider", "mailchimp"])


@pytest.fixture
def acme_api() -> Iterator[str]:
    """A local HTTP server answering like the example provider's API."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            if self.headers.get("X-Api-Key") != ACME_KEY:
                status, body = 403, {"error": "bad key"}
            elif self.path == "/workspaces/ws-1/segments":
                status, body = 200, {"segments": ACME_SEGMENTS}
            else:
                status, body = 404, {"error": "no such workspace"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def with_acme(monkeypatch) -> Iterator[None]:
    """The registry with the example provider's entry added, as registry.py would list it."""
    monkeypatch.setattr(registry, "PROVIDERS", (*registry.PROVIDERS, ACME))
    monkeypatch.setattr(registry, "NAMES", (*registry.NAMES, ACME.name))
    monkeypatch.setattr(registry, "TABLES", (*registry.TABLES, ACME.table))
    file_model.cache_clear()
    yield
    file_model.cache_clear()


def test_a_fourth_provider_is_its_module_plus_its_registry_entry(
    with_acme, acme_api, tmp_path, monkeypatch, instance, duckdb_path
):
    config = tmp_path / "segment_assets.yaml"
    config.write_text(
        "acme:\n  main:\n    label: Main workspace\n    workspace: ws-1\n"
        f"    api_key_env: ACME_MAIN_KEY\n    base_url: {acme_api}\n    max_pages: 3\n"
    )
    monkeypatch.setenv("ACME_MAIN_KEY", ACME_KEY)
    env = {"SEGMENT_ASSETS_CONFIG": str(config), "ACME_MAIN_KEY": ACME_KEY, "ACME_MAX_RPS": "50"}

    # the accounts file and the environment take its accounts like any provider's
    resources = provider_resources(env)
    [account] = resources["acme"].all_accounts()
    assert account.describe() == "Acme Lists Main workspace (ws-1)"
    assert (account.max_requests_per_second, account.max_pages) == (50, 3)
    assert account.env_names["api_key"] == "ACME_MAIN_KEY"
    single = provider_resources_from_env({})["acme"]
    assert single.env_names["workspace"] == "ACME_WORKSPACE"
    assert parse_args(["snapshot", "--date", "2026-01-01", "--provider", "acme"]).provider == [
        "acme"
    ]
    with pytest.raises(ConfigurationError, match=r"acme\.main\.max_pages: must be positive"):
        parse_accounts(
            "acme:\n  main: {workspace: w, api_key_env: K, max_pages: 0}\n", "f", {"K": "k"}
        )

    # the asset factory makes its asset, and a real run stores its table
    result = dg.materialize(
        [build_provider_asset("acme")],
        partition_key=YESTERDAY.isoformat(),
        resources={"acme": resources["acme"], "io_manager": io_manager()},
        instance=instance,
    )

    assert result.success
    with duckdb.connect(duckdb_path, read_only=True) as conn:
        stored = conn.sql("select * from segments.acme_segments order by segment_id").df()
    assert list(stored.columns) == schema.column_names("acme")
    assert list(stored["user_count"]) == [1200, 45]
    assert set(stored["account"]) == {"ws-1"} and set(stored["provider"]) == {"acme"}
    assert list(stored["description"].fillna("")) == ["weekly readers", ""]
