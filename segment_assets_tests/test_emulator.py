"""The local provider emulator, exercised over real sockets."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import socket
import threading
import time

import pytest
import requests

from segment_assets.emulator import (
    DEMO_ACTIONHUB_KEY,
    DEMO_ONESIGNAL_APPS,
    DEMO_USERCOM_KEY,
    ActionHubProgram,
    EmulatorConfig,
    EmulatorServer,
    OneSignalApp,
    UserComApp,
)

DAY = dt.date(2026, 11, 20)
PAGED_KEY = "p" * 64
OS_APP, OS_KEY = next(iter(DEMO_ONESIGNAL_APPS.items()))
OS_APP_2, OS_KEY_2 = list(DEMO_ONESIGNAL_APPS.items())[1]
BIG_APP, BIG_KEY = "0b5e7a1c-2f3d-4e6a-8b9c-1d2e3f4a5b6c", "os_v2_app_bigappkeyfortests"
AH_HEADERS = {"actionhub-key": DEMO_ACTIONHUB_KEY, "program-id": "demo-program"}
UC_HEADERS = {"Authorization": f"Token {DEMO_USERCOM_KEY}", "Accept": "*/*; version=2"}
OS_HEADERS = {"Authorization": f"Key {OS_KEY}"}
SECRETS = (DEMO_ACTIONHUB_KEY, DEMO_USERCOM_KEY, PAGED_KEY, OS_KEY, OS_KEY_2, BIG_KEY)


def _config(**kw) -> EmulatorConfig:
    cfg = EmulatorConfig(today=DAY, **kw)
    cfg.usercom.append(UserComApp("paged", PAGED_KEY, n_segments=203, page_size=20))
    cfg.onesignal.append(OneSignalApp(BIG_APP, BIG_KEY, n_segments=320, n_user_based=3))
    return cfg


@pytest.fixture(scope="module")
def server():
    with EmulatorServer(_config()) as emu:
        yield emu


@pytest.fixture
def emu(server):
    server.state.clear_faults()
    server.state.clear_changes()
    server.state.set_view_rate_limit(None)
    server.state.set_date(DAY)
    server.state.reset_stats()
    yield server
    server.state.clear_faults()


@pytest.fixture
def http():
    with requests.Session() as s:
        yield s


def ah_get(http, emu, **params):
    return http.get(f"{emu.base_url('actionhub')}/segments", headers=AH_HEADERS, params=params)


def uc_get(http, emu, app="demo", headers=UC_HEADERS, **params):
    return http.get(f"{emu.base_url('usercom', app)}/segments/", headers=headers, params=params)


def os_list(http, emu, app=OS_APP, key=OS_KEY, **params):
    url = f"{emu.base_url('onesignal')}/apps/{app}/segments"
    return http.get(url, headers={"Authorization": f"Key {key}"}, params=params)


def os_view(http, emu, segment_id, app=OS_APP, key=OS_KEY, detail=False, **kw):
    url = f"{emu.base_url('onesignal')}/apps/{app}/segments/{segment_id}"
    params = {"include-segment-detail": "true"} if detail else {}
    return http.get(url, headers={"Authorization": f"Key {key}"}, params=params, **kw)


def assert_no_secret(resp: requests.Response) -> None:
    text = resp.content.decode(errors="replace") + json.dumps(dict(resp.headers))
    for secret in SECRETS:
        assert secret not in text


def ah_key(item: dict) -> tuple:
    return (
        item["segment_type"],
        item["segment_basis"],
        item["segment_basis_id"],
        item["action_type"],
    )


def ah_collect(http, emu, size=7, min_weight=0.5) -> list[dict]:
    items = []
    for segment_type in ("growth", "base", "discovery"):
        for basis in ("labels", "assets"):
            page = 1
            while True:
                body = ah_get(
                    http, emu, segment_type=segment_type, segment_basis=basis,
                    page=page, size=size, min_weight=min_weight,
                ).json()  # fmt: skip
                items.extend(body["items"])
                if page * size >= body["total"]:
                    break
                page += 1
    return items


def uc_collect(http, emu, app="paged", headers=None) -> list[dict]:
    headers = headers or {"Authorization": f"Token {PAGED_KEY}", "Accept": "*/*; version=2"}
    url, results = f"{emu.base_url('usercom', app)}/segments/", []
    while url:
        body = http.get(url, headers=headers).json()
        results.extend(body["results"])
        url = body["next"]
    return results


def os_collect(http, emu, app=BIG_APP, key=BIG_KEY, limit=300) -> tuple[list[dict], int]:
    rows, offset = [], 0
    while True:
        body = os_list(http, emu, app=app, key=key, offset=offset, limit=limit).json()
        rows.extend(body["segments"])
        offset += len(body["segments"])
        if not body["segments"] or offset >= body["total_count"]:
            return rows, body["total_count"]


# -- basics -------------------------------------------------------------------------------
def test_urls_and_unknown_path(emu, http):
    assert emu.url.startswith("http://127.0.0.1:")
    assert emu.base_url("actionhub") == emu.url + "/actionhub"
    assert emu.base_url("usercom", "demo") == emu.url + "/usercom/demo/api/public"
    assert emu.base_url("onesignal") == emu.url + "/onesignal"
    assert http.get(emu.url + "/nope").status_code == 404
    assert http.get(emu.url + "/usercom/demo/api/public/other/").status_code == 404


def test_start_stop_many_and_socket_closed():
    for _ in range(5):
        emu = EmulatorServer(EmulatorConfig(today=DAY)).start()
        port = emu.port
        with requests.Session() as s:
            assert s.get(emu.url + "/_emulator/health").status_code == 200
            emu.stop()
            with pytest.raises(requests.ConnectionError):
                s.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=2)
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass


# -- auth ---------------------------------------------------------------------------------
def test_actionhub_auth_errors(emu, http):
    url = f"{emu.base_url('actionhub')}/segments"
    cases = [
        ({}, 403),
        ({"actionhub-key": "wrong", "program-id": "demo-program"}, 403),
        ({"actionhub-key": DEMO_ACTIONHUB_KEY, "program-id": "someone-else"}, 403),
    ]
    for headers, status in cases:
        r = http.get(url, headers=headers)
        assert (r.status_code, r.json()) == (status, {"detail": "Could not validate API KEY"})
        assert_no_secret(r)
    r = http.get(url, headers={"actionhub-key": DEMO_ACTIONHUB_KEY})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["header", "program-id"]
    r = http.get(url, headers={**AH_HEADERS, "program-id": "demo-program-2", "api-version": "1.0"})
    assert r.status_code == 200


def test_actionhub_validation_errors(emu, http):
    r = ah_get(http, emu, segment_type="weird", page=0, size=101, min_weight="x")
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["detail"]]
    assert locs == [["query", n] for n in ("segment_type", "min_weight", "page", "size")]
    assert all({"loc", "msg", "type"} <= set(e) for e in r.json()["detail"])


def test_usercom_auth_errors(emu, http):
    r = uc_get(http, emu, headers={})
    assert r.status_code == 401
    assert r.json() == {"detail": "Authentication credentials were not provided."}
    r = uc_get(http, emu, headers={"Authorization": "Token " + "x" * 64})
    assert (r.status_code, r.json()) == (401, {"detail": "Invalid token."})
    r = uc_get(http, emu, app="paged")  # the demo key does not open another app
    assert (r.status_code, r.json()) == (401, {"detail": "Invalid token."})
    assert_no_secret(r)
    r = http.get(f"{emu.base_url('usercom')}/segments", headers=UC_HEADERS, allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"].endswith("/segments/")


def test_onesignal_auth_errors(emu, http):
    url = f"{emu.base_url('onesignal')}/apps/{OS_APP}/segments"
    r = http.get(url)
    assert r.status_code == 400
    assert r.json() == {"errors": ["Please include a case-sensitive header of Authorization"]}
    denied = {
        "errors": [
            "Access denied.  Please include an 'Authorization: Key ...' header with a valid API key"
        ],
        "success": False,
    }
    for auth in ("Key wrong", f"Basic {OS_KEY}", f"Key {OS_KEY_2}"):
        r = http.get(url, headers={"Authorization": auth})
        assert (r.status_code, r.json()) == (403, denied)
        assert_no_secret(r)


# -- pagination reaches every item exactly once --------------------------------------------
def test_actionhub_pagination_matches_truth(emu, http):
    items = ah_collect(http, emu, size=7)
    truth = emu.state.truth("actionhub", "demo-program", min_weight=0.5)
    assert len(items) == len(truth) == 6 * 40
    assert len({ah_key(i) for i in items}) == len(items)
    assert sorted(items, key=ah_key) == sorted(truth, key=ah_key)
    first = items[0]
    assert first["segment_basis_id"] == "lbl-0" and first["action_type"] == "view"
    assert items[4]["segment_basis_id"] == "lbl-1" and items[4]["action_type"] == "purchase"
    assert isinstance(first["user_count"], int) and first["min_weight"] == 0.5
    beyond = ah_get(http, emu, page=99).json()
    assert beyond["items"] == [] and beyond["total"] == 40


def test_actionhub_min_weight_shrinks_counts(emu, http):
    low = {ah_key(i): i for i in emu.state.truth("actionhub", "demo-program", min_weight=0.3)}
    high = {ah_key(i): i for i in emu.state.truth("actionhub", "demo-program", min_weight=0.8)}
    assert low.keys() == high.keys()
    assert all(high[k]["user_count"] <= low[k]["user_count"] for k in low)
    assert sum(i["user_count"] for i in high.values()) < sum(i["user_count"] for i in low.values())
    assert all(i["strength"] >= 0.8 for i in high.values())


def test_usercom_pagination_matches_truth(emu, http):
    results = uc_collect(http, emu)
    truth = emu.state.truth("usercom", "paged")
    assert len(results) == 203 and len({r["id"] for r in results}) == 203
    assert results == truth
    first = uc_get(http, emu, app="paged", headers={"Authorization": f"Token {PAGED_KEY}"}).json()
    assert first["count"] == 203 and first["previous"] is None
    assert first["next"] == f"{emu.base_url('usercom', 'paged')}/segments/?page=2"
    assert uc_get(http, emu, page=9).status_code == 404


def test_onesignal_pagination_matches_truth(emu, http):
    rows, total = os_collect(http, emu, limit=300)
    assert total == 320 and len(rows) == 320 and len({r["id"] for r in rows}) == 320
    rows7, _ = os_collect(http, emu, limit=7)
    assert rows7 == rows
    stamps = [r["created_at"] for r in rows]
    assert stamps == sorted(stamps)
    truth = emu.state.truth("onesignal", BIG_APP)
    assert len(truth) == 319  # one deleted segment is listed but 404s on view
    assert {t["id"] for t in truth} < {r["id"] for r in rows}
    assert sum(t["user_based"] for t in truth) == 3
    assert all((t["subscriber_count"] is None) == t["user_based"] for t in truth)
    assert os_list(http, emu, limit=301).status_code == 400


def test_onesignal_view_special_segments(emu, http):
    truth = {t["id"]: t for t in emu.state.truth("onesignal", OS_APP)}
    listed = [r["id"] for r in os_collect(http, emu, app=OS_APP, key=OS_KEY)[0]]
    deleted = [i for i in listed if i not in truth]
    assert len(deleted) == 1
    r = os_view(http, emu, deleted[0])
    assert (r.status_code, r.json()) == (404, {"errors": ["segment not found"]})
    assert os_view(http, emu, "00000000-0000-4000-8000-000000000000").status_code == 404
    user_based = next(t for t in truth.values() if t["user_based"])
    r = os_view(http, emu, user_based["id"])
    assert r.status_code == 400 and "User-based segments" in r.json()["errors"][0]
    assert any(f.get("unsupported_in_api") for f in user_based["filters"])
    normal = next(t for t in truth.values() if not t["user_based"])
    assert os_view(http, emu, normal["id"]).json() == {
        "subscriber_count": normal["subscriber_count"]
    }
    body = os_view(http, emu, normal["id"], detail=True).json()
    assert body["payload"]["id"] == normal["id"] and body["payload"]["filters"] == normal["filters"]
    assert body["payload"]["source"] in ("default", "custom", "quickstart")


# -- the count model ----------------------------------------------------------------------
def test_counts_follow_the_clock_and_are_deterministic(emu, http):
    first = ah_get(http, emu, size=100).json()["items"]
    emu.state.set_date(DAY + dt.timedelta(days=1))
    nxt = ah_get(http, emu, size=100).json()["items"]
    assert [i["user_count"] for i in first] != [i["user_count"] for i in nxt]
    emu.state.set_date(DAY)
    assert ah_get(http, emu, size=100).json()["items"] == first
    with EmulatorServer(_config()) as other:
        for provider, account in [("usercom", "demo"), ("onesignal", OS_APP)]:
            mine, theirs = emu.state.truth(provider, account), other.state.truth(provider, account)
            for row in mine + theirs:
                row.pop("users", None)  # holds the server's own address
            assert mine == theirs
    counts = [t["subscriber_count"] for t in emu.state.truth("onesignal", BIG_APP)]
    counts = [c for c in counts if c is not None]
    assert min(counts) < 50 and max(counts) > 20000


def test_usercom_cached_counts(emu, http):
    days = [DAY + dt.timedelta(days=k) for k in range(12)]
    series = {}
    for day in days:
        emu.state.set_date(day)
        for r in emu.state.truth("usercom", "paged"):
            series.setdefault(r["id"], []).append(r)
    heavy = [rows for rows in series.values() if rows[0]["too_heavy"]]
    assert heavy and all(len({r["last_counted"] for r in rows}) == 1 for rows in heavy)
    assert all(r["update_interval"] >= 30 for rows in series.values() for r in rows)
    stale_runs = 0
    for rows in series.values():
        for a, b, c in zip(rows, rows[1:], rows[2:], strict=False):
            if a["last_counted"] == b["last_counted"] == c["last_counted"]:
                assert a["object_count"] == b["object_count"] == c["object_count"]
                stale_runs += 1
    assert stale_runs > len(heavy) * 10  # some non-heavy segments also go stale for days
    assert series[next(iter(series))][0]["last_counted"].endswith("Z")


def test_plant_drop_and_removal(emu, http):
    start = DAY + dt.timedelta(days=1)
    seg = emu.state.truth("onesignal", OS_APP)[5]
    emu.state.plant_drop("onesignal", account=OS_APP, segment_id=seg["id"], start=start, factor=0.1)
    assert os_view(http, emu, seg["id"]).json()["subscriber_count"] == seg["subscriber_count"]
    emu.state.set_date(start)
    dropped = os_view(http, emu, seg["id"]).json()["subscriber_count"]
    assert dropped < seg["subscriber_count"] * 0.2

    before = {ah_key(i): i["user_count"] for i in emu.state.truth("actionhub", "demo-program")}
    emu.state.plant_drop("actionhub", "demo-program", "base/labels/lbl-2/share", start, 0.05)
    emu.state.set_date(start + dt.timedelta(days=1))
    after = {ah_key(i): i["user_count"] for i in emu.state.truth("actionhub", "demo-program")}
    key = ("base", "label", "lbl-2", "share")
    assert after[key] < before[key] * 0.1

    uc = emu.state.truth("usercom", "demo")
    emu.state.remove_segment("usercom", "demo", uc[3]["id"], start=emu.state.today)
    remaining = {r["id"] for r in uc_collect(http, emu, app="demo", headers=UC_HEADERS)}
    assert uc[3]["id"] not in remaining and len(remaining) == len(uc) - 1
    emu.state.remove_segment("onesignal", OS_APP, seg["id"])
    assert os_view(http, emu, seg["id"]).status_code == 404
    assert seg["id"] not in {t["id"] for t in emu.state.truth("onesignal", OS_APP)}
    emu.state.set_date(DAY)
    assert os_view(http, emu, seg["id"]).status_code == 200


# -- faults -------------------------------------------------------------------------------
def test_status_faults(emu, http):
    emu.state.set_faults(
        "onesignal",
        fail_next=["429", "429-date", "503-html", "503-empty", "500", "403", "401"],
    )
    r = os_list(http, emu)
    assert (r.status_code, r.headers["Retry-After"]) == (429, "1")
    assert r.json() == {"errors": ["API rate limit exceeded"]}
    r = os_list(http, emu)
    assert r.status_code == 429
    ahead = email.utils.parsedate_to_datetime(r.headers["Retry-After"]).timestamp() - time.time()
    assert 0 < ahead <= 2.5
    r = os_list(http, emu)
    assert r.status_code == 503 and "Retry-After" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")
    r = os_list(http, emu)
    assert (r.status_code, r.content, r.headers["Retry-After"]) == (503, b"", "1")
    assert os_list(http, emu).status_code == 500
    assert os_list(http, emu).status_code == 403
    assert os_list(http, emu).status_code == 401
    assert os_list(http, emu).status_code == 200  # the queue is used up


def test_redirect_reset_and_timeout_faults(emu, http):
    emu.state.set_faults("actionhub", fail_next=["redirect-foreign", "reset", "timeout"])
    emu.state.set_faults("actionhub", timeout_sleep_s=0.4)
    r = http.get(f"{emu.base_url('actionhub')}/segments", headers=AH_HEADERS, allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["Location"].startswith("http://foreign.invalid/actionhub/segments")
    with pytest.raises(requests.ConnectionError) as info:
        ah_get(http, emu)
    assert "ConnectionResetError" in repr(info.value)
    with pytest.raises(requests.ReadTimeout):
        http.get(f"{emu.base_url('actionhub')}/segments", headers=AH_HEADERS, timeout=0.15)
    assert ah_get(http, emu).status_code == 200


def test_body_faults(emu, http):
    emu.state.set_faults(
        "actionhub", fail_next=["truncated", "not-json", "wrong-shape", "bad-count"]
    )
    r = ah_get(http, emu)
    assert r.status_code == 200 and len(r.content) == int(r.headers["Content-Length"])
    with pytest.raises(ValueError):
        r.json()
    r = ah_get(http, emu)
    assert r.status_code == 200 and r.text.lstrip().startswith("<")
    assert "items" not in ah_get(http, emu).json()
    assert ah_get(http, emu).json()["items"][0]["user_count"] == "lots"
    seg = emu.state.truth("onesignal", OS_APP)[0]["id"]
    emu.state.set_faults("onesignal", fail_next=["bad-count", "wrong-shape"])
    assert os_view(http, emu, seg).json()["subscriber_count"] == "lots"
    assert "subscriber_count" not in os_view(http, emu, seg).json()


def test_fail_always_and_account_scope(emu, http):
    emu.state.set_faults("onesignal", account=OS_APP_2, fail_always="500")
    for _ in range(3):
        assert os_list(http, emu, app=OS_APP_2, key=OS_KEY_2).status_code == 500
        assert os_list(http, emu).status_code == 200
    assert http.get(emu.url + "/_emulator/stats").status_code == 200  # never faulted
    emu.state.clear_faults("onesignal")
    assert os_list(http, emu, app=OS_APP_2, key=OS_KEY_2).status_code == 200


def test_pagination_lies(emu, http):
    emu.state.set_faults("actionhub", total_drift=5, repeat_item=True, extra_field=True)
    p1 = ah_get(http, emu, size=10).json()
    p2 = ah_get(http, emu, size=10, page=2).json()
    assert (p1["total"], p2["total"]) == (35, 40)
    assert p2["items"][0] == p1["items"][-1] and "segment_version" in p1["items"][0]

    emu.state.set_faults("usercom", next_loop=True)
    headers = {"Authorization": f"Token {PAGED_KEY}"}
    last = uc_get(http, emu, app="paged", headers=headers, page=11).json()
    assert last["next"].endswith("/segments/?page=1") and last["next"].startswith(emu.url)
    emu.state.set_faults("usercom", next_loop=False, next_foreign=True)
    first = uc_get(http, emu, app="paged", headers=headers).json()
    assert first["next"].startswith("http://foreign.invalid/")

    emu.state.set_faults("onesignal", short_pages=True)
    page = os_list(http, emu, app=BIG_APP, key=BIG_KEY, limit=100).json()
    assert len(page["segments"]) == 93 and page["total_count"] == 320
    rows, _ = os_collect(http, emu, limit=100)
    assert len({r["id"] for r in rows}) == 320


def test_rate_limit_and_latency(emu, http):
    emu.state.set_faults("onesignal", rate_limit_rps=2, rate_limit_burst=1)
    assert os_list(http, emu).status_code == 200
    r = os_list(http, emu)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert os_list(http, emu, app=OS_APP_2, key=OS_KEY_2).status_code == 200  # per app
    seg = emu.state.truth("onesignal", OS_APP)[0]["id"]
    assert os_view(http, emu, seg).status_code == 200  # per endpoint
    emu.state.set_faults("usercom", rate_limit_rps=0.5, retry_after_format="http-date")
    assert uc_get(http, emu).status_code == 200
    r = uc_get(http, emu)
    assert r.status_code == 429 and email.utils.parsedate_to_datetime(r.headers["Retry-After"])
    stats = emu.state.stats()
    assert stats["onesignal"]["429"] == 1 and stats["usercom"]["429"] == 1

    emu.state.clear_faults()
    emu.state.set_view_rate_limit(1.0)
    assert os_view(http, emu, seg).status_code == 200
    assert os_view(http, emu, seg).status_code == 429

    emu.state.set_faults("actionhub", latency_ms=120)
    t0 = time.perf_counter()
    assert ah_get(http, emu).status_code == 200
    assert time.perf_counter() - t0 >= 0.12


def test_stats_and_in_flight(emu):
    emu.state.set_faults("actionhub", latency_ms=150)

    def call():
        with requests.Session() as s:
            ah_get(s, emu)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the server counts a request done after it has sent the answer the client already holds
    deadline = time.monotonic() + 2.0
    while emu.state.stats()["actionhub"]["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = emu.state.stats()["actionhub"]
    assert stats["requests"] == 4 and stats["by_endpoint"] == {"segments": 4}
    assert stats["by_account"] == {"demo-program": 4}
    assert stats["max_in_flight"] >= 2 and stats["in_flight"] == 0
    emu.state.reset_stats()
    assert emu.state.stats()["actionhub"]["requests"] == 0


def test_control_endpoints(emu, http):
    ctl = emu.url + "/_emulator"
    assert http.post(ctl + "/date", json={"date": "2026-12-01"}).json() == {"date": "2026-12-01"}
    assert emu.state.today == dt.date(2026, 12, 1)
    assert http.post(ctl + "/faults", json={"provider": "onesignal", "fail_next": ["500"]}).ok
    assert os_list(http, emu).status_code == 500
    assert http.post(ctl + "/faults", json={"provider": "nope"}).status_code == 400
    assert (
        http.post(ctl + "/faults", json={"provider": "onesignal", "fail_next": ["x"]}).status_code
        == 400
    )
    seg = emu.state.truth("onesignal", OS_APP)[1]
    drop = {"provider": "onesignal", "account": OS_APP, "segment_id": seg["id"]}
    assert http.post(ctl + "/drop", json={**drop, "start": "2026-12-01", "factor": 0.5}).ok
    truth = http.get(ctl + "/truth", params={"provider": "onesignal", "account": OS_APP}).json()
    assert truth[1]["subscriber_count"] < seg["subscriber_count"] * 0.6
    assert http.get(ctl + "/stats").json()["onesignal"]["requests"] == 1
    assert http.post(ctl + "/faults", json={"provider": "actionhub", "fail_always": "500"}).ok
    assert http.post(ctl + "/clear", json={}).ok
    assert ah_get(http, emu).status_code == 200


def test_large_actionhub_list_pages_fast():
    cfg = EmulatorConfig(today=DAY, actionhub=[ActionHubProgram("big", "big-key", 20_000)])
    with EmulatorServer(cfg) as emu, requests.Session() as http:
        headers = {"actionhub-key": "big-key", "program-id": "big"}
        url = f"{emu.base_url('actionhub')}/segments"
        seen, t0, c0 = set(), time.perf_counter(), time.process_time()
        for page in range(1, 401):
            body = http.get(url, headers=headers, params={"page": page, "size": 50}).json()
            seen.update(ah_key(i) for i in body["items"])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert len(seen) == body["total"] == 20_000
        # client and server share this process: 400 pages of both in well under 4 s of CPU
        assert cpu < 4.0 and wall < 8.0
