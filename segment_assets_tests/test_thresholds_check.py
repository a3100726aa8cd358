"""The drop check with thresholds from the accounts file, through real runs against the
emulator: a segment rule stops one alert and causes another, the check shows the settings in
force, and re-running the check after editing the file judges the day again."""

from __future__ import annotations

import textwrap

import dagster as dg
import pytest

from segment_assets.defs.checks import CHECK_NAME

from .conftest import YESTERDAY, failure_text
from .drop_story import (
    APP_ID,
    ONESIGNAL,
    ONESIGNAL_CHECK,
    days,
    largest_segments,
    small_config,
    write_history,
)


@pytest.fixture
def emulator_config():
    return small_config()


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as memory:  # a real instance, in memory: fast
        yield memory


def evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [found] = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_NAME]
    return found


def rerun_check(
    resources: dict, instance: dg.DagsterInstance, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Run the drop check alone on yesterday's partition, as the UI's *Execute* of a check
    does (the asset is not materialised again; no provider is called)."""
    return dg.materialize(
        [ONESIGNAL, ONESIGNAL_CHECK],
        selection=dg.AssetSelection.checks(ONESIGNAL_CHECK),
        tags={"dagster/partition": YESTERDAY.isoformat()},
        resources=resources,
        instance=instance,
        raise_on_error=raise_on_error,
    )


def table_rows(markdown: str) -> dict[str, list[str]]:
    """A Markdown table's rows by their first cell: the other cells, stripped."""
    table = markdown.split("\n\n")[0]  # then the legend
    lines = [line.strip().strip("|").split("|") for line in table.splitlines()]
    header, _, *rows = lines
    assert [c.strip() for c in header] == [
        "applies to",
        "min_drop_pct",
        "min_drop_users",
        "min_z",
        "min_history_days",
        "alert_max_age_days",
        "segments",
    ]
    return {row[0].strip(): [c.strip() for c in row[1:]] for row in rows}


def accounts_file(path, rules: str) -> None:
    path.write_text(
        textwrap.dedent(
            f"""
            onesignal:
              shop:
                app_id: {APP_ID}
                api_key_env: ONESIGNAL_API_KEY
                detection:
                  segments:
            """
        )
        + textwrap.indent(textwrap.dedent(rules), " " * 8)
    )


def test_segment_rules_change_what_the_check_flags_and_a_rerun_reads_the_edited_file(
    emulator, resources, instance, duckdb_path, tmp_path, monkeypatch
):
    (deep_id, deep_name), (mild_id, mild_name) = largest_segments(emulator, 2)
    emulator.state.plant_drop("onesignal", APP_ID, deep_id, start=YESTERDAY, factor=0.1)
    emulator.state.plant_drop("onesignal", APP_ID, mild_id, start=YESTERDAY, factor=0.8)
    write_history(emulator, resources, duckdb_path, days(YESTERDAY, 8))
    config = tmp_path / "segment_assets.yaml"
    monkeypatch.setenv("SEGMENT_ASSETS_CONFIG", str(config))
    accounts_file(
        config,
        f"""
        - id: {deep_id}
          min_drop_pct: 95        # a segment known to swing: quiet
        - name: "{mild_name}*"
          min_drop_pct: 10        # a segment that matters: alert on −10 %
        - name: "Retired *"
          min_drop_users: 10
        """,
    )

    run = rerun_check(resources, instance)

    tuned = evaluation(run)
    assert not tuned.passed and tuned.severity == dg.AssetCheckSeverity.WARN
    table = tuned.metadata["dropped_segments"].value
    assert mild_name in table and "−2" in table  # about −20 %
    assert deep_name not in table
    rows = table_rows(tuned.metadata["thresholds"].value)
    assert rows["onesignal (every account)"][:5] == ["30", "50", "4", "7", "2"]
    assert rows[f"shop: segments[0] id {deep_id}"] == ["95", "", "", "", "", "1"]
    assert rows[f"shop: segments[1] name '{mild_name}*'"] == ["10", "", "", "", "", "1"]
    assert rows["shop: segments[2] name 'Retired *'"] == ["", "10", "", "", "", "0"]
    # a glob that matches nothing is a warning, in the metadata and in the run's log
    assert tuned.metadata["segment_rules_matching_nothing"].value == 1
    warning = "onesignal.shop.detection.segments[2] (name 'Retired *') matches none"
    assert warning in tuned.metadata["unmatched_segment_rules"].value
    logged = [e.user_message for e in instance.all_logs(run.run_id)]
    assert any(warning in message for message in logged)

    # The team changes its mind: the file without rules, the check re-run on its own.
    accounts_file(config, "[]")
    rerun = rerun_check(resources, instance)
    again = evaluation(rerun)
    assert again.partition == YESTERDAY.isoformat()
    assert not rerun.get_asset_materialization_events()  # the check alone

    assert not again.passed and again.severity == dg.AssetCheckSeverity.ERROR
    table = again.metadata["dropped_segments"].value
    assert deep_name in table and mild_name not in table
    assert again.metadata["segment_rules_matching_nothing"].value == 0
    assert "segments[" not in again.metadata["thresholds"].value

    # A typo while editing: the re-run fails and says where, rather than judging with
    # something else.
    accounts_file(config, "- name: 'Test *'\n  min_drop_pct: -5\n")
    broken = rerun_check(resources, instance, raise_on_error=False)
    assert not broken.success
    assert "onesignal.shop.detection.segments[0].min_drop_pct: must be a percentage" in (
        failure_text(broken)
    )
