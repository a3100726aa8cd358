"""Acme Lists: the provider of the README's "Adding a provider", as a module of its own.

In the package the entry ``ACME`` would be one more entry of
``segment_assets/providers/registry.py`` (and this module would import it from there); the
tests keep it here and add it to the registry's list for the length of a test.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import pandas as pd
from pydantic import Field

from segment_assets.providers.columns import Column, CountRule
from segment_assets.providers.http import ProviderHTTP
from segment_assets.providers.registry import SHARED_SETTINGS, Provider, Setting
from segment_assets.providers.resource import AccountsResource, ProviderResource
from segment_assets.providers.schema import to_frame

# -- the registry entry --------------------------------------------------------------------
ACME = Provider(
    name="acme",
    label="Acme Lists",
    identity="workspace",
    account_words="workspace",
    settings=(
        *SHARED_SETTINGS,
        Setting("workspace", "text", required=True),
        Setting("base_url", "text"),
    ),
    columns=(Column("description", "VARCHAR", "The segment's description."),),
    count=CountRule("size"),
    resource_path="segment_assets_tests.example_provider:AcmeResource",
    accounts_path="segment_assets_tests.example_provider:AcmeAccounts",
    env_prefix="ACME",
)


# -- the module: its fetch function and its resource ---------------------------------------
def fetch_acme(http: ProviderHTTP, workspace: str, *, snapshot_date: dt.date) -> pd.DataFrame:
    """Every segment of one workspace: ``GET /workspaces/<id>/segments``."""
    fetched_at = dt.datetime.now(dt.UTC)
    body = http.get_json(f"/workspaces/{workspace}/segments")
    rows = [
        {
            "segment_id": str(s["id"]),
            "segment_name": s["name"],
            "user_count": s.get("size"),
            "description": s.get("description"),
        }
        for s in body["segments"]
    ]
    return to_frame(
        ACME.name, rows, account=workspace, snapshot_date=snapshot_date, fetched_at=fetched_at
    )


class AcmeResource(ProviderResource):
    """Acme Lists segments of one workspace."""

    spec: ClassVar[Provider] = ACME

    api_key: str = Field(description="Acme API key (header X-Api-Key).")
    workspace: str = Field(description="The workspace's id.")
    base_url: str = Field(default="https://api.acme.example")

    def snapshot(self, snapshot_date: dt.date, log: Any = None) -> pd.DataFrame:
        base = self.ready()
        with self.http(base, {"X-Api-Key": self.api_key}, log) as client:
            return fetch_acme(client, self.workspace, snapshot_date=snapshot_date)


class AcmeAccounts(AccountsResource):
    """The Acme workspaces listed in segment_assets.yaml."""

    accounts: list[AcmeResource] = Field(description="One entry per workspace.")
