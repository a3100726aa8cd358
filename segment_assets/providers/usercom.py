"""User.com: follow the ``next`` links of ``/segments/`` to the end; the resource of one app."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pandas as pd
from pydantic import Field, PositiveFloat

from segment_assets.providers.crawler import crawl
from segment_assets.providers.http import ProviderHTTP
from segment_assets.providers.pagination import NextLinkStrategy
from segment_assets.providers.registry import USERCOM, Provider
from segment_assets.providers.resource import AccountsResource, ProviderResource
from segment_assets.providers.schema import drop_duplicate_segments, to_frame
from segment_assets.providers.shape import ANY, BOOL, COUNT, INT, TEXT, check_fields

PROVIDER = USERCOM.name
API_SUFFIX = "/api/public"

_RESULT = {
    "id": ANY,
    "name": TEXT,
    "description": TEXT,
    "object_count": COUNT,
    "too_heavy": BOOL,
    "update_interval": INT,
    "last_counted": TEXT,
    "updated_at": ANY,  # optional: a time that cannot be read is NULL and a noted problem
}
_NULLABLE = frozenset(
    {"description", "object_count", "too_heavy", "update_interval", "last_counted", "updated_at"}
)


def headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Token {api_key}", "Accept": "*/*; version=2"}


def account_of(base_url: str) -> str:
    """The app's host (``acme.user.com``), plus any path before ``/api/public``."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if path.endswith(API_SUFFIX):
        path = path[: -len(API_SUFFIX)]
    return parts.netloc + path


def _check(result: dict[str, Any]) -> None:
    check_fields(result, _RESULT, _NULLABLE)


def fetch_usercom(http: ProviderHTTP, *, snapshot_date: dt.date, log: Any = None) -> pd.DataFrame:
    """Snapshot every User.com segment into the normalised usercom frame."""
    fetched_at = dt.datetime.now(dt.UTC)
    listing = NextLinkStrategy(
        path="/segments/", items_key="results", item_check=_check, log=log, label="User.com"
    )
    crawl(http, [listing], max_workers=1)
    rows = [
        {
            "segment_id": str(r["id"]),
            "segment_name": r["name"],
            "user_count": r.get("object_count"),
            "description": r.get("description"),
            "too_heavy": r.get("too_heavy"),
            "update_interval": r.get("update_interval"),
            "last_counted": r.get("last_counted"),
            "updated_at": r.get("updated_at"),
            "definition_updated_at": r.get("updated_at"),  # judged with last_counted
        }
        for r in listing.items()
    ]
    frame = to_frame(
        PROVIDER,
        rows,
        account=account_of(http.base_url),
        snapshot_date=snapshot_date,
        fetched_at=fetched_at,
    )
    return drop_duplicate_segments(frame, log)


class UserComResource(ProviderResource):
    """User.com segments of one app (``https://<subdomain>.user.com/api/public``)."""

    spec: ClassVar[Provider] = USERCOM

    api_key: str = Field(description="User.com API token (header Authorization: Token …).")
    base_url: str = Field(description="https://<app subdomain>.user.com/api/public")
    max_requests_per_second: PositiveFloat | None = Field(
        default=5.0, description="Requests per second (USERCOM_MAX_RPS); empty = no limit."
    )

    @classmethod
    def account_of(cls, identity: str) -> str:
        return account_of(identity)

    def snapshot(self, snapshot_date: dt.date, log: Any = None) -> pd.DataFrame:
        base = self.ready()
        with self.http(base, headers(self.api_key), log) as client:
            return fetch_usercom(client, snapshot_date=snapshot_date, log=log)


class UserComAccounts(AccountsResource):
    """The User.com apps listed in segment_assets.yaml."""

    accounts: list[UserComResource] = Field(description="One entry per app.")
