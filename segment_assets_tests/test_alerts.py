"""Alert messages and channels, delivered to a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from segment_assets.defs.alert_payload import (
    MAX_DROPS_PER_ALERT,
    PAYLOAD_VERSION,
    AlertPayloadError,
    DropAlert,
)
from segment_assets.defs.alert_text import SLACK_LINES
from segment_assets.defs.alerts import DropAlerts, alerts_from_env

from .drop_story import ERROR_DROP, VANISHED_DROP, drop_frame
from .webhook_receiver import free_port

PARTITION = "2026-03-14"


def drops(count: int = 1, vanished: bool = True, name: str = "Paying users") -> pd.DataFrame:
    """``count`` ERROR drops named after ``name``, and one vanished segment."""
    rows = [
        {**ERROR_DROP, "segment_id": f"seg-{i}", "segment_name": name if i == 0 else f"{name} {i}"}
        for i in range(count)
    ]
    return drop_frame(*rows, *([VANISHED_DROP] if vanished else []))


def alert(frame: pd.DataFrame) -> DropAlert:
    return DropAlert.from_drops("onesignal_segments", PARTITION, frame, "http://dagster.internal")


def test_slack_gets_a_readable_message_and_the_webhook_the_documented_payload(receiver):
    channels = DropAlerts(
        slack_webhook_url=receiver.url("/slack"), alert_webhook_url=receiver.url("/hook")
    )
    message = alert(drops())
    assert channels.channels() == ["slack", "webhook"]
    assert channels.deliver(message, "slack") is None
    assert channels.deliver(message, "webhook") is None

    [slack] = receiver.delivered("/slack")
    link = "http://dagster.internal/assets/onesignal_segments?view=partitions&partition=2026-03-14"
    assert f"<{link}|open in Dagster>" in slack["text"]
    assert "2 OneSignal segments dropped on 2026-03-14" in slack["text"]
    assert "• Paying users (seg-0): 5,400 → 510 (−90 %) ERROR" in slack["text"]
    assert "• Winter sale (old): 1,200 → gone (vanished) WARN" in slack["text"]

    [hook] = receiver.delivered("/hook")
    winter_sale = {
        "segment_id": "old",
        "segment_name": "Winter sale",
        "account": "app-1",
        "before": 1200,
        "user_count": None,
        "expected": 1200.0,
        "drop_pct": None,
        "severity": "WARN",
        "reason": "vanished: segment no longer listed (was 1,200 users)",
        "scope": "segment",
        "definition_changed_on": None,
        "dropped_on": None,  # an ordinary drop: it alerts on the day it dropped
        "vanished": True,
    }
    assert hook == {
        "version": 1,
        "kind": "drops",
        "partition": PARTITION,
        "provider": "onesignal",
        "account": "app-1",
        "account_name": None,
        "asset": "onesignal_segments",
        "url": link,
        "drop_count": 2,
        "error_count": 1,
        "truncated": False,
        "drops": [
            {
                "segment_id": "seg-0",
                "segment_name": "Paying users",
                "account": "app-1",
                "before": 5400,
                "user_count": 510,
                "expected": 5380.0,
                "drop_pct": 90.5,
                "severity": "ERROR",
                "reason": "5,400 → 510 users (−91 %) vs 5,380 expected",
                "scope": "segment",
                "definition_changed_on": None,
                "dropped_on": None,
                "vanished": False,
            },
            winter_sale,
        ],
        "incident": {
            "scope": "segment",
            "fell": 1,
            "of": 12,
            "median_drop_pct": 90.5,
            "largest": [hook["drops"][0]],
        },
        "vanished": {
            "scope": "segment",
            "count": 1,
            "of": 12,
            "users": 1200,
            "largest": [winter_sale],
        },
    }
    assert DropAlert.from_payload(hook) == message  # what a retry resends is the same alert


def test_a_big_incident_is_summarised_not_flooded(receiver):
    message = alert(drops(count=150, vanished=False, name="VIP <EU> & co"))
    payload = message.payload()
    assert len(payload["drops"]) == MAX_DROPS_PER_ALERT
    assert payload["drop_count"] == 150 and payload["truncated"] is True
    DropAlerts(slack_webhook_url=receiver.url("/slack")).deliver(message, "slack")
    [slack] = receiver.delivered("/slack")
    lines = slack["text"].splitlines()
    assert sum(line.startswith("•") for line in lines) == SLACK_LINES
    assert lines[-1] == f"… and {150 - SLACK_LINES} more"
    assert "VIP &lt;EU&gt; &amp; co" in slack["text"]  # Slack's control characters escaped


def test_failures_are_reported_without_the_webhook_url(receiver):
    message = alert(drops())
    receiver.status["/t0ken"] = 500
    broken = DropAlerts(alert_webhook_url=receiver.url("/t0ken"))
    assert broken.deliver(message, "webhook") == "HTTP 500"

    closed = DropAlerts(alert_webhook_url=f"http://127.0.0.1:{free_port()}/t0ken")
    assert closed.deliver(message, "webhook") == "ConnectionError"

    receiver.delay = 2.0
    slow = DropAlerts(alert_webhook_url=receiver.url("/slow"), read_timeout_seconds=0.2)
    started = time.monotonic()
    assert slow.deliver(message, "webhook") == "ReadTimeout"
    assert time.monotonic() - started < 1.5


def test_webhook_urls_come_from_the_environment_and_the_ui_shows_only_their_names(monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T1/B2/s3cr3t")
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("DAGSTER_WEBSERVER_URL", raising=False)
    resource = alerts_from_env()
    shown = repr(resource.get_resource_definition().config_schema.default_value)
    assert "SLACK_WEBHOOK_URL" in shown and "s3cr3t" not in shown
    ready = resource.process_config_and_initialize()
    assert ready.channels() == ["slack"]
    assert ready.webserver_url == "http://localhost:3000"

    monkeypatch.delenv("SLACK_WEBHOOK_URL")
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", "https://dagster.example.com/")
    quiet = alerts_from_env().process_config_and_initialize()
    assert quiet.channels() == []
    assert alert(drops()).url.startswith("http://dagster.internal/assets/")
    assert DropAlert.from_drops(
        "usercom_segments", PARTITION, drops(), quiet.webserver_url
    ).url.startswith("https://dagster.example.com/assets/usercom_segments?")


def test_an_alert_names_its_account_in_words_and_a_failed_account_gets_its_own(receiver):
    channels = DropAlerts(
        slack_webhook_url=receiver.url("/slack"), alert_webhook_url=receiver.url("/hook")
    )
    named = DropAlert.from_drops(
        "onesignal_segments", PARTITION, drops(vanished=False), "http://d", "Mobile app"
    )
    failed = DropAlert.snapshot_failed(
        "onesignal_segments",
        PARTITION,
        "app-2",
        "onesignal GET /apps/app-2/segments HTTP 403: credentials refused. Check OS_KEY",
        "http://d",
        "Web app",
    )
    assert named.key != failed.key  # delivered and retried apart
    for message in (named, failed):
        for channel in channels.channels():
            assert channels.deliver(message, channel) is None

    first, second = receiver.delivered("/slack")
    assert (
        "1 OneSignal segment dropped on 2026-03-14 in Mobile app (app-1, 1 ERROR)" in first["text"]
    )
    assert (
        "OneSignal Web app (app-2) could not be snapshotted for 2026-03-14; the other accounts "
        "were stored" in second["text"]
    )
    assert "HTTP 403: credentials refused. Check OS_KEY" in second["text"]
    hooks = receiver.delivered("/hook")
    assert [h["kind"] for h in hooks] == ["drops", "snapshot_failed"]
    assert hooks[0]["account_name"] == "Mobile app"
    assert hooks[1]["account"] == "app-2"
    assert hooks[1]["error"].endswith("Check OS_KEY")
    assert (hooks[1]["drop_count"], hooks[1]["drops"]) == (0, [])
    assert DropAlert.from_payload(hooks[1]) == failed


def test_a_payload_of_another_version_is_refused_not_misread():
    message = alert(drops())
    payload = message.payload()
    assert payload["version"] == PAYLOAD_VERSION == 1

    later = {**payload, "version": 2, "drops": {"ERROR": payload["drops"]}}
    with pytest.raises(AlertPayloadError, match="has version 2, and this code reads version 1"):
        DropAlert.from_payload(later)
    unversioned = {k: v for k, v in payload.items() if k != "version"}
    with pytest.raises(AlertPayloadError, match="has no version"):
        DropAlert.from_payload(unversioned)
    cut = {k: v for k, v in payload.items() if k not in ("drop_count", "url")}
    with pytest.raises(AlertPayloadError, match="version 1 alert payload lacks url, drop_count"):
        DropAlert.from_payload(cut)
    with pytest.raises(AlertPayloadError, match="unknown kind 'rises'"):
        DropAlert.from_payload({**payload, "kind": "rises"})


def test_a_version_1_payload_with_fields_added_later_or_from_before_kind_still_reads():
    message = alert(drops())
    payload = message.payload()
    assert DropAlert.from_payload({**payload, "runbook": "https://wiki/drops"}) == message
    # The first version-1 payloads had neither ``kind`` nor ``account_name``.
    first = {k: v for k, v in payload.items() if k not in ("kind", "account_name")}
    assert DropAlert.from_payload(first) == message


def test_the_readme_example_payload_has_the_fields_a_real_alert_sends(receiver):
    """The README's JSON example of a drops alert names the fields a real alert delivers:
    the same top-level fields, the same fields per drop, in `incident` and in `vanished`."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [example] = [
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)```", readme, re.S)
        if '"kind": "drops"' in block
    ]
    channels = DropAlerts(alert_webhook_url=receiver.url("/hook"))
    assert channels.deliver(alert(drops()), "webhook") is None
    [sent] = receiver.delivered("/hook")
    assert set(example) == set(sent)
    assert {frozenset(d) for d in example["drops"]} == {frozenset(d) for d in sent["drops"]}
    for part in ("incident", "vanished"):
        assert set(example[part]) == set(sent[part]), part
