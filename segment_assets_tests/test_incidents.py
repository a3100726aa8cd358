"""Account-wide incidents: when most segments of one account fall (or vanish) on the same
day, the team reads one line about the account, not a wall of segment lines."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from segment_assets.defs.alert_payload import DropAlert
from segment_assets.defs.alert_text import alert_lines, log_text, slack_message
from segment_assets.defs.assets import segment_drops
from segment_assets.defs.checks import check_result
from segment_assets.defs.drops import DROPS_TABLE, flag_drops
from segment_assets.detection.incidents import AccountWide, mark_scope
from segment_assets.store import SegmentStore

from .drop_story import ERROR_DROP, VANISHED_DROP, drop_frame
from .incident_story import GONE, TABLE, write_day, write_days

DAY = dt.date(2026, 3, 14)
BROKEN, STEADY, SHRUNK = "broken-app", "steady-app", "shrunk-app"


def sizes(**judged: tuple[int, int]) -> pd.DataFrame:
    """account → (segments judged that day, segments listed the snapshot before)."""
    return pd.DataFrame(
        {
            "provider": "onesignal",
            "account": list(judged),
            "judged": [j for j, _ in judged.values()],
            "listed_before": [b for _, b in judged.values()],
        }
    )


def fell(account: str, count: int, pct: float = 90.0) -> list[dict]:
    return [
        {**ERROR_DROP, "account": account, "segment_id": f"{account}-{i}", "drop_pct": pct}
        for i in range(count)
    ]


def gone(account: str, count: int) -> list[dict]:
    return [
        {**VANISHED_DROP, "account": account, "segment_id": f"{account}-v{i}"} for i in range(count)
    ]


def scopes(marked: pd.DataFrame) -> dict[str, set[str]]:
    return {a: set(rows["scope"]) for a, rows in marked.groupby("account")}


def test_an_account_is_account_wide_when_half_its_judged_segments_and_three_fall_together():
    drops = drop_frame(*fell("a", 4), *fell("b", 3), *fell("c", 2), *fell("d", 1))
    marked = mark_scope(drops, sizes(a=(8, 8), b=(7, 7), c=(3, 3), d=(1, 1)))
    # 4 of 8 is half; 3 of 7 is not; 2 of 3 are too few; so is a single segment of one
    assert scopes(marked) == {
        "a": {"account"},
        "b": {"segment"},
        "c": {"segment"},
        "d": {"segment"},
    }
    assert marked.groupby("account")["account_segments"].first().to_dict() == {
        "a": 8, "b": 7, "c": 3, "d": 1,
    }  # fmt: skip


def test_each_account_may_have_its_own_rule():
    drops = drop_frame(*fell("a", 2), *fell("b", 2))
    rules = {"a": AccountWide(0.2, 2), "b": AccountWide()}
    marked = mark_scope(drops, sizes(a=(10, 10), b=(2, 2)), lambda _p, a: rules[a])
    assert scopes(marked) == {"a": {"account"}, "b": {"segment"}}
    with pytest.raises(ValueError, match="account_wide_share must be above 0 and at most 1"):
        AccountWide(account_wide_share=1.5)
    with pytest.raises(ValueError, match="account_wide_min_segments must be at least 1"):
        AccountWide(account_wide_min_segments=0)


def test_segments_vanishing_together_are_counted_apart_from_those_that_fell():
    drops = drop_frame(*fell("a", 1), *gone("a", 4))
    marked = mark_scope(drops, sizes(a=(2, 6)))
    vanished = marked["reason"].str.startswith("vanished")
    assert set(marked.loc[vanished, "scope"]) == {"account"}  # 4 of the 6 listed before
    assert set(marked.loc[~vanished, "scope"]) == {"segment"}  # 1 fell: not an incident
    assert list(marked.loc[vanished, "account_segments"].unique()) == [6]


def account_wide_alert() -> DropAlert:
    """Eight segments of an app fell together (each larger than the one before), two of its
    ten vanished, and one segment of another app fell."""
    rows = [
        {**row, "before": 1000 * (i + 1), "user_count": 100 * (i + 1), "drop_pct": 80 + i}
        for i, row in enumerate(fell(BROKEN, 8))
    ]
    frame = mark_scope(drop_frame(*rows, *gone(BROKEN, 2)), sizes(**{BROKEN: (10, 12)}))
    return DropAlert.from_drops(TABLE, DAY.isoformat(), frame, "http://dagster", "Web app")


def test_an_account_wide_incident_is_one_line_then_its_five_largest_segments():
    alert = account_wide_alert()
    text = slack_message(alert)["text"]
    lines = text.splitlines()
    assert lines[1] == "Account-wide: 8 of 10 segments fell, by a median of −84 %; the largest 5:"
    assert lines[2:7] == [
        f"• Paying users ({BROKEN}-{i}): {1000 * (i + 1):,} → {100 * (i + 1)} (−{80 + i} %) ERROR"
        for i in (7, 6, 5, 4, 3)
    ]  # the largest losses first
    assert lines[7] == "… and 3 more fell"
    # two of the twelve segments listed before vanished: not account-wide, a line each
    assert lines[8:] == [
        f"• Winter sale ({BROKEN}-v{i}): 1,200 → gone (vanished) WARN" for i in range(2)
    ]
    assert log_text(alert).count("Account-wide: 8 of 10 segments fell") == 1

    body = alert.payload()
    assert body["version"] == 1 and body["drop_count"] == 10
    assert {k: body["incident"][k] for k in ("scope", "fell", "of", "median_drop_pct")} == {
        "scope": "account",
        "fell": 8,
        "of": 10,
        "median_drop_pct": 83.5,
    }
    assert [d["segment_id"] for d in body["incident"]["largest"]] == [
        f"{BROKEN}-{i}" for i in (7, 6, 5, 4, 3)
    ]
    assert {k: body["vanished"][k] for k in ("scope", "count", "of", "users")} == {
        "scope": "segment",
        "count": 2,
        "of": 12,
        "users": 2400,
    }
    assert DropAlert.from_payload(body) == alert  # a retry sends the same words


def test_segments_that_vanished_together_are_one_grouped_line():
    frame = mark_scope(drop_frame(*gone(SHRUNK, 7)), sizes(**{SHRUNK: (3, 10)}))
    alert = DropAlert.from_drops(TABLE, DAY.isoformat(), frame, "http://dagster")
    lines = alert_lines(alert)
    assert lines == [
        "7 of 10 segments vanished together (8,400 users): "
        + ", ".join(["Winter sale"] * 5)
        + " and 2 more"
    ]
    assert alert.payload()["vanished"]["scope"] == "account"


def test_the_check_says_the_account_wide_incident_in_its_description():
    rows = [{**row, "segment_name": f"Segment {i}"} for i, row in enumerate(fell(BROKEN, 4))]
    frame = mark_scope(drop_frame(*rows), sizes(**{BROKEN: (5, 5)}))
    result = check_result(frame, 1)
    assert not result.passed
    assert result.description == (
        f"onesignal account {BROKEN}: Account-wide: 4 of 5 segments fell, by a median of "
        "−90 % (largest: Segment 0, Segment 1, Segment 2)"
    )


# -- from the store --------------------------------------------------------------------------


def test_a_broken_integration_stores_account_scope_and_ordinary_days_never_do(
    any_store: SegmentStore,
):
    apps = {BROKEN: 6, STEADY: 6, SHRUNK: 6}
    write_days(any_store, DAY - dt.timedelta(days=20), DAY - dt.timedelta(days=1), apps)
    assert flag_drops(any_store, [TABLE], DAY - dt.timedelta(days=1)).drops.empty  # ordinary

    changed = {(BROKEN, s): 0.0 for s in range(4)}  # an integration that returns zeros
    changed |= {(STEADY, 2): 0.1} | {(SHRUNK, s): GONE for s in range(3)}
    write_day(any_store, DAY, apps, changed)
    drops = flag_drops(any_store, [TABLE], DAY).drops
    by_account = drops.groupby("account")
    assert by_account.size().to_dict() == {BROKEN: 4, STEADY: 1, SHRUNK: 3}
    assert scopes(drops) == {BROKEN: {"account"}, STEADY: {"segment"}, SHRUNK: {"account"}}
    assert by_account["account_segments"].first().to_dict() == {BROKEN: 6, STEADY: 6, SHRUNK: 6}

    # the segment_drops asset stores the scope (a table made before the column gains it)
    any_store.ensure_table(DROPS_TABLE, {"snapshot_date": "DATE", "segment_id": "VARCHAR"})
    result = dg.materialize(
        [segment_drops],
        partition_key=DAY.isoformat(),
        resources={"io_manager": any_store.io_manager()},
    )
    assert result.success
    stored = any_store.read_partition(DROPS_TABLE, DAY)
    assert stored.groupby("scope")["segment_id"].count().to_dict() == {"account": 7, "segment": 1}
