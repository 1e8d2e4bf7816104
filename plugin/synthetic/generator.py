"""A deterministic synthetic back-office for demos and benchmarks.

:func:`generate` fills the plugin's tables with workspaces of both billing
variants, teams with archive history, people (some in two workspaces),
workspace access (some revoked, some people in no team) and team memberships
with joins and leaves over the last years, including the edge cases billing
has to get right: zero-length memberships, teams archived right now, a
workspace created exactly on the variant cut-over day, individual contracts.

The same ``seed``, ``scale``, ``tz`` and ``now`` always give byte-identical
rows (on an empty database even the ids are the same), so a benchmark or a
bug report can be reproduced anywhere.  The work is planned first
(:mod:`plugin.synthetic.plan`), then generated workspace by workspace here and
written in batches (:mod:`plugin.synthetic.writer`).

Nothing is committed: the rows join the caller's transaction, so a failure
halfway leaves nothing behind once the caller rolls back.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..rules.schema import DEFAULT_CUTOVER
from .plan import (
    MIN_ACCESS,
    MIN_ARCHIVE,
    SHARE_POOL,
    TEAM_MIN_AGE,
    Clock,
    WorkspacePlan,
    few,
    instant,
    plan_workspaces,
    spaced_points,
)
from .scales import resolve_scale
from .writer import (
    ACCESS,
    ARCHIVE,
    BATCH,
    MEMBERSHIP,
    OWNER,
    PERSON,
    TEAM,
    WORKSPACE,
    Progress,
    Target,
    Writer,
    advance_sequences,
    person_email,
    refuse_existing,
    write_billing_details,
)

COMPANIES = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Müller & Söhne", "Hooli",
    "Vandelay", "Soylent", "Tyrell", "Cyberdyne", "Wonka", "Oceanic", "Aperture", "Nakatomi",
)
LEGAL_FORMS = ("GmbH", "AG", "Ltd", "Inc.", "SARL", "B.V.", "KG", "Oy")
TEAM_NAMES = (
    "Sales", "Support", "Engineering", "Marketing", "Finance", "Operations", "Design", "Legal",
    "People", "Research", "Data", "Security", "Platform", "Mobile", "Growth", "Partners",
)
FIRST_NAMES = (
    "Ada", "Ben", "Chloé", "Dmitri", "Emma", "Frank", "Greta", "Hiro", "Inès", "Jürgen", "Kofi",
    "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quinn", "Rosa", "Søren", "Tariq", "Uma",
    "Viktor", "Wen", "Xavier", "Yara", "Zoë",
)
LAST_NAMES = (
    "Abara", "Becker", "Costa", "Dubois", "Eriksson", "Fischer", "García", "Hansen", "Ivanova",
    "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrov", "Quispe", "Rossi",
    "Schmidt", "Tanaka", "Ueda", "Vargas", "Weber", "Xu", "Yılmaz", "Zimmermann",
)


@dataclass(frozen=True)
class GenerateSummary:
    """Rows written per table by one :func:`generate` run."""

    seed: int
    scale: str
    workspaces: int
    people: int
    owners: int
    teams: int
    archive_periods: int
    accesses: int
    memberships: int

    @property
    def rows(self) -> int:
        return sum(self.by_table().values())

    def by_table(self) -> dict[str, int]:
        """Counts keyed by table name, in the order the tables were written."""
        return {
            WORKSPACE.name: self.workspaces,
            PERSON.name: self.people,
            OWNER.name: self.owners,
            TEAM.name: self.teams,
            ARCHIVE.name: self.archive_periods,
            ACCESS.name: self.accesses,
            MEMBERSHIP.name: self.memberships,
        }

    def __str__(self) -> str:
        counts = ", ".join(f"{n:,} {table}" for table, n in self.by_table().items())
        return f"Generated (seed {self.seed}, scale {self.scale}): {counts}."


def generate(
    session_or_connection: Target,
    *,
    seed: int,
    scale: str | int,
    tz: ZoneInfo,
    now: datetime,
    cutover: date = DEFAULT_CUTOVER,
    progress: Progress | None = None,
) -> GenerateSummary:
    """Insert a synthetic back-office into the caller's transaction (not committed).

    ``scale`` is a preset name (``tiny``, ``small``, ``medium``, ``large``) or a
    number of workspaces, each shaped like a ``large`` one.  ``tz`` is the
    billing time zone (workspace and team creation are midnights there, like
    imported dates); ``now`` bounds every instant; ``cutover`` is the rules'
    cut-over date (``PricingRules.cutover_date``; the rules file's default when
    not given), so that both billing variants appear.  Raises ``ValueError``
    for a bad argument or when generated keys or e-mails are already in the
    database, before writing anything.
    """
    label, preset = resolve_scale(scale)
    clock = Clock.at(now, tz, cutover)
    rng = random.Random(seed)
    plans = plan_workspaces(rng, preset, clock)
    people = sum(plan.new_people for plan in plans)
    refuse_existing(session_or_connection, [plan.key for plan in plans], people)
    writer = Writer(session_or_connection, sum(plan.rows for plan in plans), progress)
    state = _SharedPeople()
    for plan in plans:
        _write_workspace(rng, plan, clock, state, writer)
        if writer.pending >= BATCH:
            writer.flush()
    writer.flush()
    write_billing_details(session_or_connection, [plan.key for plan in plans], now)
    advance_sequences(session_or_connection, writer)
    counts = writer.written
    return GenerateSummary(
        seed=seed,
        scale=label,
        workspaces=counts[WORKSPACE],
        people=counts[PERSON],
        owners=counts[OWNER],
        teams=counts[TEAM],
        archive_periods=counts[ARCHIVE],
        accesses=counts[ACCESS],
        memberships=counts[MEMBERSHIP],
    )


# -- generating one workspace ---------------------------------------------------


@dataclass
class _SharedPeople:
    """Numbers people across the run and remembers recent ones to share."""

    count: int = 0
    recent: list[int] = field(default_factory=list)

    def new(self) -> int:
        """The next person's number (in the e-mail address)."""
        self.count += 1
        return self.count

    def remember(self, person_ids: list[int]) -> None:
        self.recent.extend(person_ids)
        del self.recent[:-SHARE_POOL]


@dataclass(frozen=True)
class _Team:
    id: int
    created: int


def _write_workspace(
    rng: random.Random, plan: WorkspacePlan, clock: Clock, state: _SharedPeople, writer: Writer
) -> None:
    workspace_id = writer.add(WORKSPACE, _workspace_row(rng, plan))
    teams = _write_teams(rng, plan, workspace_id, clock, writer)
    holders = _write_people(rng, plan, state, writer)
    for person_id in holders[: plan.owners]:
        writer.add(OWNER, {"workspace_id": workspace_id, "person_id": person_id})
    access = _write_access(rng, plan, workspace_id, holders, clock, writer)
    _write_memberships(rng, plan, teams, holders, access, clock, writer)


def _workspace_row(rng: random.Random, plan: WorkspacePlan) -> dict[str, Any]:
    mailbox = None
    if plan.user_licences or rng.random() < 0.3:
        mailbox = f"invoices@{plan.key}.example.com"
    return {
        "key": plan.key,
        "name": f"{rng.choice(COMPANIES)} {rng.choice(LEGAL_FORMS)} #{plan.number}",
        "created_at": instant(plan.created),
        "contract_variant": plan.contract_variant,
        "invoice_mailbox": mailbox,
    }


def _write_teams(
    rng: random.Random, plan: WorkspacePlan, workspace_id: int, clock: Clock, writer: Writer
) -> list[_Team]:
    """The first team is as old as the workspace; the others came later."""
    first_day = datetime.fromtimestamp(plan.created, clock.tz).date().toordinal()
    last_day = (clock.today - timedelta(days=TEAM_MIN_AGE)).toordinal()
    teams = []
    for index in range(plan.teams):
        created = plan.created
        if index:
            created = clock.midnight(date.fromordinal(rng.randint(first_day, last_day)))
        base = TEAM_NAMES[index % len(TEAM_NAMES)]
        lap = index // len(TEAM_NAMES)
        row = {
            "workspace_id": workspace_id,
            "key": f"team-{index + 1:03d}",
            "name": f"{base} {lap + 1}" if lap else base,
            "created_at": instant(created),
        }
        teams.append(_Team(writer.add(TEAM, row), created))
    for archive in plan.archives:
        team = teams[archive.team]
        count = 2 * archive.periods - archive.still_archived
        points = spaced_points(rng, team.created + 1, clock.now, count, MIN_ARCHIVE)
        for start, end in _pairs(points):
            period = {"archived_from": instant(start), "unarchived_at": instant(end)}
            writer.add(ARCHIVE, {"team_id": team.id, **period})
    return teams


def _pairs(points: list[int]) -> Iterator[tuple[int, int | None]]:
    """``[a, b, c, d, e]`` as ``(a, b), (c, d), (e, None)``."""
    for index in range(0, len(points), 2):
        yield points[index], points[index + 1] if index + 1 < len(points) else None


def _write_people(
    rng: random.Random, plan: WorkspacePlan, state: _SharedPeople, writer: Writer
) -> list[int]:
    """Ids of the workspace's access holders: new people first, then shared ones."""
    holders = []
    for _ in range(plan.new_people):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        holders.append(writer.add(PERSON, {"email": person_email(state.new()), "name": name}))
    shared = rng.sample(state.recent, plan.shared)
    state.remember(holders)
    return holders + shared


def _write_access(
    rng: random.Random,
    plan: WorkspacePlan,
    workspace_id: int,
    holders: list[int],
    clock: Clock,
    writer: Writer,
) -> list[list[tuple[int, int | None]]]:
    """Access intervals per holder; owners keep theirs, some others lost it or came back."""
    others = range(plan.owners, plan.holders)
    regranted = set(rng.sample(others, plan.regranted))
    revoked = set(rng.sample(others, plan.revoked))
    intervals = []
    for index, person_id in enumerate(holders):
        if index == 0:
            spans: list[tuple[int, int | None]] = [(plan.created, None)]
        else:
            count = 2 * (1 + (index in regranted))
            points = spaced_points(rng, plan.created, clock.now, count, MIN_ACCESS)
            spans = list(_pairs(points if index in revoked else points[:-1]))
        for start, end in spans:
            writer.add(
                ACCESS,
                {
                    "workspace_id": workspace_id,
                    "person_id": person_id,
                    "granted_at": instant(start),
                    "revoked_at": instant(end),
                },
            )
        intervals.append(spans)
    return intervals


def _write_memberships(
    rng: random.Random,
    plan: WorkspacePlan,
    teams: list[_Team],
    holders: list[int],
    access: list[list[tuple[int, int | None]]],
    clock: Clock,
    writer: Writer,
) -> None:
    """Spread the planned memberships over the holders who are in some team.

    Everybody in a team has at least one membership; the rest go to random
    members, who then rejoin their home team or join others.  About one
    closed membership in a hundred has zero length.
    """
    outside = set(rng.sample(range(plan.holders), plan.outside_teams))
    members = [index for index in range(plan.holders) if index not in outside]
    slots = [1] * len(members)
    for _ in range(plan.memberships - len(members)):
        slots[rng.randrange(len(members))] += 1
    cumulative = _cumulative([rng.random() ** 2 + 0.05 for _ in teams])
    rows: list[dict[str, Any]] = []
    for index, count in zip(members, slots, strict=True):
        groups = _membership_groups(rng, count, teams, cumulative, access[index], clock.now)
        for (team, span), intervals in groups.items():
            rows += _membership_rows(
                rng, teams[team], holders[index], access[index][span], intervals, clock.now
            )
    closed = [row for row in rows if row["left_at"] is not None]
    for row in rng.sample(closed, few(len(closed), 0.01)):
        row["left_at"] = row["joined_at"]
    for row in rows:
        writer.add(MEMBERSHIP, row)


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _membership_groups(
    rng: random.Random,
    count: int,
    teams: list[_Team],
    cumulative: list[float],
    spans: list[tuple[int, int | None]],
    now: int,
) -> dict[tuple[int, int], int]:
    """How many intervals a person gets per (team, access interval).

    A team created too late for the chosen access interval is replaced by the
    first team, which is as old as the workspace, so the planned count holds.
    """
    picks = range(len(teams))

    def pick() -> int:
        return rng.choices(picks, cum_weights=cumulative)[0]

    home = pick()
    groups: dict[tuple[int, int], int] = {}
    for slot in range(count):
        team = home if slot == 0 or rng.random() < 0.35 else pick()
        span = rng.randrange(len(spans))
        start, end = spans[span]
        if (now if end is None else end) - max(start, teams[team].created) < MIN_ACCESS:
            team = 0
        groups[team, span] = groups.get((team, span), 0) + 1
    return groups


def _membership_rows(
    rng: random.Random,
    team: _Team,
    person_id: int,
    span: tuple[int, int | None],
    count: int,
    now: int,
) -> list[dict[str, Any]]:
    """``count`` disjoint intervals inside the access interval; maybe the last still open."""
    start, end = span
    still_member = end is None and rng.random() < 0.7
    lo, hi = max(start, team.created), now if end is None else end
    points = sorted(rng.sample(range(lo, hi + 1), 2 * count - still_member))
    return [
        {
            "team_id": team.id,
            "person_id": person_id,
            "joined_at": instant(joined),
            "left_at": instant(left),
        }
        for joined, left in _pairs(points)
    ]
