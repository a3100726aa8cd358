"""The ``detection`` settings of the accounts file as written: pydantic models, and their
problems in words with their place in the file.

Two places take them::

    detection:                    # defaults of every provider
      min_drop_pct: 35
      onesignal:                  # … of one provider
        min_drop_users: 100
    onesignal:
      web:
        app_id: …
        detection:                # … of one account
          alert_max_age_days: 3
          segments:               # … of some of its segments
            - name: "Test *"      # a glob on the segment's name
              min_drop_users: 1000
            - id: 49382cec        # or its id
              min_drop_pct: 20

Every value is optional; one not given is inherited from the level above. A segment rule
has exactly one of ``id`` or ``name`` and sets at least one value. Checked with the rest of
the file (see :mod:`segment_assets.config.accounts_file`), every problem listed at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidatorFunctionWrapHandler,
    create_model,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from segment_assets.config.reraise import validated
from segment_assets.detection.thresholds import HISTORY_DAYS_NEEDED
from segment_assets.providers import registry

DETECTION = "detection"
SEGMENTS = "segments"

#: What each setting takes, in words (the message of a value it cannot take).
RULES: dict[str, str] = {
    "min_drop_pct": "a percentage above 0 and below 100 (30: at least 30 % below expected)",
    "min_drop_users": "a number of users, 0 or more",
    "min_z": "a number of noise units, 0 or more",
    "min_history_days": f"a whole number of days from 1 to {HISTORY_DAYS_NEEDED}",
    "alert_max_age_days": "a whole number of days, 1 or more (1: yesterday's partition)",
    "account_wide_share": "a share of the account's segments above 0 and at most 1 (0.5: half)",
    "account_wide_min_segments": "a whole number of segments, 1 or more",
    "definition_change_days": "a whole number of days, 0 or more",
}
#: The settings a segment rule may set; an account, a provider and the top level take all.
SEGMENT_SETTINGS: tuple[str, ...] = (
    "min_drop_pct",
    "min_drop_users",
    "min_z",
    "min_history_days",
    "alert_max_age_days",
)
ACCOUNT_SETTINGS: tuple[str, ...] = tuple(RULES)

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _glob(pattern: str) -> str:
    if not pattern.strip():
        raise ValueError("must be a glob on the segment's name, e.g. 'Test *'")
    return pattern


def _id_text(value: Any) -> Any:
    # YAML reads an id of digits as a number; segment ids are stored as text
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class SegmentValues(BaseModel):
    """The values a segment rule may set; a value not given is inherited."""

    model_config = _STRICT

    min_drop_pct: float = Field(None, gt=0, lt=100)  # type: ignore[assignment]
    min_drop_users: float = Field(None, ge=0)  # type: ignore[assignment]
    min_z: float = Field(None, ge=0)  # type: ignore[assignment]
    min_history_days: int = Field(None, ge=1, le=HISTORY_DAYS_NEEDED)  # type: ignore[assignment]
    alert_max_age_days: int = Field(None, ge=1)  # type: ignore[assignment]

    def given(self) -> dict[str, Any]:
        """The values written: setting → value."""
        return {name: getattr(self, name) for name in self.model_fields_set if name in RULES}


class LevelValues(SegmentValues):
    """The values of a level (everything, a provider, an account)."""

    account_wide_share: float = Field(None, gt=0, le=1)  # type: ignore[assignment]
    account_wide_min_segments: int = Field(None, ge=1)  # type: ignore[assignment]
    definition_change_days: int = Field(None, ge=0)  # type: ignore[assignment]


class SegmentRuleFile(SegmentValues):
    """``- id: …`` or ``- name: <glob>``, and the values it sets for those segments."""

    id: Annotated[str, BeforeValidator(_id_text)] = None  # type: ignore[assignment]
    name: Annotated[str, AfterValidator(_glob)] = None  # type: ignore[assignment]

    @model_validator(mode="wrap")
    @classmethod
    def _one_target_and_a_value(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Exactly one of id and name, and at least one value; reported together with the
        values' own problems."""
        if not isinstance(data, dict):
            return handler(data)
        problems: list[InitErrorDetails] = []
        targets = [key for key in ("id", "name") if key in data]
        if len(targets) == 2:
            problems.append(
                _problem(
                    "a rule matches by id or by name, not both: split it into two rules",
                    data,
                )
            )
        elif not targets:
            problems.append(
                _problem("a rule needs id: <segment id> or name: <glob on the name>", data)
            )
        unknown = set(data) - {"id", "name", *SEGMENT_SETTINGS}
        if not unknown and not any(key in SEGMENT_SETTINGS for key in data):
            problems.append(
                _problem(f"a rule must set at least one of {', '.join(SEGMENT_SETTINGS)}", data)
            )
        return validated(handler, data, problems, cls.__name__)

    def target(self) -> str:
        """The rule's segments in words: ``id 49382cec`` or ``name 'Test *'``."""
        return f"id {self.id}" if self.id is not None else f"name {self.name!r}"


class AccountDetectionFile(LevelValues):
    """An account's ``detection:``: its values and its segment rules."""

    segments: list[SegmentRuleFile] = Field(default_factory=list)


class ProviderDetectionFile(LevelValues):
    """``detection: {<provider>: …}``: the values of every account of one provider."""


class DetectionFile(LevelValues):
    """The top-level ``detection:`` (see :func:`detection_file_model`)."""

    def provider(self, name: str) -> ProviderDetectionFile | None:
        return getattr(self, name, None)


def _problem(text: str, data: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("detection_rule", text), loc=(), input=data)


def detection_file_model() -> type[DetectionFile]:
    """The top-level ``detection:``: its values and one mapping per provider name."""
    fields: dict[str, Any] = {p.name: (ProviderDetectionFile, None) for p in registry.PROVIDERS}
    return create_model("DetectionFileSettings", __base__=DetectionFile, **fields)


DETECTION_FILE: type[DetectionFile] = detection_file_model()


# -- problems in words ---------------------------------------------------------------------


def is_detection_error(loc: tuple[str, ...]) -> bool:
    """Whether a problem of the accounts file (its location) is in a ``detection`` section."""
    return loc[:1] == (DETECTION,) or loc[2:3] == (DETECTION,)


def detection_problem(loc: tuple[Any, ...], error: ErrorDetails) -> tuple[str, str]:
    """One problem of a ``detection`` section as ``(where, what to fix)``: where is its path
    in the file (``onesignal.web.detection.segments[0].min_drop_pct``)."""
    kind = error["type"]
    where = _path(loc)
    if kind == "extra_forbidden":
        return _path(loc[:-1]), _unknown(loc)
    setting = str(loc[-1]) if loc else ""
    if setting in RULES and kind not in ("detection_rule",):
        return where, f"must be {RULES[setting]}, got {error['input']!r}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        got = type(error["input"]).__name__
        if _in_rules(loc):
            return where, f"a rule is a mapping (- id: … or - name: …), got {got}"
        return where, f"expected settings (e.g. min_drop_pct: 40), got {got}"
    if kind == "list_type":
        return where, (
            "must be a list of rules (- name: 'Test *' then the values it sets), "
            f"got {type(error['input']).__name__}"
        )
    if setting == "id" and kind == "string_type":
        return where, f"must be the segment's id, got {error['input']!r}"
    if setting == "name" and kind == "string_type":
        return where, f"must be a glob on the segment's name, got {error['input']!r}"
    if kind == "value_error":
        return where, str((error.get("ctx") or {}).get("error", error["msg"]))
    return where, error["msg"]


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _in_rules(loc: tuple[Any, ...]) -> bool:
    return len(loc) >= 2 and loc[-2] == SEGMENTS and isinstance(loc[-1], int)


def _unknown(loc: tuple[Any, ...]) -> str:
    key, parent = loc[-1], loc[:-1]
    values = ", ".join(ACCOUNT_SETTINGS)
    if parent and isinstance(parent[-1], int):
        return (
            f"unknown key {key!r} in a segment rule; a rule takes id or name (one of them) "
            f"and any of {', '.join(SEGMENT_SETTINGS)}"
        )
    if key == SEGMENTS and parent[:1] == (DETECTION,):
        return (
            "segment rules go in an account's detection "
            "(<provider>.<account>.detection.segments), not here"
        )
    if parent == (DETECTION,):
        return (
            f"unknown setting {key!r}; detection takes {values}, and a provider's name "
            f"({', '.join(registry.NAMES)}) with that provider's values"
        )
    if parent[:1] == (DETECTION,):
        return (
            f"unknown setting {key!r}; a provider's detection takes {values} (segment "
            f"rules go in an account: {parent[-1]}.<account>.detection.segments)"
        )
    return (
        f"unknown setting {key!r}; an account's detection takes {values}, and segments "
        "(a list of rules)"
    )
