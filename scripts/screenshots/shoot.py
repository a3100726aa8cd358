"""One screenshot as the scenario describes it: open the page, wait for its texts, click,
frame the part of the page to keep, make sure every expected text is shown inside that
frame, and save it as a PNG."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.screenshots.scenario import Click, Shot, fill

MARGIN = 16  # px of the page kept above and below the framing texts
LEFT_MARGIN = 40  # px kept left of the ``from`` text: room for the icon that often leads it
TIMEOUT_MS = 30_000
# Dialogs grow in and fade; without transitions a framed dialog is where it ends up at once.
NO_MOTION = "*, *::before, *::after { transition: none !important; animation: none !important; }"


class ShotError(AssertionError):
    """The page did not show what the scenario says it shows."""


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def right(self) -> float:
        return self.x + self.width

    def holds(self, other: Box) -> bool:
        """Whether ``other`` lies within this box (to a pixel)."""
        return (
            other.x >= self.x - 1
            and other.y >= self.y - 1
            and other.right <= self.right + 1
            and other.bottom <= self.bottom + 1
        )


def open_shot(page: Any, url: str, shot: Shot, facts: Mapping[str, Any]) -> None:
    """Open the shot's page, wait until its ``ready`` texts show, and click its ``click``
    texts in turn (each the last element showing exactly that text, in its row if given)."""
    page.set_viewport_size({"width": shot.width, "height": shot.height})
    page.goto(url + fill(shot.page, facts))
    page.add_style_tag(content=NO_MOTION)
    for text in shot.ready:
        visible(page, fill(text, facts))
    for target in shot.click:
        if isinstance(target, Click):
            row = page.locator("tr").filter(has_text=fill(target.row, facts))
            visible(row, fill(target.text, facts), exact=True).click()
        else:
            visible(page, fill(target, facts), exact=True).click()


def visible(scope: Any, text: str, exact: bool = False) -> Any:
    """The last element in ``scope`` (a page or a locator) showing ``text`` (containing it,
    unless ``exact``), once it is visible."""
    found = scope.get_by_text(text, exact=exact).last
    try:
        found.wait_for(state="visible", timeout=TIMEOUT_MS)
    except Exception as exc:  # Playwright's TimeoutError
        raise ShotError(f"the page never showed {text!r}") from exc
    return found


def box_of(locator: Any) -> Box:
    """Where ``locator`` is in the viewport."""
    found = locator.bounding_box()
    if found is None:
        raise ShotError(f"{locator} is not shown")
    return Box(found["x"], found["y"], found["width"], found["height"])


def frame_box(page: Any, shot: Shot, facts: Mapping[str, Any]) -> Box:
    """Where the shot's frame is in the viewport."""
    frame = shot.frame
    if frame.dialog:
        scope = page.get_by_role("dialog").last
        outer = box_of(scope)
        left, right, top, bottom = outer.x, outer.right, outer.y, outer.bottom
    else:
        scope = page
        left, right, top, bottom = 0.0, float(shot.width), 0.0, float(shot.height)
    if frame.start is not None:
        first = box_of(visible(scope, fill(frame.start, facts), exact=True))
        top = first.y - MARGIN
        if not frame.dialog:
            left = max(0.0, first.x - LEFT_MARGIN)
    if frame.to is not None:
        bottom = box_of(visible(scope, fill(frame.to, facts), exact=True)).y - MARGIN
    if frame.through is not None:
        bottom = box_of(visible(scope, fill(frame.through, facts))).bottom + MARGIN
    box = Box(left, top, right - left, bottom - top)
    if box.height <= 0:
        raise ShotError(f"the frame of {shot.file} is empty on this page")
    if not Box(0, 0, shot.width, shot.height).holds(box):
        raise ShotError(f"the frame of {shot.file} does not fit its height ({shot.height} px)")
    return box


def shown_in(scope: Any, text: str, clip: Box) -> bool:
    """Whether an element of ``scope`` showing ``text`` lies within ``clip``."""
    visible(scope, text)
    matches = scope.get_by_text(text)
    return any(
        clip.holds(box_of(matches.nth(i)))
        for i in range(matches.count())
        if matches.nth(i).is_visible()
    )


def take_shot(page: Any, url: str, shot: Shot, facts: Mapping[str, Any], folder: Path) -> Path:
    """Take ``shot`` of the UI at ``url`` into ``folder``; raises :class:`ShotError` when an
    expected text is not shown within the frame."""
    open_shot(page, url, shot, facts)
    clip = frame_box(page, shot, facts)
    scope = page.get_by_role("dialog").last if shot.frame.dialog else page
    for text in shot.expect:
        wanted = fill(text, facts)
        if not shown_in(scope, wanted, clip):
            raise ShotError(f"{wanted!r} is on the page but outside the frame of {shot.file}")
    path = folder / shot.file
    page.screenshot(
        path=str(path),
        clip={"x": clip.x, "y": clip.y, "width": clip.width, "height": clip.height},
    )
    return path
