"""The drop sensor's cursor: where it is in the event log, and the alerts it could not
deliver yet.

The cursor is JSON: ``{"version": 1, "after": {asset: storage_id}, "pending": {"<asset>|
<partition>|<account>[|<kind>]": {"alert": <payload>, "channels": [...]}}}`` (kind
``snapshot_failed`` or ``recovered``; none for drops). A cursor of another version, or one
that does not have this shape, fails the tick with a message that says how to start over
(:class:`CursorError`): it is never read as something else.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from segment_assets.defs.alert_payload import AlertPayloadError, DropAlert

CURSOR_VERSION = 1


class CursorError(ValueError):
    """A stored cursor this code cannot read: another version, or not the shape it writes."""


class _PendingShape(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alert: dict[str, Any]
    channels: list[str]


class _CursorShape(BaseModel):
    """What a version-1 cursor holds (the version is checked before)."""

    model_config = ConfigDict(extra="forbid")
    version: int
    after: dict[str, int] = {}
    pending: dict[str, _PendingShape] = {}


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'the cursor'}: {e['msg']}"
        for e in error.errors()
    )


@dataclass
class DropSensorCursor:
    """Where the sensor is: the last storage id seen per asset, and undelivered alerts."""

    after: dict[str, int] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> Self:
        """The cursor the sensor stored; none yet is an empty one. Raises
        :class:`CursorError` for a cursor of another version or shape, and for an
        undelivered alert this code cannot read."""
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CursorError(f"the cursor is not JSON ({exc})") from None
        version = data.get("version") if isinstance(data, dict) else None
        if version is None:
            raise CursorError("the cursor has no version")
        if type(version) is not int or version != CURSOR_VERSION:
            raise CursorError(
                f"the cursor has version {version!r}, and this code reads version "
                f"{CURSOR_VERSION} only (was it written by another release?)"
            )
        try:
            shape = _CursorShape.model_validate(data)
        except ValidationError as exc:
            raise CursorError(
                f"the cursor is not what this code writes: {_problems(exc)}"
            ) from None
        for key, entry in shape.pending.items():
            try:
                DropAlert.from_payload(entry.alert)
            except AlertPayloadError as exc:
                raise CursorError(f"the undelivered alert {key}: {exc}") from None
        return cls(
            after=dict(shape.after),
            pending={key: entry.model_dump() for key, entry in shape.pending.items()},
        )

    def serialize(self) -> str:
        return json.dumps(
            {"version": CURSOR_VERSION, "after": self.after, "pending": self.pending},
            sort_keys=True,
        )


def start_over_hint(sensor_name: str, max_age_days: int) -> str:
    """What to do with a cursor the sensor cannot read."""
    return (
        f"To start over, delete the cursor: `dagster sensor cursor {sensor_name} --delete`, "
        "or clear it on the sensor's page in the Dagster UI. The sensor then reads the "
        f"stored materialisations from the beginning and alerts again for partitions up to "
        f"{max_age_days} days old"
    )
