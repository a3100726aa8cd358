"""OneSignal: list an app's segments, then view each one for its count and details; the
resource of one app."""

from __future__ import annotations

import datetime as dt
import json
from functools import partial
from typing import Any, ClassVar

import pandas as pd
from pydantic import Field, PositiveFloat, PositiveInt

from segment_assets.providers.crawler import Progress, crawl, map_requests
from segment_assets.providers.http import (
    BadShape,
    ProviderAuthError,
    ProviderError,
    ProviderHTTP,
    ProviderRequestError,
)
from segment_assets.providers.pagination import OffsetStrategy
from segment_assets.providers.registry import ONESIGNAL, Provider
from segment_assets.providers.resource import AccountsResource, ProviderResource
from segment_assets.providers.schema import drop_duplicate_segments, to_frame
from segment_assets.providers.shape import COUNT, TEXT, check_fields

PROVIDER = ONESIGNAL.name
DEFAULT_BASE_URL = "https://api.onesignal.com"
PAGE_LIMIT = 300
# Words of OneSignal's 400 for a segment it cannot count ("User-based segments (with message
# event or custom event filters) are not yet supported via the API"); any one is a hint.
USER_BASED_HINTS = (
    "user-based",
    "user based",
    "not yet supported",
    "not supported",
    "unsupported",
    "message event",
    "custom event",
)
# Words of a 400 about the request's credentials, which is never a segment's trait.
AUTH_WORDS = ("authorization", "api key", "api_key", "auth key", "header", "credential")
# A 404 whose errors say one of these about a segment is a deletion between list and view.
NOT_FOUND_WORDS = ("not found", "does not exist", "doesn't exist", "no longer exists")

_LISTED = {"id": TEXT, "name": TEXT}
_VIEW = {"subscriber_count": COUNT}


def headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Key {api_key}", "Accept": "application/json"}


def _check_view(body: Any) -> None:
    if not isinstance(body, dict):
        raise BadShape(f"expected a JSON object, got {type(body).__name__}")
    check_fields(body, _VIEW)
    payload = body.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise BadShape(f"'payload' is {type(payload).__name__}, not an object")


def error_texts(error: ProviderError) -> list[str] | None:
    """The messages of an answer in OneSignal's error shape (``{"errors": ["…"]}``), or None
    when the body is not that shape (a proxy's HTML page, an empty body, another API)."""
    body = error.body
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if isinstance(errors, str):
        return [errors]
    if isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        return list(errors)
    return None


def is_user_based(error: ProviderError) -> bool:
    """A segment's view answered 400 in OneSignal's error shape, not about credentials:
    the API cannot count that segment (user-based). The words are only a hint, see
    :func:`said_user_based`; a 400 of any other shape is an error."""
    if error.status != 400 or isinstance(error, ProviderAuthError):
        return False
    texts = error_texts(error)
    if texts is None:
        return False
    said = " ".join(texts).lower()
    return not any(word in said for word in AUTH_WORDS)


def said_user_based(error: ProviderError) -> bool:
    """The 400's words name the known reason (user-based, not supported, event filters)."""
    said = " ".join(error_texts(error) or []).lower()
    return any(hint in said for hint in USER_BASED_HINTS)


def is_deleted(error: ProviderError) -> bool:
    """A segment's view answered 404 saying, in OneSignal's error shape, that the segment
    was not found: it was deleted between list and view. Any other 404 (a proxy's page,
    "app not found") is not a deletion."""
    if error.status != 404:
        return False
    for text in error_texts(error) or []:
        said = text.lower()
        if "segment" in said and "app" not in said and any(w in said for w in NOT_FOUND_WORDS):
            return True
    return False


def fetch_onesignal(
    http: ProviderHTTP,
    app_id: str,
    *,
    snapshot_date: dt.date,
    max_concurrency: int = 1,
    log: Any = None,
) -> pd.DataFrame:
    """Snapshot every segment of one OneSignal app into the normalised onesignal frame.

    A user-based segment (400 in OneSignal's error shape, see :func:`is_user_based`) is kept
    with a NULL count and ``countable`` false; a segment deleted between list and view (404
    "segment not found") is left out. Any other 404 fails the app: it is not a deletion.
    """
    fetched_at = dt.datetime.now(dt.UTC)
    base = f"/apps/{app_id}/segments"
    listing = OffsetStrategy(
        path=base,
        items_key="segments",
        item_check=lambda s: check_fields(s, _LISTED),
        log=log,
        label="OneSignal listing",
        limit=PAGE_LIMIT,
    )
    crawl(http, [listing], max_workers=1)
    listed = {s["id"]: s for s in listing.items()}  # a repeated id is viewed once

    user_based: list[str] = []
    deleted: list[str] = []

    def view(segment_id: str) -> dict[str, Any] | None:
        """The segment's row, or None when it was deleted since the listing."""
        try:
            body = http.get_json(
                f"{base}/{segment_id}", {"include-segment-detail": "true"}, validate=_check_view
            )
        except ProviderError as exc:
            if is_user_based(exc):
                user_based.append(segment_id)
                problem = None if said_user_based(exc) else _unknown_400(exc)
                return _row(listed[segment_id], None, problem)
            if is_deleted(exc):
                deleted.append(segment_id)
                return None
            if exc.status == 404:
                raise _not_a_deletion(exc, app_id) from None
            raise
        return _row(listed[segment_id], body)

    calls = [partial(view, segment_id) for segment_id in listed]
    progress = Progress(f"OneSignal {app_id}", total=len(calls), log=log)
    viewed = map_requests(http, calls, max_workers=max_concurrency, on_done=progress)
    rows = [row for row in viewed if row is not None]
    if log is not None and deleted:
        log.warning(
            f"OneSignal: {len(deleted)} segment(s) were deleted between listing "
            f"and viewing and are left out: {', '.join(deleted[:10])}"
        )
    if log is not None and user_based:
        log.info(
            f"OneSignal: {len(user_based)} user-based segment(s) cannot be counted "
            f"through the API; stored with user_count NULL and countable false"
        )
    frame = to_frame(
        PROVIDER, rows, account=app_id, snapshot_date=snapshot_date, fetched_at=fetched_at
    )
    return drop_duplicate_segments(frame, log)


def _unknown_400(error: ProviderError) -> str:
    said = "; ".join(error_texts(error) or [])[:200]
    return (
        f"view answered HTTP 400 ({said!r}) without naming a user-based segment; read as a "
        "segment the API cannot count"
    )


def _not_a_deletion(error: ProviderError, app_id: str) -> ProviderRequestError:
    return ProviderRequestError(
        error.provider,
        error.endpoint,
        "a segment's view answered 404 without OneSignal's 'segment not found', so it is not "
        f"read as a deletion and nothing of app {app_id} is stored for the day",
        status=error.status,
        vendor_message=error.vendor_message,
        hint="Check ONESIGNAL_BASE_URL (or the app's base_url) and that the app id names an "
        "existing app; a proxy in front of the API may answer 404 pages of its own",
    )


def _row(
    listed: dict[str, Any], view: dict[str, Any] | None, problem: str | None = None
) -> dict[str, Any]:
    """A segment's row from its listing and its view; ``view`` None: the API cannot count it
    (user-based), ``problem`` says why when the 400 did not name the reason."""
    payload = (view or {}).get("payload") or {}
    filters = payload.get("filters")
    return {
        "segment_id": listed["id"],
        "segment_name": payload.get("name") or listed["name"],
        "user_count": None if view is None else view.get("subscriber_count"),
        "problem": problem,
        "description": payload.get("description"),
        "source": payload.get("source"),
        "created_at": payload.get("created_at", listed.get("created_at")),
        "filters": None if filters is None else json.dumps(filters, sort_keys=True),
        "countable": view is not None,
        "read_only": listed.get("read_only"),
        "is_active": listed.get("is_active"),
        "definition_updated_at": listed.get("updated_at"),  # the view has no such time
    }


class OneSignalResource(ProviderResource):
    """OneSignal segments of one app, one view request per segment."""

    spec: ClassVar[Provider] = ONESIGNAL

    api_key: str = Field(description="OneSignal App API key (header Authorization: Key …).")
    app_id: str = Field(description="OneSignal app id (UUID).")
    base_url: str = Field(default=DEFAULT_BASE_URL)
    max_requests_per_second: PositiveFloat | None = Field(
        default=0.9,
        description="Requests per second (ONESIGNAL_MAX_RPS); OneSignal documents about one "
        "view request per second per app, and a strict limit punishes a client at exactly it.",
    )
    max_concurrency: PositiveInt = Field(
        default=2, description="Views in flight at once (ONESIGNAL_MAX_CONCURRENCY)."
    )

    def snapshot(self, snapshot_date: dt.date, log: Any = None) -> pd.DataFrame:
        base = self.ready()
        with self.http(base, headers(self.api_key), log) as client:
            return fetch_onesignal(
                client,
                self.app_id,
                snapshot_date=snapshot_date,
                max_concurrency=self.max_concurrency,
                log=log,
            )


class OneSignalAccounts(AccountsResource):
    """The OneSignal apps listed in segment_assets.yaml."""

    accounts: list[OneSignalResource] = Field(description="One entry per app.")
