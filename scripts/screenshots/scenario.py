"""What the screenshots show, read from ``scenario.yaml``: the world to build (accounts,
history, the drops planted on its last day, extra settings of the accounts file) and, per
image, the page, what to click and wait for, the part of the page to keep, and the texts it
must show.

Texts may name the world's facts in ``{}``: ``{day}`` (the partition with the drops),
``{account}``, ``{account_id}`` and ``{account_label}`` (the account of the first planted
drop: its name in the accounts file, its id and its words), ``{dropped[0]}`` … (the names
of the segments planted to drop, largest first), ``{dropped_count}`` and ``{segments}``
(how many fell, and how many countable segments that account has).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCENARIO_FILE = Path(__file__).with_name("scenario.yaml")


class ScenarioError(ValueError):
    """The scenario file cannot be used; the message says where and what to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlantedDrop(_Strict):
    """Segments of one OneSignal account that lose users on the last day."""

    account: str = Field(description="The account's name in the accounts file.")
    segments: int = Field(ge=1, description="How many, largest countable ones first.")
    factor: float = Field(gt=0, lt=1, description="The share of users each one keeps.")


class World(_Strict):
    """The data behind the screenshots: OneSignal apps of the bundled emulator."""

    segments_per_app: int = Field(default=10, ge=3, le=200)
    history_days: int = Field(
        default=10, ge=0, description="Days stored through the store before the runs."
    )
    runs: int = Field(
        default=1, ge=1, description="The last days, each a real Dagster run of the asset."
    )
    accounts_file: str = Field(
        default="",
        description=(
            "YAML merged into the demo's accounts file, mapping by mapping (detection "
            "settings, also of one of its accounts)"
        ),
    )
    drops: tuple[PlantedDrop, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _drops_fit(self) -> World:
        countable = self.segments_per_app - 1  # one segment of each app is user-based
        for drop in self.drops:
            if drop.segments > countable:
                raise ValueError(
                    f"{drop.account} drops {drop.segments} segments, but an app of "
                    f"segments_per_app {self.segments_per_app} has {countable} countable ones"
                )
        return self


class Frame(_Strict):
    """The part of the page kept. Across: the open dialog (``dialog``), or from just left of
    the ``from`` text to the right edge of the page. Down: from the top of the ``from`` text
    (else the dialog's top) to the top of the ``to`` text, or the bottom of the ``through``
    text (else the dialog's or the page's bottom). A framing text is the last element that
    shows exactly it (``through``: that contains it)."""

    dialog: bool = False
    start: str | None = Field(default=None, alias="from")
    to: str | None = None
    through: str | None = None

    @model_validator(mode="after")
    def _well_framed(self) -> Frame:
        if not self.dialog and self.start is None:
            raise ValueError("give dialog: true, or from: <text> (or both)")
        if self.to is not None and self.through is not None:
            raise ValueError("give to: or through:, not both")
        return self


class Click(_Strict):
    """A text to click in the table row that shows another text, such as the
    ``[Show Markdown]`` of one metadata entry: ``{text: "[Show Markdown]", row: thresholds}``."""

    text: str
    row: str


class Shot(_Strict):
    """One image."""

    file: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*\.png$")
    page: str = Field(pattern=r"^/", description="The UI's path, query included.")
    needs: Literal["check", "sensor_tick"] = Field(
        default="check", description="What must have happened before the page is opened."
    )
    ready: tuple[str, ...] = Field(default=(), description="Texts to wait for on the page.")
    click: tuple[str | Click, ...] = Field(
        default=(), description="Texts clicked in turn (the last element showing each)."
    )
    frame: Frame
    expect: tuple[str, ...] = Field(min_length=1, description="Texts the image must show.")
    width: int = Field(default=1200, ge=600, le=2000, description="The window's width, px.")
    height: int = Field(default=1200, ge=400, le=3000, description="The window's height, px.")


class Scenario(_Strict):
    world: World
    shots: tuple[Shot, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_files(self) -> Scenario:
        files = [s.file for s in self.shots]
        doubled = sorted({f for f in files if files.count(f) > 1})
        if doubled:
            raise ValueError(f"each shot needs its own file; given twice: {', '.join(doubled)}")
        return self


def load_scenario(path: Path = SCENARIO_FILE) -> Scenario:
    """The scenario in ``path``; every problem is named with its place in the file."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"cannot read the scenario {path}: {exc}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the file'}: {e['msg']}" for e in exc.errors()
        )
        raise ScenarioError(f"the scenario {path} has problems: {problems}") from None


def fill(text: str, facts: Mapping[str, Any]) -> str:
    """``text`` with its ``{fact}`` fields filled from ``facts``; an unknown fact is an error
    naming the facts there are."""
    try:
        return string.Formatter().vformat(text, (), facts)
    except (KeyError, IndexError) as exc:
        known = ", ".join(sorted(facts))
        raise ScenarioError(
            f"{text!r} names {exc} which the world does not have ({known})"
        ) from None
