"""Pagination as small strategy objects, one per way of paging.

The three providers page in the three classic ways — page number (ActionHub), next link
(User.com) and offset (OneSignal). Each strategy knows how to ask for its first page, how
to check a page's shape, and which pages follow a page it has read;
:func:`~segment_assets.providers.crawler.crawl` fetches the pages of any number of
strategies side by side.

The strategies do not trust the provider: a total that changes between pages, a page that
comes back short or full when it should not, or a next link that loops back are corrected
and said in the log. Every list ends: a page that only repeats segments already read stops
its list (what was new is kept, and the log says so); a list longer than the client's page
cap (``max_pages``), or a page-number list whose page is empty although its own total says
it holds items, is a :class:`PageProblem`, which the crawler raises as
:class:`~segment_assets.providers.http.ProviderPaginationError` (ActionHub pages are
requested a window at a time, so a total in the millions costs one request, not a crawl of
empty pages).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from segment_assets.providers.errors import BadShape

if TYPE_CHECKING:
    from segment_assets.providers.http import ProviderHTTP

ItemCheck = Callable[[dict[str, Any]], None]
ItemKey = Callable[[dict[str, Any]], Hashable]


class PageProblem(Exception):
    """A list contradicts itself; the message says how (raised by a strategy)."""


class TooManyPages(PageProblem):
    """A list is longer than the page cap."""


def item_id(item: dict[str, Any]) -> Hashable:
    """An item's identity in its list: its ``id``."""
    return item.get("id")


@dataclass(frozen=True)
class PageRequest:
    """One request of one strategy: a path (or absolute link) and its query."""

    url: str
    params: tuple[tuple[str, Any], ...] = ()
    order: Hashable = 0

    @property
    def query(self) -> dict[str, Any] | None:
        return dict(self.params) or None


def _items(body: Any, key: str, check: ItemCheck | None) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise BadShape(f"expected a JSON object, got {type(body).__name__}")
    items = body.get(key)
    if not isinstance(items, list):
        raise BadShape(f"missing list {key!r} (keys: {', '.join(sorted(body)) or 'none'})")
    for item in items:
        if not isinstance(item, dict):
            raise BadShape(f"an entry of {key!r} is {type(item).__name__}, not an object")
        if check is not None:
            check(item)
    return items


def _int_field(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadShape(f"{key!r} is {value!r}, not a non-negative integer")
    return value


@dataclass
class Strategy:
    """Base: collects pages by order and yields their items in order."""

    path: str
    items_key: str
    params: dict[str, Any] = field(default_factory=dict)
    item_check: ItemCheck | None = None
    log: Any = None
    label: str = ""
    pages: dict[Hashable, list[dict[str, Any]]] = field(default_factory=dict)
    item_key: ItemKey = item_id
    max_pages: int | None = None  # None: the client's page cap
    requested: int = 1  # pages requested so far (the crawler counts them)
    read: int = 0  # pages read so far
    items_seen: set[Hashable] = field(default_factory=set)
    stopped: bool = False  # a page only repeated what was read: request no more

    def first(self) -> PageRequest:
        return PageRequest(self.path, tuple(self.params.items()))

    def validate(self, body: Any) -> None:
        _items(body, self.items_key, self.item_check)

    def fetch(self, http: ProviderHTTP, request: PageRequest) -> Any:
        return http.get_json(request.url, request.query, validate=self.validate)

    def accept(self, request: PageRequest, body: Any) -> list[PageRequest]:
        """Store a page's items; return the requests that follow from it."""
        self.take(request, body[self.items_key], "a page")
        return []

    def take(self, request: PageRequest, items: list[dict[str, Any]], name: str) -> bool:
        """Store a page's items; False when the page (called ``name`` in the log) held items
        but none of them new, in which case the list is stopped (the log says so)."""
        self.pages[request.order] = items
        self.read += 1
        fresh = 0
        for item in items:
            key = self.item_key(item)
            try:
                hash(key)
            except TypeError:
                key = repr(key)
            if key not in self.items_seen:
                self.items_seen.add(key)
                fresh += 1
        if not items or fresh:
            return True
        if not self.stopped:
            self.stopped = True
            self.note(
                f"{name} only repeats segments already read; stopped there, "
                f"keeping the {len(self.items_seen)} distinct segments read"
            )
        return False

    def items(self) -> list[dict[str, Any]]:
        return [item for key in sorted(self.pages) for item in self.pages[key]]

    def note(self, message: str) -> None:
        if self.log is not None:
            self.log.warning(f"{self.label or self.path}: {message}")


@dataclass
class PageNumberStrategy(Strategy):
    """``page``/``size`` pages with a ``total`` item count (ActionHub).

    Page 1 tells the total; the following pages are then requested side by side, at most
    ``ahead`` beyond those read. A later page reporting a larger total, or a last page that
    is still full, schedules more pages. A total beyond the page cap, or an empty page that
    its own total says holds items, fails the list. ``first_params`` go with page 1 only
    (a recount asked once per list, not per page).
    """

    size: int = 50
    total_key: str = "total"
    first_params: dict[str, Any] = field(default_factory=dict)
    ahead: int = 16
    scheduled: int = 1
    needed: int = 1

    def _request(self, page: int) -> PageRequest:
        first = self.first_params if page == 1 else {}
        query = {**self.params, **first, "page": page, "size": self.size}
        return PageRequest(self.path, tuple(query.items()), order=page)

    def first(self) -> PageRequest:
        return self._request(1)

    def validate(self, body: Any) -> None:
        super().validate(body)
        _int_field(body, self.total_key)

    def accept(self, request: PageRequest, body: Any) -> list[PageRequest]:
        page, items, total = request.order, body[self.items_key], body[self.total_key]
        self.take(request, items, f"page {page}")
        cap = self.max_pages or math.inf
        by_total = max(1, math.ceil(total / self.size))
        if by_total > cap:
            raise TooManyPages(
                f"its {self.total_key} is {total:,}, which is {by_total:,} pages of "
                f"{self.size}, more than the cap of {cap:,} pages"
            )
        if not items and total > (page - 1) * self.size:
            raise PageProblem(
                f"page {page} is empty although its {self.total_key} ({total:,}) says it "
                "holds segments; stopped rather than read pages that are not there"
            )
        needed = max(self.needed, by_total)
        if page == needed and len(items) >= self.size:
            needed = page + 1  # a full last page: there may be more
        if page > 1 and needed > self.needed:
            self.note(f"total changed to {total} on page {page}; fetching up to page {needed}")
        self.needed = needed
        new = []
        while (
            not self.stopped
            and self.scheduled < self.needed
            and self.scheduled - self.read < self.ahead
        ):
            self.scheduled += 1
            new.append(self._request(self.scheduled))
        return new


@dataclass
class NextLinkStrategy(Strategy):
    """Django-REST pages: follow the absolute ``next`` link until it is null (User.com)."""

    next_key: str = "next"
    page_param: str = "page"
    seen: set[str] = field(default_factory=set)
    urls: dict[Hashable, str] = field(default_factory=dict)

    def page_key(self, url: str) -> str:
        """A page's identity: path and sorted query, ``page=1`` being the same as no page."""
        parts = urlsplit(url)
        query = sorted(
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if (k, v) != (self.page_param, "1")
        )
        return f"{parts.path.rstrip('/')}?{urlencode(query)}"

    def fetch(self, http: ProviderHTTP, request: PageRequest) -> Any:
        self.urls[request.order] = self.page_key(http.url_for(request.url))
        return super().fetch(http, request)

    def validate(self, body: Any) -> None:
        super().validate(body)
        link = body.get(self.next_key)
        if link is not None and not isinstance(link, str):
            raise BadShape(f"{self.next_key!r} is {link!r}, not a link or null")

    def accept(self, request: PageRequest, body: Any) -> list[PageRequest]:
        fresh = self.take(request, body[self.items_key], f"page {len(self.seen) + 1}")
        self.seen.add(self.urls.get(request.order, self.page_key(request.url)))
        link = body.get(self.next_key)
        if not link or not fresh:
            return []
        if self.page_key(link) in self.seen:
            self.note(f"next link loops back to a page already read ({link}); stopped there")
            return []
        return [PageRequest(link, order=len(self.seen))]


@dataclass
class OffsetStrategy(Strategy):
    """``offset``/``limit`` pages (OneSignal): stop on an empty page, or on a short page
    once ``total_count`` (when given) is reached."""

    limit: int = 300
    total_key: str = "total_count"

    def _request(self, offset: int) -> PageRequest:
        query = {**self.params, "offset": offset, "limit": self.limit}
        return PageRequest(self.path, tuple(query.items()), order=offset)

    def first(self) -> PageRequest:
        return self._request(0)

    def validate(self, body: Any) -> None:
        super().validate(body)
        if body.get(self.total_key) is not None:  # optional, but never garbled
            _int_field(body, self.total_key)

    def accept(self, request: PageRequest, body: Any) -> list[PageRequest]:
        offset, count = request.order, len(body[self.items_key])
        fresh = self.take(request, body[self.items_key], f"the page at offset {offset}")
        if count == 0 or not fresh:
            return []
        total = body.get(self.total_key)
        if count < self.limit:
            if isinstance(total, int) and offset + count < total:
                self.note(
                    f"short page at offset {offset} ({count} of {self.limit}) while "
                    f"{self.total_key} is {total}; reading on"
                )
            else:
                return []
        return [self._request(offset + count)]
