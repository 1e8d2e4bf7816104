"""The plan of a synthetic data set: every workspace's dates, variant and row counts.

The work is planned before anything is generated: exact row counts per
table (which gives the progress bar its total), the creation days around the
rules' cut-over date, which workspaces are on a contract.  The clock and the
interval helpers here are whole epoch seconds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..services.common import start_of_day
from .scales import Preset
from .writer import workspace_key

DAY = 86_400
#: Shortest workspace access interval, in seconds; it leaves room for the
#: memberships that have to fit inside it.
MIN_ACCESS = DAY
#: Shortest archived period, in seconds.
MIN_ARCHIVE = 3_600
#: Newest workspace / team, in days before ``now``.
WORKSPACE_MIN_AGE = 90
TEAM_MIN_AGE = 7
#: User-licence workspaces are created within this many days before the cut-over.
USER_ERA_DAYS = 365
#: People of this many most recent earlier workspaces' new members can be shared.
SHARE_POOL = 5_000


@dataclass(frozen=True)
class Clock:
    """``now``, the billing time zone and the rules' cut-over date.

    Workspaces created before the cut-over day (00:00 in the billing time
    zone) bill user licences, later ones team licences
    (``PricingRules.variant_for``); the data set has both.
    """

    tz: ZoneInfo
    now: int
    today: date
    cutover: date

    @classmethod
    def at(cls, now: datetime, tz: ZoneInfo, cutover: date) -> Clock:
        if not isinstance(tz, ZoneInfo):
            raise ValueError(f"tz must be a zoneinfo.ZoneInfo, not {tz!r}")
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"now must be timezone-aware, not {now!r}")
        earliest = start_of_day(cutover, tz) + timedelta(days=WORKSPACE_MIN_AGE + 1)
        if now < earliest:
            raise ValueError(
                f"now must be after {earliest.date().isoformat()}: the data spans "
                f"workspaces created before and after the {cutover.isoformat()} cut-over"
            )
        today = now.astimezone(tz).date()
        return cls(tz=tz, now=int(now.timestamp()), today=today, cutover=cutover)

    def midnight(self, day: date) -> int:
        return int(start_of_day(day, self.tz).timestamp())


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant(seconds: int | None) -> datetime | None:
    return None if seconds is None else EPOCH + timedelta(seconds=seconds)


def spaced_points(rng: random.Random, lo: int, hi: int, count: int, min_length: int) -> list[int]:
    """``count`` increasing instants in ``[lo, hi]``, read as interval pairs.

    Each pair ``(p[2i], p[2i+1])`` is longer than ``min_length`` and every
    point is strictly after the one before it, so intervals are neither empty
    nor touching.  Sorted uniform draws in the range shortened by the spacing
    are shifted back out by it.
    """
    pairs = (count + 1) // 2
    room = hi - lo - pairs * min_length - count
    if room < 0:
        raise ValueError(f"no room for {count} spaced points in [{lo}, {hi}]")
    draws = sorted(rng.randint(0, room) for _ in range(count))
    return [lo + draw + (k + 1) // 2 * min_length + k for k, draw in enumerate(draws)]


# -- the plan -----------------------------------------------------------------


@dataclass
class ArchivePlan:
    team: int
    periods: int
    still_archived: bool


@dataclass
class WorkspacePlan:
    """Everything about one workspace that fixes its row counts."""

    number: int
    created: int
    contract_variant: str | None
    user_licences: bool
    teams: int
    archives: list[ArchivePlan]
    holders: int
    owners: int
    shared: int
    regranted: int
    revoked: int
    outside_teams: int
    memberships: int

    @property
    def key(self) -> str:
        return workspace_key(self.number)

    @property
    def new_people(self) -> int:
        return self.holders - self.shared

    @property
    def rows(self) -> int:
        archive_periods = sum(archive.periods for archive in self.archives)
        accesses = self.holders + self.regranted
        return (
            1 + self.new_people + self.owners + self.teams + archive_periods + accesses
            + self.memberships
        )


def plan_workspaces(rng: random.Random, preset: Preset, clock: Clock) -> list[WorkspacePlan]:
    """Sizes, dates and variants of every workspace, oldest first."""
    count = preset.workspaces
    created = _creation_days(rng, count, clock)
    weights = [rng.lognormvariate(0.0, 0.75) for _ in range(count)]
    teams = _apportion(preset.teams, weights, minimum=1)
    holders = _apportion(preset.holders, weights, minimum=3)
    memberships = _apportion(preset.memberships, weights, minimum=1)
    contracts = set(rng.sample(range(count), few(count, 0.04)))
    plans: list[WorkspacePlan] = []
    people_before = 0
    archived_teams = 0
    for index in range(count):
        plan = _plan_workspace(
            rng,
            index,
            clock.midnight(created[index]),
            created[index] < clock.cutover,
            index in contracts,
            teams[index],
            holders[index],
            memberships[index],
            people_before,
        )
        for archive in plan.archives:
            archive.still_archived = archived_teams % 3 == 1
            archived_teams += 1
        people_before += plan.new_people
        plans.append(plan)
    return plans


def _creation_days(rng: random.Random, count: int, clock: Clock) -> list[date]:
    """About a quarter before the cut-over; the first one after it is exactly on it."""
    before = max(1, round(count * 0.25)) if count >= 2 else 0
    first = (clock.cutover - timedelta(days=USER_ERA_DAYS)).toordinal()
    cutover = clock.cutover.toordinal()
    last = (clock.today - timedelta(days=WORKSPACE_MIN_AGE)).toordinal()
    days = [rng.randint(first, cutover - 1) for _ in range(before)]
    days += [cutover] + [rng.randint(cutover, last) for _ in range(count - before - 1)]
    return [date.fromordinal(day) for day in sorted(days)]


def _apportion(total: int, weights: Sequence[float], *, minimum: int) -> list[int]:
    """Split ``total`` by ``weights`` (largest remainder), each part at least ``minimum``."""
    spare = total - minimum * len(weights)
    if spare < 0:
        raise ValueError(f"cannot give {len(weights)} workspaces {minimum} of {total} each")
    scale = spare / sum(weights)
    shares = [weight * scale for weight in weights]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - shares[i], i))
    for index in by_remainder[: spare - sum(counts)]:
        counts[index] += 1
    return [minimum + n for n in counts]


def few(count: int, fraction: float) -> int:
    """``fraction`` of ``count``, but at least one when there is anything at all."""
    return min(count, max(1, round(count * fraction))) if count else 0


def _plan_workspace(
    rng: random.Random,
    index: int,
    created: int,
    before_cutover: bool,
    on_contract: bool,
    teams: int,
    holders: int,
    memberships: int,
    people_before: int,
) -> WorkspacePlan:
    default = "user_licences" if before_cutover else "team_licences"
    contract = None
    if on_contract:
        other = "team_licences" if before_cutover else "user_licences"
        contract = other if rng.random() < 0.75 else default
    owners = 2 if holders >= 4 and rng.random() < 0.2 else 1
    others = holders - owners
    shared = min(few(holders, 0.03), people_before, SHARE_POOL, others) if index else 0
    outside = max(min(few(holders, 0.1), holders - 1), holders - memberships)
    archives = [
        ArchivePlan(team=team, periods=rng.choice((1, 1, 2, 3)), still_archived=False)
        for team in sorted(rng.sample(range(teams), few(teams, 0.15)))
    ]
    return WorkspacePlan(
        number=index + 1,
        created=created,
        contract_variant=contract,
        user_licences=(contract or default) == "user_licences",
        teams=teams,
        archives=archives,
        holders=holders,
        owners=owners,
        shared=shared,
        regranted=round(others * 0.03),
        revoked=few(others, 0.08) if others >= 3 else 0,
        outside_teams=outside,
        memberships=memberships,
    )
