"""No silent successes: answers that are well-formed yet lose segments or carry one bad record,
through the real clients, the emulator and Dagster runs.

* an answer that lost the segments never replaces a stored day: a OneSignal 404 is a deletion
  only when it says "segment not found", and a snapshot far smaller than the account's latest
  stored day fails the account until the run accepts it;
* a count the provider must send is required: its absence fails the account by name;
* one bad record is stored with what can be trusted, noted, and shown as a WARN, while every
  other segment is stored; none of this is retried.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pytest

from segment_assets.cli import OK, RUN_FAILED
from segment_assets.defs.account_check import ACCOUNTS_CHECK
from segment_assets.defs.assets import DAILY
from segment_assets.emulator import EmulatorConfig
from segment_assets.store.duckdb_files import SCHEMA, io_manager

from .conftest import YESTERDAY, failure_text
from .resilience import (
    ONESIGNAL_APP,
    PROVIDERS,
    counts_of,
    expected_counts,
    fast_resources,
    materialize,
    run_messages,
    small_config,
    stored,
)

DAY_BEFORE = YESTERDAY - dt.timedelta(days=1)
LABEL = {"actionhub": "ActionHub", "usercom": "User.com", "onesignal": "OneSignal"}
FIELD = {"actionhub": "user_count", "usercom": "object_count", "onesignal": "subscriber_count"}
ACCOUNT = {"actionhub": "prog-1", "usercom": "acme", "onesignal": ONESIGNAL_APP}


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return small_config()


@pytest.fixture
def fast(env, duckdb_path) -> dict:
    return fast_resources()


def config(providers=PROVIDERS, **values: Any) -> dict:
    """Run config giving every provider asset the same snapshot settings."""
    return {"ops": {f"{p}_segments": {"config": dict(values)} for p in providers}}


def store_day_before(emulator, fast, instance, providers=PROVIDERS) -> None:
    """The account's latest stored day: the day before the partition under test."""
    emulator.state.set_date(DAY_BEFORE)
    earlier = materialize(
        fast,
        instance,
        DAY_BEFORE,
        providers,
        run_config=config(providers, allow_late_partition=True),
    )
    assert earlier.success, failure_text(earlier)
    emulator.state.set_date(YESTERDAY)


def accounts_check(result) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == ACCOUNTS_CHECK
    ]
    return evaluation


def no_retries(instance, result) -> None:
    retried = [m for m in run_messages(instance, result.run_id) if "; retry " in m]
    assert retried == []


def bad_target(emulator, provider: str) -> str:
    """The provider's own id of one countable segment (ActionHub: its segment_basis_id)."""
    truth = emulator.state.truth(provider)
    if provider == "actionhub":
        return truth[0]["segment_basis_id"]
    if provider == "usercom":
        return str(truth[0]["id"])
    return next(t["id"] for t in truth if not t["user_based"])


def rows_of(frame: pd.DataFrame, provider: str, target: str) -> pd.Series:
    """Which stored rows are the target's (ActionHub ids hold the basis id)."""
    if provider == "actionhub":
        return frame["segment_id"].str.split("/").str[2] == target
    return frame["segment_id"] == target


# -- 1. an answer that lost the segments never replaces a stored day ---------------------


@pytest.mark.parametrize(
    ("kind", "said"),
    [("html", "404 Not Found nginx"), ("app", "app not found")],
    ids=["a-proxys-html-page", "app-not-found"],
)
def test_a_onesignal_404_that_does_not_say_segment_not_found_fails_the_app_and_keeps_its_day(
    kind, said, emulator, fast, instance, duckdb_path
):
    assert materialize(fast, instance, YESTERDAY, ["onesignal"]).success
    before = stored(duckdb_path, "onesignal", YESTERDAY)
    assert len(before) == 11

    emulator.state.set_faults("onesignal", view_404=kind)
    result = materialize(fast, instance, YESTERDAY, ["onesignal"])

    assert not result.success
    message = failure_text(result)
    assert "HTTP 404" in message and said in message
    assert "not read as a deletion" in message
    assert "Check ONESIGNAL_BASE_URL" in message
    assert stored(duckdb_path, "onesignal", YESTERDAY).equals(before)  # the day is kept


def test_every_segment_not_found_is_refused_as_shrunk_until_the_run_accepts_the_deletion(
    emulator, fast, instance, duckdb_path
):
    store_day_before(emulator, fast, instance, ["onesignal"])
    emulator.state.set_faults("onesignal", view_404="segment")  # every view: deleted

    refused = materialize(fast, instance, YESTERDAY, ["onesignal"])

    assert not refused.success
    message = failure_text(refused)
    assert (
        f"OneSignal {ONESIGNAL_APP} listed 0 segment(s) where its latest stored day "
        f"({DAY_BEFORE}) had 11: 11 (100%) gone, so about 11 were expected"
    ) in message
    assert "accept_shrunk_accounts: true" in message
    assert stored(duckdb_path, "onesignal", YESTERDAY).empty
    assert len(stored(duckdb_path, "onesignal", DAY_BEFORE)) == 11

    accepted = materialize(
        fast,
        instance,
        YESTERDAY,
        ["onesignal"],
        run_config=config(["onesignal"], accept_shrunk_accounts=True),
    )

    assert accepted.success, failure_text(accepted)
    meta = accepted.asset_materializations_for_node("onesignal_segments")[0].metadata
    assert meta["segments"].value == 0
    assert meta["accepted_shrunk_accounts"].value == 1
    assert "fetched (shrunk, accepted)" in meta["account_status"].value
    assert any(
        "stored as accepted by accept_shrunk_accounts" in m
        for m in run_messages(instance, accepted.run_id)
    )


def test_a_listing_that_suddenly_returns_no_segments_never_replaces_the_stored_day(
    emulator, fast, instance, duckdb_path
):
    assert materialize(fast, instance, YESTERDAY).success
    before = {p: stored(duckdb_path, p, YESTERDAY) for p in PROVIDERS}
    for provider in PROVIDERS:
        emulator.state.set_faults(provider, empty_listing=True)

    result = materialize(fast, instance, YESTERDAY)

    assert not result.success
    message = failure_text(result)
    for provider in PROVIDERS:
        assert (
            f"listed 0 segment(s) where its latest stored day ({YESTERDAY}) had "
            f"{len(before[provider])}: {len(before[provider])} (100%) gone"
        ) in message
        assert stored(duckdb_path, provider, YESTERDAY).equals(before[provider])


def test_losing_more_than_half_of_ten_or_more_segments_fails_but_a_few_deletions_are_stored(
    emulator, fast, instance, duckdb_path
):
    store_day_before(emulator, fast, instance, ["onesignal"])
    emulator.state.set_faults("onesignal", view_404="segment", view_404_share=0.75)
    most_gone = materialize(fast, instance, YESTERDAY, ["onesignal"])
    emulator.state.set_faults("onesignal", view_404_share=0.2)
    strict = materialize(
        fast, instance, YESTERDAY, ["onesignal"],
        run_config=config(["onesignal"], shrink_max_lost_share=0.1),
    )  # fmt: skip
    nonsense = materialize(
        fast, instance, YESTERDAY, ["onesignal"],
        run_config=config(["onesignal"], shrink_max_lost_share=1.5),
    )  # fmt: skip
    assert stored(duckdb_path, "onesignal", YESTERDAY).empty  # nothing stored so far

    a_few_gone = materialize(fast, instance, YESTERDAY, ["onesignal"])

    assert not most_gone.success
    assert "listed 3 segment(s) where its latest stored day" in failure_text(most_gone)
    assert not strict.success
    assert "where its latest stored day" in failure_text(strict)
    assert not nonsense.success
    assert "shrink_max_lost_share must be at least 0 and below 1, got 1.5" in failure_text(nonsense)
    assert a_few_gone.success, failure_text(a_few_gone)
    assert 6 <= len(stored(duckdb_path, "onesignal", YESTERDAY)) < 11  # the deleted left out
    assert accounts_check(a_few_gone).passed


# -- 2. required counts are required --------------------------------------------------------


@pytest.mark.parametrize("kind", ["null-count", "missing-count"])
def test_a_count_missing_from_a_200_fails_the_account_naming_provider_account_segment_and_field(
    kind, emulator, fast, instance, duckdb_path
):
    targets = {p: bad_target(emulator, p) for p in PROVIDERS}
    for provider, target in targets.items():
        emulator.state.set_faults(provider, bad_record=kind, bad_record_id=target)

    result = materialize(fast, instance, YESTERDAY)

    assert not result.success
    message = failure_text(result)
    usercom_account = emulator.base_url("usercom").split("://")[1].removesuffix("/api/public")
    for provider, target in targets.items():
        account = usercom_account if provider == "usercom" else ACCOUNT[provider]
        said = message.split(f"{LABEL[provider]} account {account}: segment ")[1]
        assert target in said.split(" came without")[0]  # ActionHub: type/basis/id/action
        assert f"came without '{FIELD[provider]}' (missing or null)" in message
        assert stored(duckdb_path, provider).empty
    no_retries(instance, result)


def test_a_null_count_is_kept_where_the_provider_says_it_cannot_count(
    emulator, fast, instance, duckdb_path
):
    target = bad_target(emulator, "usercom")
    emulator.state.set_faults("usercom", bad_record="uncountable", bad_record_id=target)

    result = materialize(fast, instance, YESTERDAY, ["usercom"])

    assert result.success, failure_text(result)
    frame = stored(duckdb_path, "usercom", YESTERDAY)
    row = frame.loc[frame["segment_id"] == target].iloc[0]
    assert pd.isna(row["user_count"]) and row["too_heavy"]
    assert pd.isna(row["problem"])
    assert accounts_check(result).passed


# -- 3. one bad record does not cost the others their day -----------------------------------

BAD_COUNTS = {
    "negative-count": "-5 is negative; stored as NULL",
    "fraction-count": "12.5 is not an integer; stored as NULL",
    "text-count": "'lots' is not an integer; stored as NULL",
}


KINDS = {  # one run spoils one record of every provider, each a different way
    "counts": {
        "actionhub": "negative-count",
        "usercom": "fraction-count",
        "onesignal": "text-count",
    },
    "names": dict.fromkeys(PROVIDERS, "surrogate-name"),
}


@pytest.mark.parametrize("spoiled", list(KINDS))
def test_one_bad_record_is_stored_with_what_can_be_trusted_and_every_other_segment_is_kept(
    spoiled, emulator, fast, instance, duckdb_path
):
    targets = {p: bad_target(emulator, p) for p in PROVIDERS}
    truths = {p: expected_counts(emulator, p) for p in PROVIDERS}
    names = {str(t.get("id")): t["name"] for p in PROVIDERS for t in emulator.state.truth(p)}
    for provider, kind in KINDS[spoiled].items():
        emulator.state.set_faults(provider, bad_record=kind, bad_record_id=targets[provider])

    result = materialize(fast, instance, YESTERDAY)

    assert result.success, failure_text(result)
    no_retries(instance, result)
    checks = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    for provider, kind in KINDS[spoiled].items():
        target, truth = targets[provider], truths[provider]
        frame = stored(duckdb_path, provider, YESTERDAY)
        bad = rows_of(frame, provider, target)
        assert bad.any()
        others = frame.loc[~bad]
        assert len(frame) == len(truth)  # every segment stored
        assert counts_of(others) == {k: truth[k] for k in others["segment_id"]}
        assert others["problem"].isna().all()
        if kind == "surrogate-name":
            assert frame.loc[bad, "user_count"].notna().all()  # the count is trusted
            assert frame.loc[bad, "segment_name"].str.endswith("\ufffd").all()
            if provider != "actionhub":
                assert frame.loc[bad, "segment_name"].iloc[0] == names[target][:12] + "\ufffd"
            problem = "segment_name held text that cannot be stored"
        else:
            assert frame.loc[bad, "user_count"].isna().all()
            problem = f"{FIELD[provider]} {BAD_COUNTS[kind]}"
        assert frame.loc[bad, "problem"].str.contains(problem, regex=False).all()

        check = checks[f"{provider}_segments"]
        assert check.check_name == ACCOUNTS_CHECK
        assert not check.passed
        assert check.severity == dg.AssetCheckSeverity.WARN
        assert f"{int(bad.sum())} segment(s) stored with a problem" in check.description
        assert problem in check.description
        meta = result.asset_materializations_for_node(f"{provider}_segments")[0].metadata
        assert meta["problem_segments"].value == int(bad.sum())


# -- OneSignal's user-based 400, by its status and error shape ------------------------------


@pytest.mark.parametrize(
    ("words", "noted"),
    [
        ("Segments with custom event filters are unsupported by this endpoint", False),
        ("This segment cannot be read here; use the dashboard", True),
    ],
    ids=["reworded-hint", "unknown-words"],
)
def test_a_user_based_segment_is_known_by_status_and_error_shape_not_by_one_sentence(
    words, noted, emulator, fast, instance, duckdb_path
):
    emulator.state.set_faults("onesignal", user_based_error=words)

    result = materialize(fast, instance, YESTERDAY, ["onesignal"])

    assert result.success, failure_text(result)
    frame = stored(duckdb_path, "onesignal", YESTERDAY)
    uncountable = frame.loc[~frame["countable"].astype(bool)]
    assert len(uncountable) == 1 and uncountable["user_count"].isna().all()
    user_based = next(t["id"] for t in emulator.state.truth("onesignal") if t["user_based"])
    assert uncountable["segment_id"].iloc[0] == user_based
    check = accounts_check(result)
    if noted:  # stored, but said: the words were not the known ones
        assert uncountable["problem"].iloc[0].startswith(f"view answered HTTP 400 ({words!r})")
        assert check.severity == dg.AssetCheckSeverity.WARN
    else:
        assert uncountable["problem"].isna().all()
        assert check.passed


def test_a_400_about_the_authorization_header_or_from_a_proxy_is_not_a_user_based_segment():
    from segment_assets.providers.http import ProviderRequestError
    from segment_assets.providers.onesignal import is_deleted, is_user_based

    def answer(status: int, body: Any) -> ProviderRequestError:
        return ProviderRequestError(
            "onesignal", "GET /apps/x/segments/y", "", status=status, body=body
        )

    auth = {"errors": ["Please include a case-sensitive header of Authorization"]}
    assert not is_user_based(answer(400, auth))
    assert not is_user_based(answer(400, None))  # an HTML page: no error shape
    assert not is_user_based(answer(400, {"detail": "bad request"}))
    assert is_user_based(answer(400, {"errors": ["User-based segments are not yet supported"]}))
    assert is_deleted(answer(404, {"errors": ["segment not found"]}))
    assert is_deleted(answer(404, {"errors": ["Segment does not exist"], "success": False}))
    assert not is_deleted(answer(404, {"errors": ["app not found"]}))
    assert not is_deleted(answer(404, None))


# -- the writer -----------------------------------------------------------------------------


def replacement(name: str, frame: pd.DataFrame) -> dg.AssetsDefinition:
    """An asset with the provider table's name that returns ``frame`` for the partition."""

    @dg.asset(name=name, partitions_def=DAILY, metadata={"partition_expr": "snapshot_date"})
    def provider_segments() -> pd.DataFrame:
        return frame

    return provider_segments


def test_an_empty_frame_never_replaces_a_stored_partition_unless_the_run_decided_it(
    emulator, fast, instance, duckdb_path
):
    assert materialize(fast, instance, YESTERDAY, ["usercom"]).success
    before = stored(duckdb_path, "usercom", YESTERDAY)

    result = dg.materialize(
        [replacement("usercom_segments", before.iloc[0:0])],
        partition_key=YESTERDAY.isoformat(),
        resources={"io_manager": io_manager(duckdb_path)},
        instance=instance,
        raise_on_error=False,
    )

    assert not result.success
    assert (
        f"refusing to replace the 25 stored rows of usercom_segments for {YESTERDAY} with an "
        "empty snapshot"
    ) in failure_text(result)
    assert stored(duckdb_path, "usercom", YESTERDAY).equals(before)


def test_a_table_made_before_the_problem_column_gains_it_on_the_next_write(
    emulator, fast, instance, duckdb_path
):
    store_day_before(emulator, fast, instance, ["onesignal"])
    with duckdb.connect(duckdb_path) as conn:
        conn.execute(f"ALTER TABLE {SCHEMA}.onesignal_segments DROP COLUMN problem")
    emulator.state.set_faults(
        "onesignal", bad_record="negative-count", bad_record_id=bad_target(emulator, "onesignal")
    )

    result = materialize(fast, instance, YESTERDAY, ["onesignal"])

    assert result.success, failure_text(result)
    frame = stored(duckdb_path, "onesignal")
    assert list(frame.columns)[-1] == "problem"
    by_day = frame.groupby(frame["snapshot_date"].dt.date)["problem"].count()
    assert by_day.to_dict() == {DAY_BEFORE: 0, YESTERDAY: 1}


@pytest.mark.slow
def test_the_command_line_exits_3_for_a_shrunk_account_until_told_and_warns_of_bad_records(
    emulator, fast, instance, duckdb_path
):
    assert materialize(fast, instance, YESTERDAY, ["onesignal"]).success
    emulator.state.set_faults("onesignal", empty_listing=True)
    target = bad_target(emulator, "usercom")
    emulator.state.set_faults("usercom", bad_record="negative-count", bad_record_id=target)
    command = [sys.executable, "-m", "segment_assets", "snapshot", "--date",
               YESTERDAY.isoformat(), "--provider", "onesignal",
               "--provider", "usercom"]  # fmt: skip

    refused = subprocess.run(command, capture_output=True, text=True, timeout=120)
    accepted = subprocess.run(
        [*command, "--accept-shrunk"], capture_output=True, text=True, timeout=120
    )

    assert refused.returncode == RUN_FAILED, refused.stderr
    assert f"listed 0 segment(s) where its latest stored day ({YESTERDAY}) had 11" in refused.stderr
    assert accepted.returncode == OK, accepted.stderr
    assert stored(duckdb_path, "onesignal", YESTERDAY).empty  # the deletion was accepted
    for done in (refused, accepted):
        assert "usercom_segments all_accounts_snapshotted: FAILED (WARN)" in done.stdout
        assert "warning: usercom_segments: All 1 account(s) snapshotted; 1 segment(s)" in (
            done.stderr
        )
