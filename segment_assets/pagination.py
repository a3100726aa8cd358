"""Pagination as small strategy objects, driven by one concurrent crawler.

The three providers page in the three classic ways — page number (ActionHub), next link
(User.com) and offset (OneSignal). Each strategy knows how to ask for its first page, how
to check a page's shape, and which pages follow a page it has read; :func:`crawl` runs any
number of strategies side by side over one bounded thread pool, so independent lists (and
the remaining pages of a list whose size is known) are fetched concurrently.

The strategies do not trust the provider: a total that changes between pages, a page that
comes back short or full when it should not, or a next link that loops back are corrected
and said in the log.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from segment_assets.http import BadShape, ProviderHTTP

ItemCheck = Callable[[dict[str, Any]], None]


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

    def first(self) -> PageRequest:
        return PageRequest(self.path, tuple(self.params.items()))

    def validate(self, body: Any) -> None:
        _items(body, self.items_key, self.item_check)

    def fetch(self, http: ProviderHTTP, request: PageRequest) -> Any:
        return http.get_json(request.url, request.query, validate=self.validate)

    def accept(self, request: PageRequest, body: Any) -> list[PageRequest]:
        """Store a page's items; return the requests that follow from it."""
        self.pages[request.order] = body[self.items_key]
        return []

    def items(self) -> list[dict[str, Any]]:
        return [item for key in sorted(self.pages) for item in self.pages[key]]

    def note(self, message: str) -> None:
        if self.log is not None:
            self.log.warning(f"{self.label or self.path}: {message}")


@dataclass
class PageNumberStrategy(Strategy):
    """``page``/``size`` pages with a ``total`` item count (ActionHub).

    Page 1 tells the total; all remaining pages are then requested at once. A later page
    reporting a larger total, or a last page that is still full, schedules more pages.
    """

    size: int = 50
    total_key: str = "total"
    scheduled: int = 1

    def _request(self, page: int) -> PageRequest:
        query = {**self.params, "page": page, "size": self.size}
        return PageRequest(self.path, tuple(query.items()), order=page)

    def first(self) -> PageRequest:
        return self._request(1)

    def validate(self, body: Any) -> None:
        super().validate(body)
        _int_field(body, self.total_key)

    def accept(self, request: PageRequest, body: Any) -> list[PageRequest]:
        super().accept(request, body)
        page = request.order
        needed = max(1, math.ceil(body[self.total_key] / self.size))
        if page == self.scheduled and len(body[self.items_key]) >= self.size:
            needed = max(needed, page + 1)  # a full last page: there may be more
        if page > 1 and needed > self.scheduled:
            self.note(
                f"total changed to {body[self.total_key]} on page {page}; "
                f"fetching up to page {needed}"
            )
        new = range(self.scheduled + 1, needed + 1)
        self.scheduled = max(self.scheduled, needed)
        return [self._request(p) for p in new]


@dataclass
class NextLinkStrategy(Strategy):
    """Django-REST pages: follow the absolute ``next`` link until it is null (User.com)."""

    next_key: str = "next"
    page_param: str = "page"
    seen: set[str] = field(default_factory=set)
    requested: dict[Hashable, str] = field(default_factory=dict)

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
        self.requested[request.order] = self.page_key(http.url_for(request.url))
        return super().fetch(http, request)

    def validate(self, body: Any) -> None:
        super().validate(body)
        link = body.get(self.next_key)
        if link is not None and not isinstance(link, str):
            raise BadShape(f"{self.next_key!r} is {link!r}, not a link or null")

    def accept(self, request: PageRequest, body: Any) -> list[PageRequest]:
        super().accept(request, body)
        self.seen.add(self.requested.get(request.order, self.page_key(request.url)))
        link = body.get(self.next_key)
        if not link:
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
        super().accept(request, body)
        offset, count = request.order, len(body[self.items_key])
        if count == 0:
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


@dataclass
class SingleStrategy(Strategy):
    """One request, one object (OneSignal's view): the body itself is the item.

    ``tolerate`` may turn a ProviderError into a replacement body (or None to drop it).
    """

    body_check: Callable[[Any], None] | None = None
    tolerate: Callable[[Exception], dict[str, Any] | None] | None = None
    items_key: str = ""

    def validate(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise BadShape(f"expected a JSON object, got {type(body).__name__}")
        if self.body_check is not None:
            self.body_check(body)

    def fetch(self, http: ProviderHTTP, request: PageRequest) -> Any:
        try:
            return super().fetch(http, request)
        except Exception as exc:
            if self.tolerate is None:
                raise
            return {"__replacement__": self.tolerate(exc)}

    def accept(self, request: PageRequest, body: Any) -> list[PageRequest]:
        if "__replacement__" in body:
            body = body["__replacement__"]
        self.pages[request.order] = [] if body is None else [body]
        return []


@dataclass
class Progress:
    """An ``on_page`` callback for :func:`crawl` when each page is one of ``total`` known
    units (OneSignal's one view per segment): logs ``done/total`` every ``every_seconds``
    and once at the end, so a long snapshot shows how far it is."""

    label: str
    total: int
    log: Any = None
    every_seconds: float = 10.0
    done: int = 0
    last: float = field(default_factory=time.monotonic)

    def __call__(self, pages: int) -> None:
        self.done += pages
        now = time.monotonic()
        if self.log is not None and (
            self.done >= self.total or now - self.last >= self.every_seconds
        ):
            self.last = now
            self.log.info(f"{self.label}: {self.done}/{self.total} segments")


def crawl(
    http: ProviderHTTP,
    strategies: Iterable[Strategy],
    max_workers: int,
    on_page: Callable[[int], None] | None = None,
) -> None:
    """Fetch every page of every strategy with at most ``max_workers`` requests in flight.

    Any failure cancels what is still queued and is raised: a crawl either completes or
    raises, so a partial snapshot is never returned.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix=http.provider)
    running: dict[Future, tuple[Strategy, PageRequest]] = {}

    def submit(strategy: Strategy, request: PageRequest) -> None:
        running[pool.submit(strategy.fetch, http, request)] = (strategy, request)

    try:
        # The first request goes alone: if the credentials are refused, that is the only
        # request made; once it succeeds, everything else fans out.
        waiting = list(strategies)
        if waiting:
            submit(waiting[0], waiting[0].first())
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                strategy, request = running.pop(future)
                body = future.result()  # raises the request's error
                for follow in strategy.accept(request, body):
                    submit(strategy, follow)
                for other in waiting[1:]:
                    submit(other, other.first())
                waiting = []
                if on_page is not None:
                    on_page(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
