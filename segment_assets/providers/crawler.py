"""The concurrent driver of a provider's requests: :func:`crawl` reads lists page by page,
:func:`map_requests` runs one call per item (OneSignal's view of each segment).

Both bound one account's requests in flight (``max_workers``, its ``max_concurrency``) with
a :class:`~segment_assets.providers.scheduler.Pool` of the provider step's
:mod:`~segment_assets.providers.scheduler`, so a request waiting for its turn costs no
thread; called alone, each runs in a scheduler of its own. Both send their first request
alone: if the credentials are refused, that is the only request made; once it succeeds,
the rest fan out. Both fail as a whole: any failure cancels what is still queued, waits for
what has started, and is raised, so a partial snapshot is never returned.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from segment_assets.providers import scheduler
from segment_assets.providers.errors import ProviderPaginationError
from segment_assets.providers.pagination import PageProblem, PageRequest, Strategy, TooManyPages

if TYPE_CHECKING:
    from segment_assets.providers.http import ProviderHTTP

T = TypeVar("T")


@dataclass
class Progress:
    """An ``on_done`` callback for :func:`map_requests` when each call is one of ``total``
    segments: logs ``done/total`` every ``every_seconds`` and once at the end, so a long
    snapshot shows how far it is."""

    label: str
    total: int
    log: Any = None
    every_seconds: float = 10.0
    done: int = 0
    last: float = field(default_factory=time.monotonic)

    def __call__(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.log is not None and (
            self.done >= self.total or now - self.last >= self.every_seconds
        ):
            self.last = now
            self.log.info(f"{self.label}: {self.done}/{self.total} segments")


def map_requests(
    http: ProviderHTTP,
    calls: Sequence[Callable[[], T]],
    max_workers: int,
    on_done: Callable[[], None] | None = None,
) -> list[T]:
    """Run every call (each makes its requests through ``http``) with at most
    ``max_workers`` of them in flight; their results in order, ``on_done()`` after each.

    The first call goes alone; any error is raised once the calls already started end,
    and the calls not yet started never run.
    """
    calls = list(calls)
    if scheduler.current() is None:  # called alone: a scheduler of its own
        call = partial(map_requests, http, calls, max_workers, on_done)
        return scheduler.run(call, workers=max(1, max_workers), name=http.provider)
    pool = scheduler.Pool(max_workers)
    results: list[Any] = [None] * len(calls)
    running: dict[asyncio.Task[Any], int] = {}
    queued = range(1, len(calls))
    try:
        if calls:
            running[pool.submit(calls[0])] = 0
        while running:
            for task in scheduler.first_completed(running):
                results[running.pop(task)] = task.result()  # raises the call's error
                for index in queued:
                    running[pool.submit(calls[index])] = index
                queued = range(0)
                if on_done is not None:
                    on_done()
    finally:
        pool.shutdown()  # cancels what has not started, waits for what has
    return results


def crawl(http: ProviderHTTP, strategies: Iterable[Strategy], max_workers: int) -> None:
    """Fetch every page of every strategy with at most ``max_workers`` requests in flight.

    Independent lists (and the remaining pages of a list whose size is known) are fetched
    side by side. A list that would run past the page cap, or contradicts itself, raises
    :class:`ProviderPaginationError`.
    """
    strategies = list(strategies)
    if scheduler.current() is None:  # called alone: a scheduler of its own
        call = partial(crawl, http, strategies, max_workers)
        scheduler.run(call, workers=max(1, max_workers), name=http.provider)
        return
    pool = scheduler.Pool(max_workers)
    running: dict[asyncio.Task[Any], tuple[Strategy, PageRequest]] = {}
    for strategy in strategies:
        if strategy.max_pages is None:
            strategy.max_pages = http.max_pages

    def submit(strategy: Strategy, request: PageRequest) -> None:
        running[pool.submit(strategy.fetch, http, request)] = (strategy, request)

    def follow(strategy: Strategy, request: PageRequest, body: Any) -> None:
        try:
            follows = strategy.accept(request, body)
            if strategy.requested + len(follows) > (strategy.max_pages or math.inf):
                raise TooManyPages(f"it goes on past {strategy.max_pages:,} pages")
        except PageProblem as exc:
            hint = ""
            if isinstance(exc, TooManyPages):
                hint = f". Raise {http.setting('max_pages')} if the list really is that long"
            raise http.error(
                ProviderPaginationError,
                http.endpoint(http.url_for(strategy.path)),
                f"{strategy.label or 'the list'}: {exc}{hint}",
            ) from None
        strategy.requested += len(follows)
        for request in follows:
            submit(strategy, request)

    try:
        waiting = strategies
        if waiting:
            submit(waiting[0], waiting[0].first())
        while running:
            for task in scheduler.first_completed(running):
                strategy, request = running.pop(task)
                follow(strategy, request, task.result())  # raises the request's error
                for other in waiting[1:]:
                    submit(other, other.first())
                waiting = []
    finally:
        pool.shutdown()  # cancels what has not started, waits for what has
