"""What one tick of the drop sensor did, in the words of its skip reason."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TickReport:
    alerts: int = 0
    delivered_late: int = 0
    old_partitions: int = 0
    partitions: int = 0
    stopped: str | None = None

    def text(self) -> str:
        parts = [f"{self.partitions} new partition(s), {self.alerts} alert(s)"]
        if self.delivered_late:
            parts.append(f"{self.delivered_late} earlier alert(s) delivered")
        if self.old_partitions:
            parts.append(f"{self.old_partitions} partition(s) too old to alert")
        if self.stopped:
            parts.append(f"stopped early: {self.stopped}")
        return "; ".join(parts)
