"""Control and bidirectional characters: refused on every path that stores text, with the
place and the character named, nothing changed; shown as ``<U+XXXX>`` where rows stored
before reach a PDF, an e-invoice, a mail or an export.  On SQLite and PostgreSQL.

One list of hostile characters (``tests.helpers.HOSTILE_CHARACTERS``) is fed to each path:
the import file (YAML and JSON), :mod:`plugin.api` and its services, the ``flask billing``
commands, the admin forms and the CSV upload, and the rules file.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import shutil

import pytest
from sqlalchemy import select, text

from plugin import api, validators
from plugin.einvoice import extract_xml, validate
from plugin.models import BillingDetails, Invoice, OutboxMail, Person, Team, Workspace
from plugin.rules import RulesError, load_rules
from plugin.services.billing_details import BillingDetailsError, set_billing_details
from plugin.services.exports import CSV_BATCH_ROWS, CsvText, export_licence_holders
from plugin.services.invoice_pdfs import stored_pdf
from plugin.services.invoicing import InvoicingError, issue_credit_note
from plugin.services.mailbox import MailboxError, change_mailbox, workspace_id_for
from plugin.services.periods import Month
from plugin.types import utcnow
from tests import test_admin_rules
from tests.conftest import CUSTOMERS
from tests.helpers import HARMLESS_TEXTS, HOSTILE_CHARACTERS, hostile, refusal, snapshot
from tests.rules.conftest import BASE
from tests.test_admin_lists import csrf
from tests.test_einvoice_pipeline import MONTH, invoice_of, pdftotext
from tests.test_einvoice_pipeline import text as xml_text
from tests.test_exports import csv_rows, xlsx_rows
from tests.test_outbox import MAILED, deliver, issue, number_of, smtp_servers

CHARACTERS = [
    pytest.param(character, description, id=f"U+{ord(character):04X}")
    for character, description in HOSTILE_CHARACTERS
]
ACTOR = "hostile-text-test"
DORA = "dora@mueller-soehne.example"


#: The app on a copy of the rules, which the rules editor may save into.
app, rules_file = test_admin_rules.app, test_admin_rules.rules_file


@pytest.fixture
def smtp(app):
    yield from smtp_servers(app)


def no_raw(output: str, character: str) -> None:
    """A message shows the character as an escape, never itself (a line feed may end a line)."""
    if character != "\n":
        assert character not in output, (character, output)


# The import file -----------------------------------------------------------------------


def import_document(character: str) -> tuple[dict, dict[str, str]]:
    """An import file with every kind of text hostile, and the hostile values by error path."""
    values = {
        "workspaces[0].name": hostile("Acme GmbH", character),
        "workspaces[0].invoice_mailbox": hostile("rechnungen@acme.example", character),
        "workspaces[0].billing_details.legal_name": hostile("Acme Europe GmbH", character),
        "workspaces[0].billing_details.street": hostile("Hauptstraße 1", character),
        "workspaces[0].members[0].email": hostile("anna@acme.example", character),
        "workspaces[0].members[1].name": hostile("Bernd Beispiel", character),
        "workspaces[0].teams[0].key": hostile("sales", character),
        "workspaces[0].teams[0].name": hostile("Vertrieb", character),
        "workspaces[1].key": hostile("globex", character),
    }
    document = {"workspaces": [
        {
            "key": "acme",
            "name": values["workspaces[0].name"],
            "created": "2022-05-10",
            "invoice_mailbox": values["workspaces[0].invoice_mailbox"],
            "billing_details": {
                "legal_name": values["workspaces[0].billing_details.legal_name"],
                "street": values["workspaces[0].billing_details.street"],
                "city": "Berlin",
                "country": "DE",
            },
            "members": [
                {"email": values["workspaces[0].members[0].email"], "joined": "2022-05-10"},
                {
                    "email": "bernd@acme.example",
                    "name": values["workspaces[0].members[1].name"],
                    "joined": "2022-05-10",
                },
            ],
            "teams": [{
                "key": values["workspaces[0].teams[0].key"],
                "name": values["workspaces[0].teams[0].name"],
                "created": "2022-05-10",
            }],
        },
        {"key": values["workspaces[1].key"], "name": "Globex", "created": "2022-05-10"},
    ]}
    return document, values


def as_yaml(value: object, indent: int = 0, *, escaped: bool = True) -> list[str]:
    """Block YAML of ``value``, every text double-quoted.

    ``escaped``: every character outside ASCII written as a ``\\uXXXX`` escape (as
    JSON's, which YAML reads alike), else only the C0 controls.
    """
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list):
                lines += [f"{pad}{key}:", *as_yaml(item, indent + 1, escaped=escaped)]
            else:
                lines.append(f"{pad}{key}: {json.dumps(item, ensure_ascii=escaped)}")
    else:
        for item in value:
            inner = as_yaml(item, indent + 1, escaped=escaped)
            lines += [f"{pad}- {inner[0].lstrip()}", *inner[1:]]
    return lines


def line_of(document: str, value: str) -> int:
    (number,) = [n for n, line in enumerate(document.splitlines(), 1) if json.dumps(value) in line]
    return number


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize(("character", "description"), CHARACTERS)
def test_the_import_refuses_every_hostile_text_at_its_line(
    cli, session, tmp_path, fmt, character, description
):
    document, values = import_document(character)
    content = (
        json.dumps(document, indent=2) if fmt == "json" else "\n".join(as_yaml(document)) + "\n"
    )
    path = tmp_path / f"import.{fmt}"
    path.write_text(content, encoding="utf-8")
    before = snapshot(session)
    result = cli("import", str(path))
    # A located error and exit status 1 on PostgreSQL too, not a DataError traceback.
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    errors = result.output.splitlines()
    for where, value in values.items():
        prefix = f"import.{fmt}: line {line_of(content, value)}: {where}: "
        (found,) = [line for line in errors if line.startswith(prefix)]
        assert refusal(description) in found, (where, result.output)
    assert errors[-1] == f"Error: {len(errors) - 1} error(s) in import.{fmt}; nothing was imported."
    no_raw(result.output, character)
    session.expire_all()
    assert snapshot(session) == before


def test_a_lone_surrogate_in_a_json_import_is_refused_at_its_line(cli, session, tmp_path):
    path = tmp_path / "import.json"
    path.write_text(
        '{"workspaces": [\n  {"key": "acme", "created": "2022-05-10",\n'
        '   "name": "Ac\\ud800me"}\n]}\n',
        encoding="utf-8",
    )
    before = snapshot(session)
    result = cli("import", str(path))
    assert result.exit_code == 1
    assert (
        "import.json: line 3: workspaces[0].name: contains the lone surrogate U+D800 "
        "at character 3" in result.output
    )
    assert snapshot(session) == before


def test_harmless_texts_are_imported_as_written(cli, session, tmp_path):
    document = {"workspaces": [
        {
            "key": f"ws{index}",
            "name": name,
            "created": "2022-05-10",
            "billing_details": {"legal_name": name, "city": name, "country": "DE"},
            "members": [{"email": f"p{index}@example.com", "name": name, "joined": "2022-05-10"}],
            "teams": [{"key": "team", "name": name, "created": "2022-05-10"}],
        }
        for index, name in enumerate(HARMLESS_TEXTS)
    ]}
    path = tmp_path / "import.yaml"
    path.write_text("\n".join(as_yaml(document, escaped=False)) + "\n", encoding="utf-8")
    result = cli("import", str(path))
    assert result.exit_code == 0, result.output
    stored = session.execute(
        select(Workspace.name, BillingDetails.legal_name, BillingDetails.city)
        .join(BillingDetails).order_by(Workspace.key)
    ).all()
    assert stored == [(name, name, name) for name in HARMLESS_TEXTS]
    assert session.scalars(select(Team.name).order_by(Team.id)).all() == HARMLESS_TEXTS
    assert session.scalars(select(Person.name).order_by(Person.email)).all() == HARMLESS_TEXTS


# The API and its services ------------------------------------------------------------


def api_calls(character: str, session) -> list[tuple[str, object, str]]:
    """(what, call, the argument it must name) for each text a call of the API stores."""
    name, key = hostile("New Name", character), hostile("newco", character)
    email = hostile("neu@example.com", character)
    return [
        ("create_workspace key", lambda: api.create_workspace(
            key=key, name="New", actor=ACTOR), "key"),
        ("create_workspace name", lambda: api.create_workspace(
            key="newco", name=name, actor=ACTOR), "name"),
        ("create_workspace owner", lambda: api.create_workspace(
            key="newco", name="New", owner_email=email, actor=ACTOR), "owner_email"),
        ("create_workspace owner name", lambda: api.create_workspace(
            key="newco", name="New", owner_email="neu@example.com", owner_name=name,
            actor=ACTOR), "owner_name"),
        ("rename_workspace", lambda: api.rename_workspace(
            workspace="acme", name=name, actor=ACTOR), "name"),
        ("create_team key", lambda: api.create_team(
            workspace="acme", key=key, name="New", actor=ACTOR), "key"),
        ("create_team name", lambda: api.create_team(
            workspace="acme", key="newteam", name=name, actor=ACTOR), "name"),
        ("rename_team", lambda: api.rename_team(
            workspace="acme", team="sales", name=name, actor=ACTOR), "name"),
        ("invite email", lambda: api.invite(workspace="acme", email=email, actor=ACTOR), "email"),
        ("invite name", lambda: api.invite(
            workspace="acme", email="neu@example.com", name=name, actor=ACTOR), "name"),
        ("rename_person", lambda: api.rename_person(email=DORA, name=name, actor=ACTOR), "name"),
        ("change_email", lambda: api.change_email(
            email=DORA, new_email=email, actor=ACTOR), "new_email"),
        ("set_billing_details", lambda: set_billing_details(
            session, "acme", {"legal_name": name}, actor=ACTOR), "acme: legal_name"),
        ("set_billing_details street", lambda: set_billing_details(
            session, "acme", {"address_lines": ["Main St", name]}, actor=ACTOR), "acme: street"),
        ("change_mailbox", lambda: change_mailbox(
            session, workspace_id_for(session, "acme"), email, actor=ACTOR, now=utcnow()), ""),
    ]


def test_the_api_refuses_every_hostile_text_naming_the_argument(demo_cli, session):
    before = snapshot(session)
    for character, description in HOSTILE_CHARACTERS:
        for what, call, argument in api_calls(character, session):
            with pytest.raises((api.ManagementError, BillingDetailsError, MailboxError)) as refused:
                call()
            session.rollback()
            error = refused.value
            message = (
                error.errors.get(argument, "") if isinstance(error, BillingDetailsError)
                else str(error)
            )
            assert refusal(description) in message, (what, character, str(error))
            assert getattr(error, "field", argument) == argument, (what, character)
            no_raw(str(error), character)
    session.expire_all()
    assert snapshot(session) == before


def assert_harmless_names(session) -> None:
    """Workspaces ws0, ws1 … and their team ``team`` are called :data:`HARMLESS_TEXTS`."""
    session.expire_all()
    keys = [f"ws{index}" for index in range(len(HARMLESS_TEXTS))]
    assert session.scalars(
        select(Workspace.name).where(Workspace.key.in_(keys)).order_by(Workspace.key)
    ).all() == HARMLESS_TEXTS
    assert session.scalars(
        select(Team.name).join(Workspace).where(Workspace.key.in_(keys)).order_by(Workspace.key)
    ).all() == HARMLESS_TEXTS


def test_the_api_stores_harmless_texts_as_given(demo_cli, session):
    for index, name in enumerate(HARMLESS_TEXTS):
        api.create_workspace(
            key=f"ws{index}", name=name, owner_email=f"p{index}@example.com", owner_name=name,
            actor=ACTOR,
        )
        api.create_team(workspace=f"ws{index}", key="team", name=name, actor=ACTOR)
        set_billing_details(session, f"ws{index}", {"legal_name": name}, actor=ACTOR)
        session.commit()
    assert_harmless_names(session)
    assert session.scalars(
        select(Person.name).where(Person.email.like("p_@example.com")).order_by(Person.email)
    ).all() == HARMLESS_TEXTS
    assert session.scalars(
        select(BillingDetails.legal_name).join(Workspace).where(Workspace.key.like("ws_"))
        .order_by(Workspace.key)
    ).all() == HARMLESS_TEXTS


# The flask billing commands ----------------------------------------------------------


def commands(character: str, invoice: str) -> list[tuple[tuple[str, ...], str]]:
    """(arguments, how the error line starts: the parameter at fault) for each text stored."""
    name, key = hostile("New Name", character), hostile("newco", character)
    email = hostile("neu@example.com", character)
    calls = [
        (("create-workspace", key, "New"), "Error: KEY: "),
        (("create-workspace", "newco", name), "Error: NAME: "),
        (("create-workspace", "newco", "New", "--owner", email), "Error: --owner: "),
        (("create-workspace", "newco", "New", "--owner", "neu@example.com",
          "--owner-name", name), "Error: --owner-name: "),
        (("rename-workspace", "acme", name), "Error: NAME: "),
        (("create-team", "acme", key, "New"), "Error: KEY: "),
        (("create-team", "acme", "newteam", name), "Error: NAME: "),
        (("rename-team", "acme", "sales", name), "Error: NAME: "),
        (("invite", "acme", email), "Error: EMAIL: "),
        (("invite", "acme", "neu@example.com", "--name", name), "Error: --name: "),
        (("rename-person", DORA, name), "Error: NAME: "),
        (("change-email", DORA, email), "Error: NEW_EMAIL: "),
        (("set-billing-details", "acme", "--legal-name", name), "--legal-name: "),
        (("set-billing-details", "acme", "--street", "Main St", "--street", name), "--street: "),
        (("set-billing-details", "acme", "--city", name), "--city: "),
        (("set-mailbox", "acme", email), f"Error: {email!r} "),
    ]
    if character not in "\r\n":  # a credit note's reason may have several lines
        calls.append(
            (("credit-note", invoice, "--reason", hostile("Doppelt", character)),
             "Error: the reason ")
        )
    return calls


def test_every_command_refuses_every_hostile_text_naming_the_parameter(demo_cli, app, session):
    (invoice, *_) = issue(session, app, "2026-10")
    before = snapshot(session)
    for character, description in HOSTILE_CHARACTERS:
        for arguments, start in commands(character, invoice):
            result = demo_cli(*arguments)
            assert result.exit_code == 1, (arguments, result.output)
            (line,) = [line for line in result.output.splitlines() if refusal(description) in line]
            assert line.startswith(start), (arguments, result.output)
            no_raw(result.output, character)
            session.expire_all()
    assert snapshot(session) == before


def test_a_credit_note_reason_may_have_several_lines(demo_cli, app, session):
    invoice, other, *_ = issue(session, app, "2026-10")
    result = demo_cli("credit-note", invoice, "--reason", "Doppelt berechnet.\r\nSiehe Ticket 42.")
    assert result.exit_code == 0, result.output
    reason = session.scalar(
        select(Invoice.reason).where(Invoice.credits_invoice_id.is_not(None))
    )
    assert reason == "Doppelt berechnet.\nSiehe Ticket 42."
    with pytest.raises(InvoicingError, match="contains a tab") as refused:
        issue_credit_note(session, app.extensions["billing"].rules(),
                          other, "a\tb", utcnow(), actor=ACTOR)
    assert refused.value.field == "reason"


# The admin forms ---------------------------------------------------------------------


def as_role(client, role: str):
    """The same client in another demo role (one client: the CSRF token is kept in ``g``,
    which every request of a test shares)."""
    assert client.get(f"/demo/role/{role}").status_code == 302
    return client


def error_with_id(page: str, element_id: str) -> str:
    """The text of the refusal shown under a field (its element's id), unescaped."""
    (found,) = re.findall(rf'id="{re.escape(element_id)}">(.*?)</div>', page, re.S)
    return html.unescape(found)


def support_forms(character: str, dora: int) -> list[tuple[str, dict[str, str], str]]:
    """(URL, fields, id of the element under the field that must show the refusal)."""
    name, key = hostile("New Name", character), hostile("newco", character)
    email = hostile("neu@example.com", character)
    manage = "/admin/billing_workspaces/w/acme/manage/"
    person = f"/admin/billing_people/p/{dora}/"
    return [
        ("/admin/billing_workspaces/new-workspace", {"key": key, "name": "New"},
         "new-workspace-key-error"),
        ("/admin/billing_workspaces/new-workspace", {"key": "newco", "name": name},
         "new-workspace-name-error"),
        (manage + "rename_workspace", {"name": name}, "rename-workspace-name-error"),
        (manage + "create_team", {"key": key, "name": "New"}, "create-team-key-error"),
        (manage + "create_team", {"key": "newteam", "name": name}, "create-team-name-error"),
        (manage + "rename_team", {"team": "sales", "name": name}, "rename-sales-error"),
        (manage + "invite", {"email": email, "name": ""}, "invite-email-error"),
        (manage + "invite", {"email": "neu@example.com", "name": name}, "invite-name-error"),
        (person + "rename_person", {"name": name}, "rename-person-name-error"),
        (person + "change_email", {"new_email": email}, "change-email-new_email-error"),
    ]


DETAILS = {
    "legal_name": "Acme GmbH", "street": "Hauptstraße 1", "street2": "", "street3": "",
    "postcode": "10115", "city": "Berlin", "country": "DE", "vat_id": "", "buyer_reference": "",
    "order_reference": "", "language": "de", "email": "",
}


def test_every_admin_form_refuses_every_hostile_text_under_its_field(
    app, demo_cli, session, rules_file
):
    (invoice, *_) = issue(session, app, "2026-10")
    client = as_role(app.test_client(), "support")
    token = csrf(client.get("/admin/billing_workspaces/new-workspace").get_data(as_text=True))
    dora = session.scalar(select(Person.id).where(Person.email == DORA))
    acme = workspace_id_for(session, "acme")
    rules_text = rules_file.read_text(encoding="utf-8")
    before = snapshot(session)
    for character, description in HOSTILE_CHARACTERS:
        expected = refusal(description)
        as_role(client, "support")
        for url, fields, element_id in support_forms(character, dora):
            response = client.post(url, data={"csrf_token": token, **fields})
            assert response.status_code == 422, (url, fields)
            assert expected in error_with_id(response.get_data(as_text=True), element_id), url
        name = hostile("Acme GmbH", character)
        accounting = as_role(client, "accounting")
        for field in ("legal_name", "street", "city"):
            page = accounting.post(
                "/admin/billing_details/w/acme",
                data={"csrf_token": token, **DETAILS, field: name},
            ).get_data(as_text=True)
            assert expected in error_with_id(page, f"error-{field}"), field
        upload = io.StringIO()
        csv.writer(upload).writerows([["key", "legal_name", "city"], ["acme", "Acme", name]])
        page = accounting.post(
            "/admin/billing_details/upload",
            data={"csrf_token": token,
                  "file": (io.BytesIO(upload.getvalue().encode()), "details.csv")},
        ).get_data(as_text=True)
        assert f"row 2: city: {expected}" in html.unescape(page)
        page = accounting.post(
            f"/admin/billing_workspaces/mailbox?ids={acme}",
            data={"csrf_token": token, "address": hostile("neu@example.com", character)},
        ).get_data(as_text=True)
        assert "Nothing was changed: " in page
        assert expected in html.unescape(page)
        if character not in "\r\n":
            page = accounting.post(
                f"/admin/billing_invoices/credit/{invoice}",
                data={"csrf_token": token, "reason": hostile("Doppelt", character)},
            ).get_data(as_text=True)
            assert f"the reason {expected}" in html.unescape(page)
        draft = rules_text.replace(
            "  name: Wolkenwerk Software GmbH",
            f"  name: {json.dumps(hostile('Wolkenwerk Software GmbH', character))}",
        )
        line = rules_text.splitlines().index("  name: Wolkenwerk Software GmbH") + 1
        response = accounting.post(
            "/admin/billing_rules/save",
            data={"csrf_token": token, "draft": draft,
                  "expected_sha256": hashlib.sha256(rules_text.encode()).hexdigest()},
        )
        assert response.status_code == 422
        shown = re.sub(r"<[^>]+>", "", response.get_data(as_text=True))
        assert f"line {line}\n    seller.name: {expected}" in html.unescape(shown)
    session.expire_all()
    assert snapshot(session) == before
    assert rules_file.read_text(encoding="utf-8") == rules_text


def test_the_admin_forms_store_harmless_texts_as_given(app, demo_cli, session):
    support = as_role(app.test_client(), "support")
    token = csrf(support.get("/admin/billing_workspaces/new-workspace").get_data(as_text=True))
    for index, name in enumerate(HARMLESS_TEXTS):
        response = support.post(
            "/admin/billing_workspaces/new-workspace",
            data={"csrf_token": token, "key": f"ws{index}", "name": name},
        )
        assert response.status_code == 302
        response = support.post(
            f"/admin/billing_workspaces/w/ws{index}/manage/create_team",
            data={"csrf_token": token, "key": "team", "name": name},
        )
        assert response.status_code == 302
    assert_harmless_names(session)


# The rules file ----------------------------------------------------------------------


def rules_values(character: str) -> dict[str, tuple[str, str]]:
    """Error path -> (text in the test rules, the same made hostile and quoted)."""
    def quoted(value: str) -> str:
        return json.dumps(hostile(value, character))

    return {
        "seller.name": ("name: Wolkenwerk GmbH", f"name: {quoted('Wolkenwerk GmbH')}"),
        "seller.register.court": ("court: AG Stuttgart", f"court: {quoted('AG Stuttgart')}"),
        "seller.address.street[0]": ("[Königstraße 12]", f"[{quoted('Königstraße 12')}]"),
        "seller.contact.name": ("name: Petra Schneider", f"name: {quoted('Petra Schneider')}"),
        "seller.contact.email": (
            "email: buch@wolkenwerk.example", f"email: {quoted('buch@wolkenwerk.example')}"
        ),
        "invoice_number_format": ('"{year}-{seq:05d}"', quoted("RE{year}-{seq:05d}")),
        "contracts.globex.note": (
            "    variant: user_licences\n",
            f"    variant: user_licences\n    note: {quoted('Rahmenvertrag')}\n",
        ),
    }


@pytest.mark.parametrize(("character", "description"), CHARACTERS)
def test_the_rules_file_refuses_every_hostile_text_at_its_line(character, description):
    values = rules_values(character)
    draft = BASE
    for old, new in values.values():
        assert draft.count(old) == 1
        draft = draft.replace(old, new)
    with pytest.raises(RulesError) as refused:
        load_rules(draft)
    errors = [str(error) for error in refused.value.errors]
    for path, (_, new) in values.items():
        last = new.strip().splitlines()[-1]
        line = next(n for n, text in enumerate(draft.splitlines(), 1) if last in text)
        (found,) = [error for error in errors if error.startswith(f"line {line}: {path}: ")]
        assert refusal(description) in found, (path, errors)
    assert all(character not in error for error in errors)


# Rows stored before: shown as escapes wherever they leave the plugin -------------------


def legacy_characters(session) -> str:
    """Every hostile character a row of this database can hold (PostgreSQL text: no NUL).

    The line feed is left out: it is the one kept in documents (white space there).
    """
    found = "".join(character for character, _ in HOSTILE_CHARACTERS if character != "\n")
    return found if session.get_bind().dialect.name == "sqlite" else found.replace("\x00", "")


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("wkhtmltopdf", "gs", "pdftotext")),
    reason="wkhtmltopdf, Ghostscript and poppler-utils are needed",
)
def test_rows_stored_before_show_their_characters_as_escapes_everywhere(
    demo_cli, app, session, smtp, tmp_path
):
    assert demo_cli("import", str(CUSTOMERS)).exit_code == 0
    characters = legacy_characters(session)
    name, person, team = (f"{text}{characters}!" for text in ("Acme", "Anna", "Vertrieb"))
    for statement in (
        "UPDATE billing_workspace SET name = :name WHERE key = 'acme'",
        "UPDATE billing_details SET legal_name = :name, city = :name WHERE workspace_id ="
        " (SELECT id FROM billing_workspace WHERE key = 'acme')",
        "UPDATE billing_person SET name = :person WHERE email = 'anna@mueller-soehne.example'",
        "UPDATE billing_team SET name = :team WHERE key = 'sales' AND workspace_id ="
        " (SELECT id FROM billing_workspace WHERE key = 'acme')",
    ):
        session.execute(text(statement), {"name": name, "person": person, "team": team})
    session.commit()
    escapes = [f"<U+{ord(character):04X}>" for character in characters]
    shown = validators.visible(name)
    assert shown == "Acme" + "".join(escapes) + "!"

    assert demo_cli("close-month", MONTH).exit_code == 0
    invoice = invoice_of(session, "acme")
    pdf_text = pdftotext(stored_pdf(session, invoice.number), tmp_path)
    for escape in escapes:
        assert escape in pdf_text
    assert not set(characters) & set(pdf_text)
    xml = extract_xml(stored_pdf(session, invoice.number))
    assert validate(xml).ok
    assert xml_text(xml, "//ram:BuyerTradeParty/ram:Name") == shown
    assert xml_text(xml, "//ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CityName") == shown

    server = smtp()
    assert demo_cli("send-invoices").exit_code == 0
    (mail,) = [got for got in server.received if got.rcpt_tos == (MAILED["acme"],)]
    assert mail.message["Subject"] == f"Rechnung {invoice.number} – November 2026 – {shown}"
    assert f"Arbeitsbereich „{shown}“ (acme)" in mail.text()
    assert not set(characters) - {"\r"} & set(mail.data.decode("ascii", "replace"))

    rules = app.extensions["billing"].rules()
    for fmt in ("csv", "xlsx"):
        out = io.BytesIO()
        export_licence_holders(
            session, rules, "acme", Month.parse(MONTH), utcnow(), fmt, out
        )
        rows = csv_rows(out.getvalue()) if fmt == "csv" else xlsx_rows(out.getvalue())
        (anna,) = [row for row in rows if row[0] == "anna@mueller-soehne.example"]
        assert anna[1] == validators.visible(person), fmt
        assert validators.visible(team) in anna[2], fmt


def test_a_csv_export_escapes_only_the_batches_that_need_it():
    """Batches with nothing to escape are written as they come, the others again, in order."""
    rows = [("a@example.com", "Anna", "Team"), ("b@example.com", "B\u202eob", "T\r\n")] * 300
    rows += [("c@example.com", "Carl", "Team")] * CSV_BATCH_ROWS
    document = CsvText(("email", "name", "teams"), rows)
    written = "".join(document)
    assert document.rows == len(rows)
    assert list(csv.reader(io.StringIO(written.removeprefix("\ufeff"), newline="")))[1:] == [
        ["b@example.com", "B<U+202E>ob", "T<U+000D>\n"] if row[1] == "B\u202eob" else list(row)
        for row in rows
    ]


def test_a_stored_recipient_with_a_control_character_is_refused_not_sent(
    demo_cli, app, session, smtp
):
    server = smtp()
    issue(session, app, "2026-10")
    key = f"invoice-{number_of(session, 'acme')}"
    session.execute(
        text("UPDATE billing_outbox_mail SET recipient = :to WHERE message_key = :key"),
        {"to": "rechnungen@acme.example\x07", "key": key},
    )
    session.commit()
    deliver(session, app)
    session.expire_all()
    mail = session.scalar(select(OutboxMail).where(OutboxMail.message_key == key))
    assert mail.status == "queued"
    assert "contains the control character U+0007 at character 24" in mail.last_error
    assert all(got.rcpt_tos != (mail.recipient,) for got in server.received)
    assert len(server.received) == len(MAILED) - 1
