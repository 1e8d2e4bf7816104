"""A deterministic synthetic back-office for demos and benchmarks.

:func:`generate` fills the plugin's tables with workspaces of both billing
variants, teams with archive history, people (some in two workspaces),
workspace access (some revoked, some people in no team) and team memberships
with joins and leaves over the last years, including the edge cases billing
has to get right: zero-length memberships, teams archived right now, a
workspace created exactly on the variant cut-over day, individual contracts.

The same ``seed``, ``scale``, ``tz`` and ``now`` always give byte-identical
rows (on an empty database even the ids are the same), so a benchmark or a
bug report can be reproduced anywhere.  The work is planned first (exact row
counts per table, which gives the progress bar its total), then generated
workspace by workspace and written with Core ``INSERT`` executemany in
batches.  Primary keys are assigned here, after each table's current maximum,
so no ``RETURNING`` round trip is needed; on PostgreSQL the id sequences are
moved past the new rows afterwards.

Nothing is committed: the rows join the caller's transaction, so a failure
halfway leaves nothing behind once the caller rolls back.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Table, func, insert, literal, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, scoped_session

from ..models import (
    BillingDetails,
    Person,
    Team,
    TeamArchivePeriod,
    TeamMembership,
    Workspace,
    WorkspaceAccess,
    WorkspaceOwner,
)
from ..services.common import chunked, start_of_day
from ..types import UTCDateTime

Progress = Callable[[int, int], None]
#: Where the rows go: a session (Flask-SQLAlchemy's ``db.session`` is scoped) or a connection.
Target = Session | scoped_session[Session] | Connection

#: Workspaces created before this day (00:00 in the billing time zone) bill
#: user licences, later ones team licences (DESIGN.md §3, the rules file's
#: default cut-over).
CUTOVER = date(2023, 3, 1)

#: Rows per executemany statement.
BATCH = 10_000

KEY_PREFIX = "gen-"
EMAIL_PATTERN = re.compile(r"person-(\d{6,})@example\.com")

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

#: Tables in foreign-key order: parents are always written before children.
TABLES: tuple[Table, ...] = tuple(
    model.__table__
    for model in (
        Workspace,
        Person,
        WorkspaceOwner,
        Team,
        TeamArchivePeriod,
        WorkspaceAccess,
        TeamMembership,
    )
)
WORKSPACE, PERSON, OWNER, TEAM, ARCHIVE, ACCESS, MEMBERSHIP = TABLES

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
    progress: Progress | None = None,
) -> GenerateSummary:
    """Insert a synthetic back-office into the caller's transaction (not committed).

    ``scale`` is a preset name (``tiny``, ``small``, ``medium``, ``large``) or a
    number of workspaces, each shaped like a ``large`` one.  ``tz`` is the
    billing time zone (workspace and team creation are midnights there, like
    imported dates); ``now`` bounds every instant.  Raises ``ValueError`` for a
    bad argument or when generated keys or e-mails are already in the
    database, before writing anything.
    """
    label, preset = resolve_scale(scale)
    clock = _Clock.at(now, tz)
    rng = random.Random(seed)
    plans = _plan(rng, preset, clock)
    people = sum(plan.new_people for plan in plans)
    _refuse_existing(session_or_connection, [plan.key for plan in plans], people)
    writer = _Writer(session_or_connection, sum(plan.rows for plan in plans), progress)
    state = _SharedPeople()
    for plan in plans:
        _write_workspace(rng, plan, clock, state, writer)
        if writer.pending >= BATCH:
            writer.flush()
    writer.flush()
    _write_billing_details(session_or_connection, [plan.key for plan in plans], now)
    _advance_sequences(session_or_connection, writer)
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


def workspace_key(number: int) -> str:
    return f"{KEY_PREFIX}{number:05d}"


def person_email(number: int) -> str:
    return f"person-{number:06d}@example.com"


# -- time ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Clock:
    """``now`` and the billing time zone; instants are whole epoch seconds."""

    tz: ZoneInfo
    now: int
    today: date

    @classmethod
    def at(cls, now: datetime, tz: ZoneInfo) -> _Clock:
        if not isinstance(tz, ZoneInfo):
            raise ValueError(f"tz must be a zoneinfo.ZoneInfo, not {tz!r}")
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"now must be timezone-aware, not {now!r}")
        earliest = start_of_day(CUTOVER, tz) + timedelta(days=WORKSPACE_MIN_AGE + 1)
        if now < earliest:
            raise ValueError(
                f"now must be after {earliest.date().isoformat()}: the data spans "
                f"workspaces created before and after the {CUTOVER.isoformat()} cut-over"
            )
        return cls(tz=tz, now=int(now.timestamp()), today=now.astimezone(tz).date())

    def midnight(self, day: date) -> int:
        return int(start_of_day(day, self.tz).timestamp())


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _instant(seconds: int | None) -> datetime | None:
    return None if seconds is None else _EPOCH + timedelta(seconds=seconds)


def _spaced_points(rng: random.Random, lo: int, hi: int, count: int, min_length: int) -> list[int]:
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
class _ArchivePlan:
    team: int
    periods: int
    still_archived: bool


@dataclass
class _WorkspacePlan:
    """Everything about one workspace that fixes its row counts."""

    number: int
    created: int
    contract_variant: str | None
    user_licences: bool
    teams: int
    archives: list[_ArchivePlan]
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


def _plan(rng: random.Random, preset: Preset, clock: _Clock) -> list[_WorkspacePlan]:
    """Sizes, dates and variants of every workspace, oldest first."""
    count = preset.workspaces
    created = _creation_days(rng, count, clock)
    weights = [rng.lognormvariate(0.0, 0.75) for _ in range(count)]
    teams = _apportion(preset.teams, weights, minimum=1)
    holders = _apportion(preset.holders, weights, minimum=3)
    memberships = _apportion(preset.memberships, weights, minimum=1)
    contracts = set(rng.sample(range(count), _few(count, 0.04)))
    plans: list[_WorkspacePlan] = []
    people_before = 0
    archived_teams = 0
    for index in range(count):
        plan = _plan_workspace(
            rng,
            index,
            clock.midnight(created[index]),
            created[index] < CUTOVER,
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


def _creation_days(rng: random.Random, count: int, clock: _Clock) -> list[date]:
    """About a quarter before the cut-over; the first one after it is exactly on it."""
    before = max(1, round(count * 0.25)) if count >= 2 else 0
    first = (CUTOVER - timedelta(days=USER_ERA_DAYS)).toordinal()
    cutover = CUTOVER.toordinal()
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


def _few(count: int, fraction: float) -> int:
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
) -> _WorkspacePlan:
    default = "user_licences" if before_cutover else "team_licences"
    contract = None
    if on_contract:
        other = "team_licences" if before_cutover else "user_licences"
        contract = other if rng.random() < 0.75 else default
    owners = 2 if holders >= 4 and rng.random() < 0.2 else 1
    others = holders - owners
    shared = min(_few(holders, 0.03), people_before, SHARE_POOL, others) if index else 0
    outside = max(min(_few(holders, 0.1), holders - 1), holders - memberships)
    archives = [
        _ArchivePlan(team=team, periods=rng.choice((1, 1, 2, 3)), still_archived=False)
        for team in sorted(rng.sample(range(teams), _few(teams, 0.15)))
    ]
    return _WorkspacePlan(
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
        revoked=_few(others, 0.08) if others >= 3 else 0,
        outside_teams=outside,
        memberships=memberships,
    )


# -- writing ------------------------------------------------------------------


class _Writer:
    """Buffers rows per table, assigns ids, writes them in foreign-key order."""

    def __init__(self, target: Target, total: int, progress: Progress | None):
        self.target = target
        self.total = total
        self.progress = progress
        self.done = 0
        self.buffers: dict[Table, list[dict[str, Any]]] = {table: [] for table in TABLES}
        self.written: dict[Table, int] = dict.fromkeys(TABLES, 0)
        self.next_id: dict[Table, int] = {
            table: (target.scalar(select(func.max(table.c.id))) or 0) + 1
            for table in TABLES
            if "id" in table.c
        }
        self._report()

    @property
    def pending(self) -> int:
        return sum(len(rows) for rows in self.buffers.values())

    def add(self, table: Table, row: dict[str, Any]) -> int:
        """Queue a row; return the id it was given (0 for tables without one)."""
        new_id = self.next_id.get(table, 0)
        if new_id:
            row["id"] = new_id
            self.next_id[table] = new_id + 1
        self.buffers[table].append(row)
        return new_id

    def flush(self) -> None:
        for table in TABLES:
            rows = self.buffers[table]
            for start in range(0, len(rows), BATCH):
                batch = rows[start : start + BATCH]
                self.target.execute(insert(table), batch)
                self.written[table] += len(batch)
                self.done += len(batch)
                self._report()
            rows.clear()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)


def _refuse_existing(target: Target, keys: list[str], people: int) -> None:
    """Refuse before writing anything if an earlier run (or anybody) took our keys."""
    wanted = set(keys)
    taken = sorted(
        key
        for key in target.scalars(
            select(WORKSPACE.c.key).where(WORKSPACE.c.key.like(f"{KEY_PREFIX}%"))
        )
        if key in wanted
    )
    if not taken:
        taken = sorted(
            email
            for email in target.scalars(
                select(PERSON.c.email).where(PERSON.c.email.like("person-%@example.com"))
            )
            if _is_generated_email(email, people)
        )
    if taken:
        shown = ", ".join(taken[:3]) + (", …" if len(taken) > 3 else "")
        raise ValueError(
            f"the database already holds {len(taken)} of the rows this would generate "
            f"({shown}): generated data is only added to a database without it"
        )


def _write_billing_details(target: Target, keys: list[str], now: datetime) -> None:
    """Complete domestic billing details for the generated workspaces: one INSERT … SELECT.

    Without them the month close would hold every generated workspace.  No
    random draw: the generated history stays what a seed has always made.
    """
    details = BillingDetails.__table__
    for chunk in chunked(keys):
        target.execute(
            insert(details).from_select(
                ["workspace_id", "legal_name", "address_lines", "postcode", "city", "country",
                 "language", "updated_at"],
                select(
                    WORKSPACE.c.id,
                    WORKSPACE.c.name,
                    literal(["Generatorweg 1"], JSON),
                    literal("10115"),
                    literal("Berlin"),
                    literal("DE"),
                    literal("de"),
                    literal(now, UTCDateTime()),
                ).where(WORKSPACE.c.key.in_(chunk)),
            )
        )


def _is_generated_email(email: str, people: int) -> bool:
    match = EMAIL_PATTERN.fullmatch(email)
    return bool(match) and 1 <= int(match[1]) <= people and email == person_email(int(match[1]))


def _advance_sequences(target: Target, writer: _Writer) -> None:
    """Move PostgreSQL's id sequences past the ids assigned here.

    Later inserts that let the database pick the id would otherwise collide
    with generated rows.  SQLite takes the next rowid from the table itself.
    """
    dialect = target.dialect if isinstance(target, Connection) else target.get_bind().dialect
    if dialect.name != "postgresql":
        return
    for table in writer.next_id:
        if writer.written[table]:
            target.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT max(id) FROM {table.name}))"
                )
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
    rng: random.Random, plan: _WorkspacePlan, clock: _Clock, state: _SharedPeople, writer: _Writer
) -> None:
    workspace_id = writer.add(WORKSPACE, _workspace_row(rng, plan))
    teams = _write_teams(rng, plan, workspace_id, clock, writer)
    holders = _write_people(rng, plan, state, writer)
    for person_id in holders[: plan.owners]:
        writer.add(OWNER, {"workspace_id": workspace_id, "person_id": person_id})
    access = _write_access(rng, plan, workspace_id, holders, clock, writer)
    _write_memberships(rng, plan, teams, holders, access, clock, writer)


def _workspace_row(rng: random.Random, plan: _WorkspacePlan) -> dict[str, Any]:
    mailbox = None
    if plan.user_licences or rng.random() < 0.3:
        mailbox = f"invoices@{plan.key}.example.com"
    return {
        "key": plan.key,
        "name": f"{rng.choice(COMPANIES)} {rng.choice(LEGAL_FORMS)} #{plan.number}",
        "created_at": _instant(plan.created),
        "contract_variant": plan.contract_variant,
        "invoice_mailbox": mailbox,
    }


def _write_teams(
    rng: random.Random, plan: _WorkspacePlan, workspace_id: int, clock: _Clock, writer: _Writer
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
            "created_at": _instant(created),
        }
        teams.append(_Team(writer.add(TEAM, row), created))
    for archive in plan.archives:
        team = teams[archive.team]
        count = 2 * archive.periods - archive.still_archived
        points = _spaced_points(rng, team.created + 1, clock.now, count, MIN_ARCHIVE)
        for start, end in _pairs(points):
            period = {"archived_from": _instant(start), "unarchived_at": _instant(end)}
            writer.add(ARCHIVE, {"team_id": team.id, **period})
    return teams


def _pairs(points: list[int]) -> Iterator[tuple[int, int | None]]:
    """``[a, b, c, d, e]`` as ``(a, b), (c, d), (e, None)``."""
    for index in range(0, len(points), 2):
        yield points[index], points[index + 1] if index + 1 < len(points) else None


def _write_people(
    rng: random.Random, plan: _WorkspacePlan, state: _SharedPeople, writer: _Writer
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
    plan: _WorkspacePlan,
    workspace_id: int,
    holders: list[int],
    clock: _Clock,
    writer: _Writer,
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
            points = _spaced_points(rng, plan.created, clock.now, count, MIN_ACCESS)
            spans = list(_pairs(points if index in revoked else points[:-1]))
        for start, end in spans:
            writer.add(
                ACCESS,
                {
                    "workspace_id": workspace_id,
                    "person_id": person_id,
                    "granted_at": _instant(start),
                    "revoked_at": _instant(end),
                },
            )
        intervals.append(spans)
    return intervals


def _write_memberships(
    rng: random.Random,
    plan: _WorkspacePlan,
    teams: list[_Team],
    holders: list[int],
    access: list[list[tuple[int, int | None]]],
    clock: _Clock,
    writer: _Writer,
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
    for row in rng.sample(closed, _few(len(closed), 0.01)):
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
            "joined_at": _instant(joined),
            "left_at": _instant(left),
        }
        for joined, left in _pairs(points)
    ]
