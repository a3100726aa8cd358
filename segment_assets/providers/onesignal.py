"""OneSignal: list an app's segments, then view each one for its count and details."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd

from segment_assets.http import BadShape, ProviderError, ProviderHTTP
from segment_assets.pagination import OffsetStrategy, Progress, SingleStrategy, crawl
from segment_assets.providers.schema import drop_duplicate_segments, to_frame
from segment_assets.providers.shape import INT, TEXT, check_fields

PROVIDER = "onesignal"
DEFAULT_BASE_URL = "https://api.onesignal.com"
PAGE_LIMIT = 300
USER_BASED_MARKER = "not yet supported"

_LISTED = {"id": TEXT, "name": TEXT}
_VIEW = {"subscriber_count": INT}


def headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Key {api_key}", "Accept": "application/json"}


def _check_view(body: dict[str, Any]) -> None:
    check_fields(body, _VIEW)
    payload = body.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise BadShape(f"'payload' is {type(payload).__name__}, not an object")


def is_user_based(error: ProviderError) -> bool:
    return error.status == 400 and USER_BASED_MARKER in (error.vendor_message or "")


def fetch_onesignal(
    http: ProviderHTTP,
    app_id: str,
    *,
    snapshot_date: dt.date,
    max_concurrency: int = 1,
    log: Any = None,
) -> pd.DataFrame:
    """Snapshot every segment of one OneSignal app into the normalised onesignal frame.

    A user-based segment (400 "not yet supported via the API") is kept with a NULL count
    and ``countable`` false; a segment deleted between list and view (404) is left out.
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

    skipped: dict[str, list[str]] = {"user_based": [], "deleted": []}

    def tolerate(segment_id: str):
        def handle(exc: Exception) -> dict[str, Any] | None:
            if isinstance(exc, ProviderError) and is_user_based(exc):
                skipped["user_based"].append(segment_id)
                return {"__uncountable__": True}
            if isinstance(exc, ProviderError) and exc.status == 404:
                skipped["deleted"].append(segment_id)
                return None
            raise exc

        return handle

    views = {
        segment_id: SingleStrategy(
            path=f"{base}/{segment_id}",
            items_key="",
            params={"include-segment-detail": "true"},
            body_check=_check_view,
            tolerate=tolerate(segment_id),
            log=log,
        )
        for segment_id in listed
    }
    progress = Progress(f"OneSignal {app_id}", total=len(views), log=log)
    crawl(http, views.values(), max_workers=max_concurrency, on_page=progress)

    rows = []
    for segment_id, strategy in views.items():
        found = strategy.items()
        if not found:
            continue
        rows.append(_row(listed[segment_id], found[0]))
    if log is not None and skipped["deleted"]:
        log.warning(
            f"OneSignal: {len(skipped['deleted'])} segment(s) were deleted between listing "
            f"and viewing and are left out: {', '.join(skipped['deleted'][:10])}"
        )
    if log is not None and skipped["user_based"]:
        log.info(
            f"OneSignal: {len(skipped['user_based'])} user-based segment(s) cannot be counted "
            f"through the API; stored with user_count NULL and countable false"
        )
    frame = to_frame(
        PROVIDER, rows, account=app_id, snapshot_date=snapshot_date, fetched_at=fetched_at
    )
    return drop_duplicate_segments(frame, log)


def _row(listed: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
    uncountable = view.get("__uncountable__", False)
    payload = view.get("payload") or {}
    filters = payload.get("filters")
    return {
        "segment_id": listed["id"],
        "segment_name": payload.get("name") or listed["name"],
        "user_count": None if uncountable else view["subscriber_count"],
        "description": payload.get("description"),
        "source": payload.get("source"),
        "created_at": payload.get("created_at", listed.get("created_at")),
        "filters": None if filters is None else json.dumps(filters, sort_keys=True),
        "countable": not uncountable,
    }
