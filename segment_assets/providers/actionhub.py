"""ActionHub (Data Baller): every configured segment type × basis list, page by page, and
the resource of one program.

Segment types and bases are sent as configured: any non-empty word may be set, and the
API judges it. Its 422 is turned into an error that names the setting to change and the
values the API said it permits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Protocol

import pandas as pd
from pydantic import AfterValidator, Field, PositiveFloat, PositiveInt

from segment_assets.providers.crawler import crawl
from segment_assets.providers.http import ProviderHTTP, ProviderRequestError
from segment_assets.providers.pagination import PageNumberStrategy
from segment_assets.providers.registry import ACTIONHUB, Provider
from segment_assets.providers.resource import AccountsResource, ProviderResource
from segment_assets.providers.schema import drop_duplicate_segments, to_frame
from segment_assets.providers.shape import COUNT, NUMBER, TEXT, check_fields

PROVIDER = ACTIONHUB.name
SEGMENT_TYPES: tuple[str, ...] = ("growth", "base", "discovery")
SEGMENT_BASES: tuple[str, ...] = ("labels", "assets")
DEFAULT_BASE_URL = "https://api.actionhub.ai"
API_VERSION = "1.0"
MAX_PAGE_SIZE = 100  # fastapi-pagination's default maximum for ``size``
TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
# query parameter → the setting that fills it
SETTING_OF = {
    "segment_type": "segment_types",
    "segment_basis": "segment_bases",
    "min_weight": "min_weight",
    "size": "page_size",
}

_ITEM = {
    "segment_basis_id": TEXT,
    "action_type": TEXT,
    "name": TEXT,
    "user_count": COUNT,
    "strength": NUMBER,
    "min_weight": NUMBER,
}


def check_words(values: list[str]) -> list[str]:
    """A list of segment types or bases: at least one, each a word, none twice. Which words
    the API accepts is the API's to say (its 422 names them)."""
    if not values:
        raise ValueError("must list at least one value, e.g. [growth]")
    bad = [v for v in values if not TOKEN.match(v)]
    if bad:
        raise ValueError(
            f"must list single words (letters, digits, '_', '-', '.' or ':'), "
            f"got {', '.join(repr(v) for v in bad)}"
        )
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise ValueError(f"lists {', '.join(twice)} twice")
    return values


def check_page_size(page_size: int) -> int:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(
            f"must be between 1 and {MAX_PAGE_SIZE} (the API's maximum page size), got {page_size}"
        )
    return page_size


#: What the API is asked for, written once: the resource's fields and the accounts file's
#: settings have these types, so a list that cannot be sent is refused when the definitions
#: load.
Words = Annotated[list[str], AfterValidator(check_words)]
PageSize = Annotated[int, AfterValidator(check_page_size)]
Weight = Annotated[float, Field(ge=0, le=1)]


class ActionHubQuery(Protocol):
    """What to list: the type × basis combinations and the weight cutoff (the settings of
    :class:`ActionHubResource`, which is the one place they are declared)."""

    program_id: str
    segment_types: list[str]
    segment_bases: list[str]
    min_weight: float
    force_refresh: bool
    page_size: int


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
    setting_name: Callable[[str], str] = str,
) -> pd.DataFrame:
    """Snapshot every segment of ``query`` into the normalised actionhub frame.

    ``setting_name`` says how the user names a setting (``segment_bases`` → the accounts
    file's entry or the resource field), for the error a 422 becomes.
    """
    fetched_at = dt.datetime.now(dt.UTC)
    lists = {
        (segment_type, basis): PageNumberStrategy(
            path="/segments",
            items_key="items",
            item_check=lambda item: check_fields(item, _ITEM),
            item_key=lambda item: (item["segment_basis_id"], item["action_type"]),
            log=log,
            label=f"ActionHub {segment_type}/{basis}",
            params={
                "segment_type": segment_type,
                "segment_basis": basis,
                "min_weight": query.min_weight,
            },
            first_params={"force_refresh": "true"} if query.force_refresh else {},
            size=query.page_size,
        )
        for segment_type in query.segment_types
        for basis in query.segment_bases
    }
    try:
        crawl(http, lists.values(), max_workers=max_concurrency)
    except ProviderRequestError as exc:
        raise explain_rejection(exc, setting_name) from None
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


def explain_rejection(
    error: ProviderRequestError, setting_name: Callable[[str], str] = str
) -> ProviderRequestError:
    """A 422 on a parameter a setting fills, as an error naming that setting, the value
    sent and the values the API permits; any other rejection unchanged."""
    lines = []
    for problem in error.problems:
        setting = SETTING_OF.get(problem.param)
        if setting is None:
            continue
        sent = f" {problem.sent!r}" if problem.sent is not None else ""
        if problem.permitted:
            allowed = ", ".join(problem.permitted)
            lines.append(
                f"the API does not accept {problem.param}{sent}; it permits {allowed}. "
                f"Change {setting_name(setting)} to a list of those"
            )
        else:
            lines.append(
                f"the API does not accept {problem.param}{sent} ({problem.message}). "
                f"Change {setting_name(setting)}"
            )
    if not lines:
        return error
    return type(error)(
        error.provider,
        error.endpoint,
        "; ".join(lines),
        status=error.status,
        problems=error.problems,
    )


class ActionHubResource(ProviderResource):
    """ActionHub (Data Baller) segments of one program."""

    spec: ClassVar[Provider] = ACTIONHUB

    api_key: str = Field(description="ActionHub API key (header actionhub-key).")
    program_id: str = Field(description="ActionHub program id (header program-id).")
    base_url: str = Field(default=DEFAULT_BASE_URL)
    segment_types: Words = Field(default_factory=lambda: list(SEGMENT_TYPES))
    segment_bases: Words = Field(default_factory=lambda: list(SEGMENT_BASES))
    min_weight: Weight = Field(default=0.5)
    force_refresh: bool = Field(
        default=False, description="Ask for a recount (once per list, with its first page)."
    )
    page_size: PageSize = Field(default=50, description="Segments per page, 1 to 100.")
    max_requests_per_second: PositiveFloat | None = Field(
        default=10.0, description="Requests per second (ACTIONHUB_MAX_RPS); empty = no limit."
    )
    max_concurrency: PositiveInt = Field(
        default=4, description="Pages in flight at once (ACTIONHUB_MAX_CONCURRENCY)."
    )

    def snapshot(self, snapshot_date: dt.date, log: Any = None) -> pd.DataFrame:
        base = self.ready()
        with self.http(base, headers(self.api_key, self.program_id), log) as client:
            return fetch_actionhub(
                client,
                self,
                snapshot_date=snapshot_date,
                max_concurrency=self.max_concurrency,
                log=log,
                setting_name=self._name,
            )


class ActionHubAccounts(AccountsResource):
    """The ActionHub programs listed in segment_assets.yaml."""

    accounts: list[ActionHubResource] = Field(description="One entry per program.")
