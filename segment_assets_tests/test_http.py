"""The one HTTP layer, against the emulator over a real socket."""

from __future__ import annotations

import email.utils
import threading
import time

import pytest

from segment_assets.answers import retry_after
from segment_assets.emulator import DEMO_USERCOM_KEY
from segment_assets.http import (
    ProviderHTTP,
    ProviderRequestError,
    ProviderUnavailableError,
    RateLimiter,
    RetrySettings,
    UnsafeURLError,
    validate_base_url,
)
from segment_assets.providers import usercom

FAST = RetrySettings(max_retries=3, backoff_factor=0.01, backoff_jitter=0.01, read_timeout=2)


def client(emu, **kw) -> ProviderHTTP:
    kw.setdefault("retry", FAST)
    return ProviderHTTP(
        "usercom",
        emu.base_url("usercom", "demo"),
        usercom.headers(DEMO_USERCOM_KEY),
        secrets=[DEMO_USERCOM_KEY],
        **kw,
    )


def test_a_transient_503_with_an_html_body_is_retried_to_success(emulator):
    emulator.state.set_faults("usercom", fail_next=["503-html", "503-empty"])
    with client(emulator) as http:
        body = http.get_json("/segments/")
        assert body["results"]
        assert http.stats["retries"] == 2


def test_retry_after_as_an_http_date_is_honoured(emulator):
    emulator.state.set_faults("usercom", fail_next=["429-date"])
    with client(emulator) as http:
        started = time.monotonic()
        http.get_json("/segments/")
        waited = time.monotonic() - started
    assert waited >= 0.5  # the emulator asks for about one to two seconds
    assert http.stats["rate_limited"] == 1


def test_a_persistent_fault_gives_up_with_provider_endpoint_status_and_message(emulator):
    emulator.state.set_faults("usercom", fail_always="503-html")
    with client(emulator) as http, pytest.raises(ProviderUnavailableError) as info:
        http.get_json("/segments/")
    message = str(info.value)
    assert message.startswith("usercom GET /segments/ HTTP 503: gave up after 4 attempts")
    assert "<" not in message  # HTML reduced to its words
    assert DEMO_USERCOM_KEY not in message


def test_a_body_of_the_wrong_shape_is_retried_then_reported(emulator):
    from segment_assets.pagination import NextLinkStrategy

    emulator.state.set_faults("usercom", fail_always="wrong-shape")
    strategy = NextLinkStrategy(path="/segments/", items_key="results")
    with client(emulator) as http, pytest.raises(Exception, match="missing list 'results'"):
        http.get_json("/segments/", validate=strategy.validate)


def test_other_client_errors_are_not_retried(emulator):
    with client(emulator) as http, pytest.raises(ProviderRequestError) as info:
        http.get_json("/segments/", {"page": 999})
    assert "HTTP 404" in str(info.value) and "Invalid page" in str(info.value)
    assert http.stats["requests"] == 1


def test_links_to_another_host_are_refused_before_sending_anything(emulator):
    with client(emulator) as http, pytest.raises(UnsafeURLError, match="foreign.invalid"):
        http.get_json("http://foreign.invalid/api/public/segments/?page=2")
    assert http.stats["requests"] == 0


def test_the_limiter_spaces_calls_across_threads():
    limiter = RateLimiter(50)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(5):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert len(stamps) == 20
    # the i-th call never starts before the i-th 20 ms slot, whatever the threads do
    for i, stamp in enumerate(stamps):
        assert stamp - stamps[0] >= i * 0.02 - 0.002


def test_a_pause_holds_every_caller():
    limiter = RateLimiter(None)
    limiter.pause(0.3)
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.25


def test_retry_after_is_read_in_seconds_or_as_an_http_date_and_capped():
    assert retry_after("3600", cap=5) == 5
    assert retry_after("2", cap=5) == 2
    future = email.utils.formatdate(time.time() + 2, usegmt=True)
    assert 0 < retry_after(future, cap=5) <= 2.5
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_after(past, cap=5) == 0
    # unreadable or absent: the caller backs off instead
    assert retry_after("soon", cap=5) is None
    assert retry_after(None, cap=5) is None


@pytest.mark.parametrize("bad", ["", "api.onesignal.com", "ftp://x", "https://", "https://x?y=1"])
def test_a_malformed_base_url_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="ONESIGNAL_BASE_URL"):
        validate_base_url(bad, "ONESIGNAL_BASE_URL")
