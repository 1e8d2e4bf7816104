"""The pricing-rules page: who sees it, who edits, and that a bad or stale save changes nothing.

Every test works on a copy of ``pricing_rules.yaml`` in a temporary folder;
the repository's file is never written.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import stat
import threading
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from plugin.instants import format_instant
from plugin.models import AuditEntry, Workspace
from plugin.rules import RulesError
from plugin.rules.loader import MAX_BYTES
from plugin.services.licences import count_licences
from plugin.services.periods import Month
from plugin.services.quotes import MonthWindow
from plugin.services.rules_editor import (
    RulesChangedMeanwhile,
    audit_detail,
    check_draft,
    preview_totals,
    read_on_disk,
    rules_diff,
    save_rules,
)
from plugin.types import utcnow
from tests.conftest import RULES_PATH, make_app

PAGE = "/admin/billing_rules/"
CHECK = PAGE + "check"
SAVE = PAGE + "save"
TEAM_PRICE = "        model: flat\n        unit_price: 32.00\n"
NEW_TEAM_PRICE = "        model: flat\n        unit_price: 35.00\n"


@pytest.fixture
def rules_file(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    path = folder / "pricing_rules.yaml"
    shutil.copyfile(RULES_PATH, path)
    return path


@pytest.fixture
def app(database_url, rules_file):
    app = make_app(database_url, BILLING_RULES_PATH=str(rules_file))
    with app.app_context():
        yield app
        app.extensions["sqlalchemy"].session.remove()
        app.extensions["sqlalchemy"].engine.dispose()


@pytest.fixture
def client(app, demo_cli):
    client = app.test_client()
    as_role(client, "accounting")
    return client


def as_role(client, role: str):
    assert client.get(f"/demo/role/{role}").status_code == 302
    return client


def field(page: str, name: str) -> str:
    marker = (
        f'name="{name}" type="hidden" value="' if name == "csrf_token" else f'name="{name}" value="'
    )
    return html.unescape(page.split(marker)[1].split('"')[0])


def open_editor(client) -> tuple[str, str, str]:
    """The CSRF token, the expected sha256 and the text the editor starts with."""
    page = client.get(PAGE).get_data(as_text=True)
    text = page.split('name="draft"')[1].split(">", 1)[1].split("</textarea>")[0]
    return field(page, "csrf_token"), field(page, "expected_sha256"), html.unescape(text[1:])


def check(client, draft: str):
    token, expected, _ = open_editor(client)
    return client.post(
        CHECK, data={"csrf_token": token, "expected_sha256": expected, "draft": draft}
    )


def save(client, draft: str, expected: str | None = None):
    token, opened_on, _ = open_editor(client)
    return client.post(
        SAVE,
        data={"csrf_token": token, "expected_sha256": expected or opened_on, "draft": draft},
    )


def audit_entries(session) -> list[AuditEntry]:
    return session.scalars(select(AuditEntry).where(AuditEntry.action == "edit_rules")).all()


def touch_later(path) -> None:
    """A later mtime even on file systems with coarse timestamps."""
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))


def replace_in(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    touch_later(path)


def nordwind_team_licences(app, session) -> int:
    """Nordwind's team licences this month so far, counted as the page counts them."""
    rules = app.extensions["billing"].rules(app)
    now = utcnow()
    window = MonthWindow.at(Month.of(now, rules.zoneinfo), rules, now)
    teams, _ = count_licences(session, window.start, window.end)
    quantity = teams[session.scalar(select(Workspace.id).where(Workspace.key == "nordwind"))]
    # dispatch, fleet (archived on 10 November: still billed that month) and finance;
    # from December 2026 on, dispatch and finance only.
    assert quantity == (3 if window.month == Month(2026, 11) else 2)
    return quantity


def preview_cell(page: str, workspace: str, name: str) -> str:
    row = page.split(f'data-workspace="{workspace}"')[1].split("</tr>")[0]
    return html.unescape(row.split(f'class="text-right {name}">')[1].split("</td>")[0])


# Access -----------------------------------------------------------------------


def test_support_sees_the_rules_read_only(client, rules_file):
    as_role(client, "support")
    page = client.get(PAGE)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    sha256 = hashlib.sha256(rules_file.read_bytes()).hexdigest()
    assert f'<code id="rules-sha256">{sha256}</code>' in text
    assert "currency EUR (2 decimals), tax rate 19 %" in text
    assert 'id="rules-content"' in text
    assert 'id="rules-valid"' in text
    assert "<textarea" not in text
    assert CHECK not in text


def test_support_gets_403_on_the_editor_even_with_a_valid_token(client, rules_file, session):
    as_role(client, "support")
    workspace_page = client.get("/admin/billing_workspaces/w/nordwind/").get_data(as_text=True)
    token = field(workspace_page, "csrf_token")
    before = rules_file.read_bytes()
    draft = before.decode().replace(TEAM_PRICE, NEW_TEAM_PRICE)
    expected = hashlib.sha256(before).hexdigest()
    for url in (CHECK, SAVE):
        response = client.post(
            url, data={"csrf_token": token, "expected_sha256": expected, "draft": draft}
        )
        assert response.status_code == 403
        assert "edit_rules" in response.get_data(as_text=True)
    assert rules_file.read_bytes() == before
    assert audit_entries(session) == []


def test_admin_reads_the_rules_and_their_prices_but_may_not_edit(client, rules_file, session):
    as_role(client, "admin")
    page = client.get(PAGE)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'id="rules-valid"' in text
    assert "<textarea" not in text
    assert CHECK not in text
    # The team licences' price versions as a table, the one in force today marked.
    table = text.split('id="rules-prices-team_licences"')[1].split("</table>")[0]
    rows = re.findall(r'<tr class="price-version[^"]*" data-from="([^"]+)">(.*?)</tr>', table, re.S)
    cells = {start: " ".join(re.sub(r"<[^>]+>", " ", row).split()) for start, row in rows}
    assert cells["2023-03-01"].startswith("2023-03-01 2025-12-31 flat: every licence")
    assert "29.00 EUR" in cells["2023-03-01"]
    assert "32.00 EUR" in cells["2026-01-01"]
    assert "in force" in cells["2026-01-01"]
    before = rules_file.read_bytes()
    workspace_page = client.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True)
    token = field(workspace_page, "csrf_token")
    for url in (CHECK, SAVE):
        response = client.post(url, data={"csrf_token": token, "draft": "x"})
        assert response.status_code == 403
        assert "edit_rules" in response.get_data(as_text=True)
    assert rules_file.read_bytes() == before
    assert audit_entries(session) == []


def test_accounting_gets_the_editor_on_the_file_on_disk(client, rules_file):
    token, expected, text = open_editor(client)
    assert token
    assert expected == hashlib.sha256(rules_file.read_bytes()).hexdigest()
    assert text == rules_file.read_text(encoding="utf-8")


# Checking a draft ---------------------------------------------------------------


def test_a_broken_draft_shows_every_error_with_its_line_and_changes_nothing(
    client, rules_file, session
):
    before = rules_file.read_bytes()
    draft = (
        before.decode()
        .replace("tax_rate: 0.19", "tax_rate: 1.19")
        .replace("timezone: Europe/Berlin", "timezone: Europe/Bärlin")
    )
    response = check(client, draft)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    errors = text.split('id="rules-draft-errors"')[1].split("</ul>")[0]
    assert errors.count('class="rules-error"') == 2
    assert '<span class="badge badge-danger mr-1">line 24</span>' in errors
    assert "<code>tax_rate</code>" in errors
    assert '<span class="badge badge-danger mr-1">line 28</span>' in errors
    assert "<code>timezone</code>" in errors
    assert "Bärlin" in text  # the draft stays in the editor, to be fixed
    assert 'id="rules-save"' not in text
    assert rules_file.read_bytes() == before
    assert audit_entries(session) == []


def test_a_valid_draft_shows_the_diff_and_this_months_totals_side_by_side(
    app, client, rules_file, session
):
    before = rules_file.read_bytes()
    draft = before.decode().replace(TEAM_PRICE, NEW_TEAM_PRICE)
    response = check(client, draft)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    diff = html.unescape(text.split('id="rules-diff">')[1].split("</pre>")[0])
    assert '<span class="diff-line diff-removed">-        unit_price: 32.00</span>' in diff
    assert '<span class="diff-line diff-added">+        unit_price: 35.00</span>' in diff
    assert "tax_rate" not in diff
    quantity = nordwind_team_licences(app, session)
    assert preview_cell(text, "nordwind", "current-quantity") == str(quantity)
    assert preview_cell(text, "nordwind", "current-net") == f"{quantity * Decimal('32.00')} EUR"
    assert preview_cell(text, "nordwind", "draft-net") == f"{quantity * Decimal('35.00')} EUR"
    gross = (quantity * Decimal("35.00") * Decimal("1.19")).quantize(Decimal("0.01"))
    assert preview_cell(text, "nordwind", "draft-gross") == f"{gross} EUR"
    assert preview_cell(text, "nordwind", "net-change") == f"+{quantity * Decimal('3.00')}"
    # A user-licence workspace is not affected by the team price.
    assert preview_cell(text, "acme", "current-net") == preview_cell(text, "acme", "draft-net")
    assert 'id="rules-save"' in text
    assert rules_file.read_bytes() == before


def test_the_preview_names_a_workspace_the_draft_cannot_price(app, session, demo_cli):
    in_force = app.extensions["billing"].rules(app)
    now = utcnow()
    # The draft's team-licence prices start only after this month, whenever the test runs.
    later = Month.of(now, in_force.zoneinfo).next()
    draft = check_draft(
        in_force.content.replace(
            "effective_from: 2023-03-01\n        model: flat",
            f"effective_from: {later.first_day}\n        model: flat",
        ).replace(
            "effective_from: 2026-01-01\n        model: flat",
            f"effective_from: {later.next().first_day}\n        model: flat",
        )
    )
    rows = {row.workspace_key: row for row in preview_totals(session, in_force, draft, now)}
    assert rows["nordwind"].current.error is None
    assert "no price version of team_licences" in rows["nordwind"].draft.error
    assert rows["nordwind"].draft.net is None
    assert rows["nordwind"].changed
    assert rows["initech"].draft.error is None  # its contract has its own prices
    assert not rows["acme"].changed


def test_hostile_text_in_a_draft_is_shown_as_text(client, rules_file):
    draft = rules_file.read_text(encoding="utf-8") + "# <script>alert(1)</script>\n"
    text = check(client, draft).get_data(as_text=True)
    assert "<script>alert(1)" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_a_draft_over_the_size_limit_is_refused_clearly(client, rules_file):
    draft = rules_file.read_text(encoding="utf-8") + "#" * MAX_BYTES + "\n"
    text = check(client, draft).get_data(as_text=True)
    assert "the file is too large" in text
    assert 'id="rules-save"' not in text


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(client):
    token, expected, _ = open_editor(client)
    draft = "#" * (4 * MAX_BYTES)
    response = client.post(
        CHECK, data={"csrf_token": token, "expected_sha256": expected, "draft": draft}
    )
    assert response.status_code == 413


# Saving ---------------------------------------------------------------------------


def test_saving_replaces_the_file_atomically_and_the_app_bills_with_it(
    app, client, rules_file, session
):
    rules_file.chmod(0o640)
    old_inode = rules_file.stat().st_ino
    before = app.extensions["billing"].rules(app)
    # What a browser sends: the textarea's lines end in CR LF.
    draft = before.content.replace(TEAM_PRICE, NEW_TEAM_PRICE)
    response = save(client, draft.replace("\n", "\r\n"))
    assert response.status_code == 302
    assert response.headers["Location"].endswith(PAGE)

    assert rules_file.read_text(encoding="utf-8") == draft
    assert stat.S_IMODE(rules_file.stat().st_mode) == 0o640
    assert rules_file.stat().st_ino != old_inode
    assert [path.name for path in rules_file.parent.iterdir()] == [rules_file.name]

    after = app.extensions["billing"].rules(app)
    assert after.sha256 == hashlib.sha256(draft.encode()).hexdigest()
    assert str(after.variants["team_licences"][1].unit_price) == "35.00"

    [entry] = audit_entries(session)
    assert entry.actor == "demo-accounting"
    assert entry.target == "pricing_rules.yaml"
    assert entry.before == {"sha256": before.sha256}
    assert entry.after == {"sha256": after.sha256}
    assert "-        unit_price: 32.00" in entry.detail
    assert "+        unit_price: 35.00" in entry.detail

    page = client.get(PAGE).get_data(as_text=True)
    assert "billing uses the new rules from now on" in page
    assert f'<code id="rules-sha256">{after.sha256}</code>' in page


def test_a_save_with_a_stale_sha256_is_refused_and_changes_nothing(client, rules_file, session):
    token, opened_on, text = open_editor(client)
    replace_in(rules_file, "tax_rate: 0.19", "tax_rate: 0.07")  # somebody else saves
    meanwhile = rules_file.read_bytes()
    draft = text.replace(TEAM_PRICE, NEW_TEAM_PRICE)

    checked = client.post(
        CHECK, data={"csrf_token": token, "expected_sha256": opened_on, "draft": draft}
    ).get_data(as_text=True)
    assert 'id="rules-moved-on"' in checked

    response = client.post(
        SAVE, data={"csrf_token": token, "expected_sha256": opened_on, "draft": draft}
    )
    assert response.status_code == 409
    assert "changed meanwhile" in response.get_data(as_text=True)
    assert rules_file.read_bytes() == meanwhile
    assert audit_entries(session) == []


def test_a_broken_draft_is_not_saved(client, rules_file, session):
    before = rules_file.read_bytes()
    response = save(client, before.decode().replace("tax_rate: 0.19", "tax_rate: 1.19"))
    assert response.status_code == 422
    assert "line 24" in response.get_data(as_text=True)
    assert rules_file.read_bytes() == before
    assert audit_entries(session) == []


@pytest.mark.parametrize("url", [CHECK, SAVE])
@pytest.mark.parametrize("token", [None, "forged"])
def test_posts_without_a_valid_csrf_token_are_refused(client, rules_file, session, url, token):
    _, expected, text = open_editor(client)
    before = rules_file.read_bytes()
    data = {"expected_sha256": expected, "draft": text.replace(TEAM_PRICE, NEW_TEAM_PRICE)}
    if token:
        data["csrf_token"] = token
    assert client.post(url, data=data).status_code == 400
    assert rules_file.read_bytes() == before
    assert audit_entries(session) == []


# A rejected reload ---------------------------------------------------------------------


def test_a_rejected_reload_shows_its_errors_while_billing_keeps_the_old_rules(
    app, client, rules_file, session
):
    billing = app.extensions["billing"]
    before = billing.rules(app)
    replace_in(rules_file, "unit_price: 32.00", "unit_price: -32.00")
    replace_in(rules_file, "tax_rate: 0.19", "tax_rate: 1.19")

    as_role(client, "support")
    text = client.get(PAGE).get_data(as_text=True)
    alert = text.split('id="rules-rejected"')[1].split("</div>")[0]
    loaded_at = format_instant(billing.rules_store(app).loaded_at, billing.rules(app).zoneinfo)
    assert f"billing still uses the rules loaded at {loaded_at}." in alert
    assert '<span class="badge badge-danger mr-1">line 24</span>' in alert
    assert '<span class="badge badge-danger mr-1">line 80</span>' in alert
    assert "must not be negative" in alert
    assert f'<code id="rules-sha256">{before.sha256}</code>' in text
    assert billing.rules(app) is before

    # Accounting fixes the file in the editor, which starts from the broken text.
    as_role(client, "accounting")
    _, expected, broken = open_editor(client)
    assert "unit_price: -32.00" in broken
    assert expected == hashlib.sha256(rules_file.read_bytes()).hexdigest()
    fixed = broken.replace("unit_price: -32.00", "unit_price: 32.00").replace(
        "tax_rate: 1.19", "tax_rate: 0.19"
    )
    assert save(client, fixed, expected).status_code == 302
    assert billing.rules_store(app).current() == before
    assert billing.rules_store(app).last_error is None
    [entry] = audit_entries(session)
    assert entry.before == {"sha256": before.sha256, "file_sha256": expected}
    assert entry.detail == "(no change)"
    assert 'id="rules-valid"' in client.get(PAGE).get_data(as_text=True)


# The service on its own -------------------------------------------------------------------


def test_save_rules_refuses_an_invalid_draft_and_a_changed_file(rules_file):
    original = rules_file.read_bytes()
    sha256 = hashlib.sha256(original).hexdigest()
    with pytest.raises(RulesError) as invalid:
        save_rules(rules_file, "currency: EURO\n", expected_sha256=sha256)
    assert any("currency" in str(error) for error in invalid.value.errors)
    with pytest.raises(RulesChangedMeanwhile, match="changed meanwhile"):
        save_rules(rules_file, original.decode(), expected_sha256="0" * 64)
    assert rules_file.read_bytes() == original


def test_two_saves_opened_on_the_same_file_never_both_win(rules_file):
    original = rules_file.read_text(encoding="utf-8")
    sha256 = hashlib.sha256(original.encode()).hexdigest()
    drafts = [original.replace("unit_price: 32.00", f"unit_price: {33 + n}.00") for n in range(12)]
    outcomes: list[str] = []
    start = threading.Barrier(len(drafts))

    def attempt(draft: str) -> None:
        start.wait()
        try:
            save_rules(rules_file, draft, expected_sha256=sha256)
            outcomes.append(draft)
        except RulesChangedMeanwhile:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(draft,)) for draft in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [outcome for outcome in outcomes if outcome != "refused"]
    assert len(winners) == 1
    assert rules_file.read_text(encoding="utf-8") == winners[0]


def test_a_missing_file_is_written_again_from_the_editor(rules_file):
    text = rules_file.read_text(encoding="utf-8")
    rules_file.unlink()
    disk = read_on_disk(rules_file, missing_text=text)
    assert (disk.text, disk.sha256) == (text, "")
    save_rules(rules_file, disk.text, expected_sha256=disk.sha256)
    assert rules_file.read_text(encoding="utf-8") == text


def test_rules_diff_ignores_line_ends_and_audit_detail_is_bounded():
    assert rules_diff("a: 1\nb: 2\n", "a: 1\r\nb: 2\r\n") == []
    diff = rules_diff("a: 1\n", "a: 2\n")
    assert diff[-2:] == ["-a: 1", "+a: 2"]
    long = [f"+line {n}" for n in range(10_000)]
    detail = audit_detail(long, limit=1_000)
    assert len(detail) < 1_100
    assert detail.endswith("more diff line(s) not kept)")
    assert audit_detail([]) == "(no change)"


def preview_vat(page: str, workspace: str, side: str) -> str:
    row = page.split(f'data-workspace="{workspace}"')[1].split("</tr>")[0]
    return " ".join(html.unescape(row.split(f'class="{side}-vat">')[1].split("<")[0]).split())


def test_the_preview_taxes_each_workspace_as_the_close_does(
    client, customers_cli, rules_file
):
    """Reverse charge and outside the EU at 0 % under both rules, even when the draft
    raises the standard rate; a held workspace is named as held."""
    draft = rules_file.read_text(encoding="utf-8").replace("tax_rate: 0.19", "tax_rate: 0.20")
    text = check(client, draft).get_data(as_text=True)
    for key, vat in (("acme-sarl", "AE 0 %"), ("maple", "O 0 %")):
        for side in ("current", "draft"):
            assert preview_vat(text, key, side) == vat
            net = preview_cell(text, key, f"{side}-net")
            assert preview_cell(text, key, f"{side}-gross") == net
        row = text.split(f'data-workspace="{key}"')[1].split(">")[0]
        assert "table-warning" not in row  # not billed differently by the draft
    assert preview_vat(text, "nordwind", "current") == "S 19 %"
    assert preview_vat(text, "nordwind", "draft") == "S 20 %"
    net = Decimal(preview_cell(text, "nordwind", "draft-net").split()[0])
    gross = (net * Decimal("1.20")).quantize(Decimal("0.01"))
    assert preview_cell(text, "nordwind", "draft-gross") == f"{gross} EUR"
    held = text.split('data-workspace="brightside"')[1].split("</tr>")[0]
    assert "held: billing details incomplete" in held
    assert "held: billing details incomplete" not in text.split('data-workspace="maple"')[1].split(
        "</tr>")[0]


# The what-if month ---------------------------------------------------------------


LATER_TEAM_PRICE = TEAM_PRICE + "      - effective_from: 2027-01-01\n" + NEW_TEAM_PRICE


def preview_basis(page: str) -> tuple[str, str]:
    """The month the preview prices (its heading) and how many workspaces change."""
    heading = html.unescape(page.split('id="rules-preview-heading">')[1].split("</h4>")[0])
    changed = page.split('id="rules-preview-changed">')[1].split("</span>")[0]
    return heading, changed


def test_the_preview_starts_at_the_first_month_whose_prices_change(client, rules_file):
    """A price rise from 2027-01 is previewed in 2027-01, not in this month (where nothing
    changes), from the licences counted so far."""
    rise = max(Month(2027, 1), Month.of(utcnow(), ZoneInfo("Europe/Berlin")))
    draft = rules_file.read_text().replace(TEAM_PRICE, LATER_TEAM_PRICE, 1)
    response = check(client, draft)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    heading, changed = preview_basis(page)
    assert heading == f"What-if: {rise} per workspace"
    assert not changed.startswith("0 of")
    assert preview_cell(page, "nordwind", "draft-net").startswith(
        str(Decimal(preview_cell(page, "nordwind", "draft-quantity")) * Decimal("35.00"))
    )
    if rise == Month(2027, 1):
        assert "priced with the prices of 2027-01" in page
    # The draft's price table shows the new version.
    assert 'data-from="2027-01-01"' in page.split('id="draft-prices"')[1]


def test_the_preview_month_can_be_chosen_and_a_bad_one_is_refused(client, rules_file, session):
    before = rules_file.read_bytes()
    draft = before.decode().replace(TEAM_PRICE, LATER_TEAM_PRICE, 1)
    token, expected, _ = open_editor(client)
    this_month = utcnow().astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m")
    form = {"csrf_token": token, "expected_sha256": expected, "draft": draft}
    chosen = client.post(CHECK, data={**form, "month": this_month}).get_data(as_text=True)
    assert preview_basis(chosen) == (
        f"What-if: {this_month} per workspace",
        f"0 of {chosen.count('data-workspace=')} workspace(s) would be billed differently.",
    )
    for bad, message in (("2026-13", "2026-13 is not a month"), ("soon", "'soon' is not a month")):
        refused = client.post(CHECK, data={**form, "month": bad})
        assert refused.status_code == 422
        page = refused.get_data(as_text=True)
        error = html.unescape(page.split('id="preview-month-error">')[1].split("</div>")[0])
        assert message in error
    assert rules_file.read_bytes() == before
    assert audit_entries(session) == []
