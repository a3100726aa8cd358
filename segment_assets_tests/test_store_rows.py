"""The stores' small tables (acknowledgements, incidents): rows added, read, changed and
removed the same way on DuckDB and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from segment_assets.store import SegmentStore, StoreError

TYPES = {
    "note_id": "VARCHAR",
    "first_day": "DATE",
    "count": "BIGINT",
    "closed": "BOOLEAN",
    "created_at": "TIMESTAMP",
}


def rows(*ids: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "note_id": list(ids),
            "first_day": [dt.date(2026, 11, 1 + i) for i in range(len(ids))],
            "count": pd.array([10 * (i + 1) for i in range(len(ids))], dtype="Int64"),
            "closed": [False] * len(ids),
            "created_at": [dt.datetime(2026, 11, 20, 8, 30)] * len(ids),
        }
    )


def test_a_table_never_written_reads_empty_and_changes_nothing(any_store: SegmentStore):
    assert any_store.read_rows("notes").empty
    assert any_store.update_rows("notes", "note_id", ["a"], {"closed": True}) == 0
    assert any_store.remove_rows("notes", "note_id", ["a"]) == 0


def test_rows_added_read_changed_and_removed(any_store: SegmentStore):
    assert any_store.append_rows("notes", rows("a", "b"), TYPES) == 2
    assert any_store.append_rows("notes", rows("c"), TYPES) == 1
    stored = any_store.read_rows("notes").sort_values("note_id").reset_index(drop=True)
    assert list(stored["note_id"]) == ["a", "b", "c"]
    assert list(stored["count"]) == [10, 20, 10]
    assert [pd.Timestamp(d).date() for d in stored["first_day"]] == [
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 2),
        dt.date(2026, 11, 1),
    ]
    assert pd.Timestamp(stored["created_at"][0]) == pd.Timestamp("2026-11-20 08:30")

    changed = any_store.update_rows(
        "notes", "note_id", ["a", "c", "zz"], {"closed": True, "count": None}
    )
    assert changed == 2
    stored = any_store.read_rows("notes").set_index("note_id")
    assert stored.loc["a", "closed"] and stored.loc["c", "closed"]
    assert not stored.loc["b", "closed"]
    assert pd.isna(stored.loc["a", "count"]) and stored.loc["b", "count"] == 20

    assert any_store.remove_rows("notes", "note_id", ["b", "zz"]) == 1
    assert sorted(any_store.read_rows("notes")["note_id"]) == ["a", "c"]


def test_an_older_table_gains_new_columns_and_unknown_columns_are_refused(
    any_store: SegmentStore,
):
    old = {k: v for k, v in TYPES.items() if k != "closed"}
    any_store.append_rows("notes", rows("a").drop(columns="closed"), old)
    any_store.append_rows("notes", rows("b"), TYPES)
    stored = any_store.read_rows("notes").set_index("note_id")
    assert pd.isna(stored.loc["a", "closed"]) and stored.loc["b", "closed"] == False  # noqa: E712
    with pytest.raises(StoreError, match="no column"):
        any_store.append_rows("notes", rows("c").assign(extra=1), TYPES)
    assert sorted(any_store.read_rows("notes")["note_id"]) == ["a", "b"]
