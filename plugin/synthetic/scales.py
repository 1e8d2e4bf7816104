"""The synthetic data set's sizes: named presets and ``N`` workspaces shaped like ``large``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Exact totals for one scale; each is spread over the workspaces by size."""

    workspaces: int
    teams: int
    #: People with workspace access, counted once per workspace.
    holders: int
    memberships: int

    def times(self, factor: int) -> Preset:
        return Preset(
            self.workspaces * factor,
            self.teams * factor,
            self.holders * factor,
            self.memberships * factor,
        )


PRESETS: dict[str, Preset] = {
    "tiny": Preset(workspaces=5, teams=20, holders=60, memberships=150),
    "small": Preset(workspaces=50, teams=500, holders=4_000, memberships=10_000),
    "medium": Preset(workspaces=300, teams=4_500, holders=39_000, memberships=100_000),
    "large": Preset(workspaces=2_000, teams=42_000, holders=430_000, memberships=1_050_000),
}
#: An integer scale N is N times this: the shape of one ``large`` workspace.
PER_WORKSPACE = Preset(workspaces=1, teams=21, holders=215, memberships=525)


def resolve_scale(scale: str | int) -> tuple[str, Preset]:
    """The preset for a name, a number, or a string of digits (as a CLI passes it)."""
    if isinstance(scale, str) and scale.strip().isdigit():
        scale = int(scale)
    if isinstance(scale, int) and not isinstance(scale, bool):
        if scale < 1:
            raise ValueError(f"scale must be at least 1 workspace, not {scale}")
        return str(scale), PER_WORKSPACE.times(scale)
    if isinstance(scale, str) and scale in PRESETS:
        return scale, PRESETS[scale]
    names = ", ".join(PRESETS)
    raise ValueError(f"unknown scale {scale!r}: use one of {names} or a number of workspaces")
