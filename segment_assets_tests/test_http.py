"""The one HTTP layer, against the emulator over a real socket."""

from __future__ import annotations

import dataclasses
import email.utils
import threading
import time

import pytest

from segment_assets.emulator import DEMO_ONESIGNAL_APPS, DEMO_USERCOM_KEY
from segment_assets.providers import onesignal, usercom
from segment_assets.providers.answers import retry_after
from segment_assets.providers.http import (
    ProviderAuthError,
    ProviderHTTP,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderUnavailableError,
    RateLimiter,
    RetrySettings,
    UnsafeURLError,
    validate_base_url,
)

from .dripping_server import DrippingServer

FAST = RetrySettings(max_retries=3, backoff_factor=0.01, backoff_jitter=0.01, read_timeout=2)
EMPTY_USERCOM_PAGE = b'{"count": 0, "next": null, "previous": null, "results": []}'


def client(emu, **kw) -> ProviderHTTP:
    """A User.com client of the emulator's demo app with a short retry budget."""
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
    from segment_assets.providers.pagination import NextLinkStrategy

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


def test_a_body_dripped_a_byte_at_a_time_is_cut_off_at_the_deadline_then_retried():
    # each byte comes well within the read timeout, so only a total deadline can stop it:
    # the server would take 12 s per answer
    retry = RetrySettings(max_retries=1, backoff_factor=0.01, read_timeout=0.5, deadline=0.8)
    with DrippingServer(EMPTY_USERCOM_PAGE, interval=0.2) as server:
        with ProviderHTTP("usercom", server.url + "/api/public", {}, retry=retry) as http:
            started = time.monotonic()
            with pytest.raises(ProviderUnavailableError) as info:
                http.get_json("/segments/")
            wall = time.monotonic() - started
        assert server.seconds_to_send == pytest.approx(12, abs=0.5)
        assert server.requests == ["/api/public/segments/"] * 2  # a timeout, so retried
    assert (
        "usercom GET /segments/: gave up after 2 attempts; last problem: timed out: no "
        "complete answer within the 0.8s deadline (request_deadline_seconds)"
    ) in str(info.value)
    assert 1.6 <= wall < 2.6


def test_a_slow_body_that_arrives_within_the_deadline_is_read():
    # 0.6 s in all, longer than the 0.3 s read timeout, but never 0.3 s without a byte
    with DrippingServer(b'{"ok": true}', interval=0.05) as server:
        retry = RetrySettings(read_timeout=0.3, deadline=3)
        with ProviderHTTP("usercom", server.url, {}, retry=retry) as http:
            assert http.get_json("/anything") == {"ok": True}
        assert len(server.requests) == 1


def test_a_compressed_answer_read_in_pieces_is_decompressed():
    page = b'{"count": 1, "next": null, "previous": null, "results": [{"id": 7}]}'
    with (
        DrippingServer(page, interval=0.001, gzip=True) as server,
        ProviderHTTP("usercom", server.url, {}, retry=FAST) as http,
    ):
        assert http.get_json("/segments/")["results"] == [{"id": 7}]


def test_a_400_about_the_authorization_header_asks_to_check_the_key(emulator):
    app, key = next(iter(DEMO_ONESIGNAL_APPS.items()))
    emulator.state.set_faults("onesignal", fail_next=["400-auth"])
    hint = "Check ONESIGNAL_API_KEY and ONESIGNAL_APP_ID"
    with ProviderHTTP(
        "onesignal", emulator.base_url("onesignal"), onesignal.headers(key), auth_hint=hint
    ) as http:
        with pytest.raises(ProviderAuthError) as info:
            http.get_json(f"/apps/{app}/segments")
        assert http.stats["requests"] == 1  # never retried
        # a 400 about something else stays a rejected request, without the key hint
        with pytest.raises(ProviderRequestError) as other:
            http.get_json(f"/apps/{app}/segments", {"limit": 999})
    message = str(info.value)
    assert message.startswith(f"onesignal GET /apps/{app}/segments HTTP 400: credentials refused")
    assert "Authorization: Key" in message and message.endswith(hint)
    assert "limit must be between 1 and 300" in str(other.value)
    assert hint not in str(other.value) and not isinstance(other.value, ProviderAuthError)


def test_429s_in_a_row_slow_the_client_down_without_using_up_its_retries(emulator):
    # twelve 429s (Retry-After: 0) for a client allowed three retries
    emulator.state.set_faults("usercom", fail_next=["429-now"] * 12)
    with client(emulator, max_rps=500) as http:
        assert http.get_json("/segments/")["results"]
    assert http.stats["rate_limited"] == 12
    assert emulator.state.stats()["usercom"]["429"] == 12
    assert http.limiter.rate < 500 * 0.1  # each 429 lowered the pace; one success barely


def test_a_provider_that_keeps_answering_429_ends_only_at_the_accounts_time_budget(emulator):
    emulator.state.set_faults("usercom", fail_always="429-now")
    budget = dataclasses.replace(FAST, rate_limit_budget=0.5)
    names = {"rate_limit_budget_seconds": "acme.rate_limit_budget_seconds in accounts.yaml"}
    started = time.monotonic()
    with (
        client(
            emulator, max_rps=500, retry=budget, account="User.com acme", settings=names
        ) as http,
        pytest.raises(ProviderRateLimitedError) as info,
    ):
        http.get_json("/segments/")
    wall = time.monotonic() - started
    message = str(info.value)
    assert message.startswith("usercom GET /segments/ HTTP 429: User.com acme has been rate ")
    assert "of its 0.5s budget" in message
    assert "Raise acme.rate_limit_budget_seconds in accounts.yaml to wait longer" in message
    assert emulator.state.stats()["usercom"]["429"] > 7  # far past the ordinary retries
    assert 0.3 < wall < 1.5


def test_each_429_lowers_the_pace_once_per_wave_and_successes_bring_it_back_slowly():
    limiter = RateLimiter(10)
    before = time.monotonic()
    assert limiter.slow_down(sent_at=time.monotonic()) == pytest.approx(7)
    # another 429 for a request sent before that slow-down tells nothing new
    assert limiter.slow_down(sent_at=before) == pytest.approx(7)
    assert limiter.slow_down(sent_at=time.monotonic()) == pytest.approx(4.9)
    limiter.recover()
    assert limiter.rate == pytest.approx(4.9 + 0.2)  # 2 % of the configured pace a success
    for _ in range(100):
        limiter.recover()
    # back up to just under the pace that drew the 429s, never above the configured one
    assert limiter.rate == pytest.approx(10 * 0.97**2)
    for _ in range(100):
        limiter.slow_down(sent_at=time.monotonic())
    assert limiter.rate == pytest.approx(10 * 0.05)  # the floor


def test_an_unpaced_client_starts_pacing_at_the_rate_it_was_refused_at():
    limiter = RateLimiter(None)
    for _ in range(5):
        limiter.acquire()
        time.sleep(0.01)
    rate = limiter.slow_down(sent_at=time.monotonic())
    assert rate is not None and 30 < rate < 100 * 0.7  # about 0.7 × the ~90 req/s observed
