"""ActionHub (Data Baller): every configured segment type × basis list, page by page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from segment_assets.http import ProviderHTTP
from segment_assets.pagination import PageNumberStrategy, crawl
from segment_assets.providers.schema import drop_duplicate_segments, to_frame
from segment_assets.providers.shape import COUNT, NUMBER, TEXT, check_fields

PROVIDER = "actionhub"
SEGMENT_TYPES: tuple[str, ...] = ("growth", "base", "discovery")
SEGMENT_BASES: tuple[str, ...] = ("labels", "assets")
DEFAULT_BASE_URL = "https://api.actionhub.ai"
API_VERSION = "1.0"

_ITEM = {
    "segment_basis_id": TEXT,
    "action_type": TEXT,
    "name": TEXT,
    "user_count": COUNT,
    "strength": NUMBER,
    "min_weight": NUMBER,
}


@dataclass(frozen=True)
class ActionHubQuery:
    """What to list: the type × basis combinations and the weight cutoff."""

    program_id: str
    segment_types: Sequence[str] = SEGMENT_TYPES
    segment_bases: Sequence[str] = SEGMENT_BASES
    min_weight: float = 0.5
    force_refresh: bool = False
    page_size: int = 50

    def __post_init__(self) -> None:
        bad = [t for t in self.segment_types if t not in SEGMENT_TYPES]
        if bad or not self.segment_types:
            raise ValueError(
                f"unknown ActionHub segment type(s) {bad or '(none given)'}; "
                f"choose from {', '.join(SEGMENT_TYPES)}"
            )
        bad = [b for b in self.segment_bases if b not in SEGMENT_BASES]
        if bad or not self.segment_bases:
            raise ValueError(
                f"unknown ActionHub segment basis {bad or '(none given)'}; "
                f"choose from {', '.join(SEGMENT_BASES)}"
            )
        if not 0 <= self.min_weight <= 1:
            raise ValueError(f"ActionHub min_weight must be between 0 and 1, got {self.min_weight}")
        if not 1 <= self.page_size <= 1000:
            raise ValueError(f"ActionHub page_size must be 1..1000, got {self.page_size}")


def headers(api_key: str, program_id: str) -> dict[str, str]:
    return {
        "actionhub-key": api_key,
        "program-id": program_id,
        "api-version": API_VERSION,
        "Accept": "application/json",
    }


def segment_id(segment_type: str, basis: str, basis_id: str, action_type: str) -> str:
    """Stable id of one ActionHub segment: its type, basis, basis id and action type."""
    return f"{segment_type}/{basis}/{basis_id}/{action_type}"


def fetch_actionhub(
    http: ProviderHTTP,
    query: ActionHubQuery,
    *,
    snapshot_date: dt.date,
    max_concurrency: int = 4,
    log: Any = None,
) -> pd.DataFrame:
    """Snapshot every segment of ``query`` into the normalised actionhub frame."""
    fetched_at = dt.datetime.now(dt.UTC)
    lists = {
        (segment_type, basis): PageNumberStrategy(
            path="/segments",
            items_key="items",
            item_check=lambda item: check_fields(item, _ITEM),
            log=log,
            label=f"ActionHub {segment_type}/{basis}",
            params={
                "segment_type": segment_type,
                "segment_basis": basis,
                "min_weight": query.min_weight,
                "force_refresh": str(query.force_refresh).lower(),
            },
            size=query.page_size,
        )
        for segment_type in query.segment_types
        for basis in query.segment_bases
    }
    crawl(http, lists.values(), max_workers=max_concurrency)
    rows = [
        {
            "segment_id": segment_id(
                segment_type, basis, item["segment_basis_id"], item["action_type"]
            ),
            "segment_name": item["name"],
            "user_count": item.get("user_count"),
            "segment_type": segment_type,
            "segment_basis": basis,
            "segment_basis_id": item["segment_basis_id"],
            "action_type": item["action_type"],
            "strength": item["strength"],
            "min_weight": item["min_weight"],
        }
        for (segment_type, basis), strategy in lists.items()
        for item in strategy.items()
    ]
    frame = to_frame(
        PROVIDER, rows, account=query.program_id, snapshot_date=snapshot_date, fetched_at=fetched_at
    )
    return drop_duplicate_segments(frame, log)
