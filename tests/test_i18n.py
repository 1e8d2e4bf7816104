"""The back-office's language follows the host's Flask-Babel locale selector."""

from __future__ import annotations

import ast
import os
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po
from sqlalchemy import select, update

from plugin.admin.access import DEFAULT_ACCESS
from plugin.i18n import gettext, ngettext, translations
from plugin.models import Invoice, Workspace
from plugin.services.periods import Month
from plugin.types import utcnow
from tests.conftest import DEMO, RULES_PATH, make_app
from tests.helpers import snapshot
from tests.test_admin_access import walk  # noqa: F401  (the fixture: every route)
from tests.test_outbox import MAILED, deliver, issue, number_of, smtp_servers

URL = "/admin/billing_dashboard/"


@pytest.fixture
def admin_client(database_url):
    """A client whose requests each have their own app context, as under a real server.

    (The ``app`` fixture keeps an app context open, which Flask reuses for the
    test client's requests, and Flask-Babel keeps the locale it chose on ``g``.)
    """
    app = make_app(database_url)
    client = app.test_client()
    client.get("/demo/role/accounting")
    yield client
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def test_the_dashboard_is_german_when_the_host_chooses_german(admin_client):
    with admin_client.session_transaction() as session:
        session["demo_language"] = "de"
    page = admin_client.get(URL).get_data(as_text=True)
    assert "Abrechnungsübersicht" in page
    assert "Billing dashboard" not in page


def test_the_dashboard_is_english_when_the_browser_asks_for_english(admin_client):
    page = admin_client.get(URL, headers={"Accept-Language": "en-GB"})
    assert "Billing dashboard" in page.get_data(as_text=True)


def test_the_browser_s_german_is_followed_until_a_language_is_chosen(admin_client):
    page = admin_client.get(URL, headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert "Abrechnungsübersicht" in page.get_data(as_text=True)
    admin_client.get("/demo/language/en")
    page = admin_client.get(URL, headers={"Accept-Language": "de-DE"})
    assert "Billing dashboard" in page.get_data(as_text=True)


def test_an_unknown_language_is_not_found(admin_client):
    assert admin_client.get("/demo/language/xx").status_code == 404


def test_without_flask_babel_on_the_host_the_strings_stay_english():
    from flask import Flask

    with Flask("no_babel").app_context():
        assert gettext("Billing dashboard") == "Billing dashboard"
        assert gettext("%(n)s invoices", n=3) == "3 invoices"
        assert ngettext("%(num)d invoice", "%(num)d invoices", 1) == "1 invoice"


# --- The German catalogue and the pages that use it. ---------------------------------------

PO = Path(__file__).resolve().parent.parent / "translations" / "de" / "LC_MESSAGES" / "billing.po"
DOWNLOADS = ("/pdf/", "/xml/", "/export")


def catalogue():
    with PO.open("rb") as source:
        return read_po(source, locale="de")


def english_only(catalogue_) -> list[tuple[str, re.Pattern[str]]]:
    """Each msgid whose German differs, as a pattern of a whole text node of a page.

    Placeholders match any text; an msgid that is all placeholders is left out.
    So are the documents' words (context ``document``): a page shows them only
    as stored data, an invoice's lines in the language it was issued in.
    """
    patterns = []
    for message in catalogue_:
        if message.context == "document":
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for msgid in ids:
            if not msgid or msgid in strings:
                continue
            parts = re.split(r"%\(\w+\)[sdr]", msgid)
            if sum(char.isalpha() for char in "".join(parts)) < 6 and len(parts) > 1:
                continue
            regex = r"\s*" + r".+?".join(re.escape(" ".join(p.split())) for p in parts) + r"\s*"
            patterns.append((msgid, re.compile(regex.replace(r"\ ", r"\s+"))))
    return patterns


def text_nodes(html: str) -> list[str]:
    """The visible text of a page, one entry per text between tags (scripts left out).

    The audit's field column is left out too: it names stored fields (``postcode``,
    ``city``), identifiers that can be spelt like a word of the catalogue.
    """
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    html = re.sub(r'<th scope="row" class="change-field">[^<]*</th>', "", html)
    return [unescape(" ".join(node.split())) for node in re.split(r"<[^>]*>", html) if node.strip()]


def test_the_german_catalogue_translates_every_string_and_none_is_fuzzy():
    messages = [message for message in catalogue() if message.id]
    assert messages
    untranslated = [m.id for m in messages if not all(m.string if m.pluralizable else [m.string])]
    assert untranslated == []
    assert [m.id for m in messages if m.fuzzy] == []


def source_messages(context: str) -> set[tuple[str, ...]]:
    """The msgids of ``context`` as ``make translations`` extracts them from the source now.

    Read from the source, not from ``billing.pot``: a word added to the code or a
    template without re-extracting is caught too.  The keywords are the Makefile's.
    """
    root = PO.parents[3]
    keywords = re.search(r"^BABEL_KEYWORDS := (.+)$", (root / "Makefile").read_text(), re.M)
    assert keywords
    with (root / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = extract_from_dir(
        str(root), method_map, options_map,
        keywords=parse_keywords(re.findall(r"-k (\S+)", keywords[1])),
    )
    messages = set()
    for _filename, _lineno, message, _comments, message_context in found:
        if message_context == context:
            messages.add(message if isinstance(message, tuple) else (message,))
    return messages


def test_every_word_of_the_documents_is_translated_into_german():
    """The invoice PDF's labels and the stored line texts: context ``document``, all in German.

    A German customer's invoice must never show an English label (or a stored
    English line description) because an entry is missing or empty in the catalogue.
    """
    extracted = source_messages("document")
    assert ("Service period",) in extracted
    assert ("%(num)d team", "%(num)d teams") in extracted
    entries = {message.id if isinstance(message.id, tuple) else (message.id,): message
               for message in catalogue() if message.context == "document"}
    missing = sorted(extracted - entries.keys())
    assert missing == []
    untranslated = [
        entry.id for entry in entries.values()
        if entry.fuzzy or not all(entry.string if entry.pluralizable else [entry.string])
    ]
    assert untranslated == []
    german = translations("de")
    assert german.pgettext("document", "Service period") == "Leistungszeitraum"
    assert german.pgettext("document", "Reverse charge") == (
        "Steuerschuldnerschaft des Leistungsempfängers"
    )
    assert translations("en").pgettext("document", "Service period") == "Service period"


def test_no_german_page_shows_an_english_string_of_the_plugin(walk, database_url):  # noqa: F811
    patterns = english_only(catalogue())
    pages = [
        (url, permission)
        for method, url, permission in walk
        if method == "GET" and not any(part in url for part in DOWNLOADS)
    ]
    app = make_app(database_url)
    client = app.test_client()
    client.get("/demo/language/de")
    shown, english = 0, {}
    for url, permission in pages:
        role = sorted(DEFAULT_ACCESS[permission])[0]
        client.get(f"/demo/role/{role}")
        response = client.get(url)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        shown += 1
        for node in text_nodes(response.get_data(as_text=True)):
            found = [msgid for msgid, pattern in patterns if pattern.fullmatch(node)]
            if found:
                english.setdefault(url, []).extend(found)
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()
    assert shown > 15
    assert english == {}, "\n".join(
        f"{url}: {sorted(set(found))}" for url, found in english.items()
    )


def test_the_english_pages_keep_the_english_strings(admin_client, demo_cli):
    admin_client.get("/demo/language/en")
    admin_client.get("/demo/role/admin")
    page = admin_client.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True)
    assert "Settings › General" in page
    assert "Workspace members" in page
    admin_client.get("/demo/language/de")
    page = admin_client.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True)
    assert "Einstellungen › Allgemein" in page
    assert "Mitglieder des Arbeitsbereichs" in page
    assert "Arbeitsbereiche" in page


def test_links_to_filtered_lists_find_the_filter_by_its_german_name(database_url):
    from plugin.admin.links import filter_url

    app = make_app(database_url, BILLING_CURRENT_ROLES=lambda: {"accounting"})
    for language in ("de", "en"):
        with app.test_request_context(headers={"Accept-Language": language}):
            url = filter_url("invoices", "E-invoice", "invalid")
            assert url is not None, language
            assert "flt0_" in url, language
            assert filter_url("invoices", "No such filter", "x") is None
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


# --- Refusals in German: the services' and validators' messages on the forms. ------------


@pytest.fixture
def german(admin_client, demo_cli):
    """``admin_client`` in German, on the demo data."""
    admin_client.get("/demo/language/de")
    return admin_client


@cache
def _english_patterns() -> list[tuple[str, re.Pattern[str]]]:
    return english_only(catalogue())


def english_on(page: str) -> list[str]:
    """The catalogue's English strings a page's HTML shows (see ``english_only``)."""
    found = {
        msgid
        for node in text_nodes(page)
        for msgid, pattern in _english_patterns()
        if pattern.fullmatch(node)
    }
    return sorted(found)


def token(client, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]


def refused(response, status: int) -> str:
    assert response.status_code == status, response.status_code
    page = response.get_data(as_text=True)
    assert english_on(page) == []
    return unescape(page)


def test_a_bad_mailbox_is_refused_in_german_and_on_the_command_line_in_english(
    german, demo_cli, session
):
    german.get("/demo/role/accounting")
    workspace_id = session.scalar(select(Workspace.id).where(Workspace.key == "acme"))
    url = f"/admin/billing_workspaces/mailbox?ids={workspace_id}"
    before = snapshot(session)
    page = refused(
        german.post(url, data={"csrf_token": token(german, url), "address": "a@x.example, b@x"}),
        200,
    )
    assert (
        "Nichts wurde geändert: 'a@x.example, b@x' ist eine Liste: "
        "Das Rechnungspostfach ist eine einzige Adresse." in page
    )
    page = refused(
        german.post(url, data={"csrf_token": token(german, url), "address": "kein-at.example"}),
        200,
    )
    assert "'kein-at.example' ist keine gültige E-Mail-Adresse: " in page
    session.expire_all()
    assert snapshot(session) == before
    result = demo_cli("set-mailbox", "acme", "a@x.example, b@x")
    assert result.exit_code != 0
    assert "is a list: the invoice mailbox is one address" in result.output


def test_bad_billing_details_are_refused_in_german(german, session):
    german.get("/demo/role/accounting")
    url = "/admin/billing_details/w/acme"
    form = german.get(url).get_data(as_text=True)
    assert "Postleitzahl" in form
    assert english_on(form) == []
    before = snapshot(session)
    data = {
        "csrf_token": token(german, url),
        "legal_name": "A\nB",
        "street": "Hauptstraße 1",
        "postcode": "10115",
        "city": "Berlin",
        "country": "FR",
        "vat_id": "FR40303265046",
        "language": "de",
    }
    page = refused(german.post(url, data=data), 200)
    assert "Nichts wurde geändert: Korrigieren Sie die markierten Felder." in page
    assert (
        "'FR40303265046' ist keine gültige EU-USt-IdNr. (die Prüfsumme oder Prüfziffer der "
        "Nummer stimmt nicht)" in page
    )
    assert "enthält an Zeichen 2 einen Zeilenumbruch (U+000A)" in page
    page = refused(german.post(url, data={**data, "legal_name": "A", "country": "XX"}), 200)
    assert "'XX' ist kein Ländercode nach ISO 3166-1" in page
    session.expire_all()
    assert snapshot(session) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"key": "Bad Key!", "name": "Bad"},
            "'Bad Key!' ist kein gültiger Teamschlüssel: Er muss aus 1–63 Kleinbuchstaben",
        ),
        ({"key": "ok-key", "name": " "}, "der Teamname darf nicht leer sein"),
        ({"key": "sales", "name": "Sales"}, "hat bereits ein Team mit dem Schlüssel 'sales'"),
    ],
)
def test_a_bad_team_is_refused_in_german(german, session, data, message):
    german.get("/demo/role/support")
    url = "/admin/billing_workspaces/w/acme/"
    before = snapshot(session)
    response = german.post(
        url + "manage/create_team", data={"csrf_token": token(german, url), **data}
    )
    assert message in refused(response, 422)
    session.expire_all()
    assert snapshot(session) == before


def test_a_mistyped_close_confirmation_is_refused_in_german(german, session):
    german.get("/demo/role/accounting")
    url = "/admin/billing_close/?month=2026-10"
    before = snapshot(session)
    response = german.post(
        "/admin/billing_close/close",
        data={"csrf_token": token(german, url), "month": "2026-10", "confirm": "Close October"},
    )
    page = refused(response, 400)
    assert "Geben Sie „Oktober 2026 abschließen“ ein, um den Monat abzuschließen" in page
    response = german.post(
        "/admin/billing_close/close",
        data={"csrf_token": token(german, url), "month": "Oktober", "confirm": "x"},
    )
    assert "'Oktober' ist kein Monat: Schreiben Sie ihn als JJJJ-MM" in refused(response, 400)
    session.expire_all()
    assert snapshot(session) == before


def german_accounting_on_a_rules_copy(database_url, tmp_path):
    """A copy of the rules file, the app reading it, and accounting's client in German."""
    rules = tmp_path / "pricing_rules.yaml"
    rules.write_text(RULES_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    app = make_app(database_url, BILLING_RULES_PATH=str(rules))
    client = app.test_client()
    client.get("/demo/role/accounting")
    client.get("/demo/language/de")
    return rules, app, client


def test_a_bad_rules_draft_and_a_rejected_rules_file_are_shown_in_german(
    database_url, demo_cli, tmp_path
):
    rules, app, client = german_accounting_on_a_rules_copy(database_url, tmp_path)
    url = "/admin/billing_rules/"

    def check(draft: str) -> str:
        data = {"csrf_token": token(client, url), "draft": draft, "expected_sha256": ""}
        return refused(client.post(url + "check", data=data), 200)

    broken = rules.read_text(encoding="utf-8").replace("tax_rate: 0.19", "tax_rate: 1,19")
    page = check(broken)
    assert "Der Entwurf hat 1 Fehler; nichts wurde gespeichert" in page
    assert "muss einen Dezimalpunkt verwenden, kein Komma: etwa 12.50" in page
    line = re.search(r"Zeile (\d+)</span>", page)
    assert line is not None
    # Where marshmallow would say "Not a valid string.", the schema's own message, in German.
    page = check(rules.read_text(encoding="utf-8").replace("currency: EUR", "currency: [EUR]"))
    assert "muss Text sein (setzen Sie ihn in Anführungszeichen)" in page
    assert "Not a valid" not in page
    # The file itself broken: the German request that finds it keeps English for the others.
    rules.write_text(broken, encoding="utf-8")
    stat = rules.stat()
    os.utime(rules, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    german = refused(client.get(url), 200)
    assert f"Zeile {line[1]}" in german
    assert "muss einen Dezimalpunkt verwenden" in german
    client.get("/demo/language/en")
    english = client.get(url).get_data(as_text=True)
    assert f"line {line[1]}" in english
    assert "must use a decimal point, not a comma" in english
    assert "Dezimalpunkt" not in english
    store = app.extensions["billing"].rules_store(app)
    assert "must use a decimal point" in store.last_error.errors[0].message
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def test_a_catalogue_for_an_explicit_language_works_outside_a_request():
    """The worker and the CLI word customers' texts in their language, with no request at all."""
    from plugin.i18n import translations

    assert translations("de").gettext("Before") == "Vorher"
    assert translations("en").gettext("Before") == "Before"
    with pytest.raises(ValueError, match="no catalogue for the language 'fr'"):
        translations("fr")


# --- Words composed in the views and services: states, tries, flashes. --------------------


@pytest.fixture
def october(app, session, german):
    """October closed; acme's mail sent (one attempt), globex's e-invoice invalid and its
    mail held, nordwind's PDF still being rendered.  The invoices' numbers by workspace."""
    servers = smtp_servers(app)
    start = next(servers)
    start()
    issue(session, app, "2026-10")
    numbers = {key: number_of(session, key) for key in ("acme", "globex", "nordwind", "initech")}
    failure = {"rule": "BR-CO-10", "message": "Sum of Invoice line net amount = Σ line net."}
    session.execute(
        update(Invoice)
        .where(Invoice.number == numbers["globex"])
        .values(einvoice_status="invalid", einvoice_failures=[failure], pdf=None, pdf_sha256=None)
    )
    session.execute(
        update(Invoice)
        .where(Invoice.number == numbers["nordwind"])
        .values(pdf=None, pdf_sha256=None)
    )
    session.commit()
    deliver(session, app)
    yield numbers
    next(servers, None)


def shown_texts(page: str) -> str:
    return "\n".join(text_nodes(page))


#: What the English invoice list, mail page and credit-note flash say in words that are
#: composed in Python (the catalogue walk above cannot find a string that was never marked).
ENGLISH_WORDS = (
    "being rendered", "attempt", "History", "e-invoice invalid", "not final", "queued",
    "waiting for PDF", "failed validation", "Its PDF", "renders its PDF", "Credit note",
    "issued for", "history of workspace", "reopened", "Correct its history",
)


def no_english_words(text: str) -> list[str]:
    return [word for word in ENGLISH_WORDS if word in text]


def test_the_invoice_list_and_mail_pages_word_states_and_tries_in_german(german, october):
    german.get("/demo/role/accounting")
    listing = shown_texts(german.get("/admin/billing_invoices/").get_data(as_text=True))
    assert "wird erzeugt" in listing  # nordwind's PDF
    assert "E-Rechnung ungültig, nicht endgültig" in listing  # globex
    assert f"gesendet\nan {MAILED['acme']}, 1 Versuch" in listing
    assert "E-Rechnung ungültig\nan ap@globex.example, 0 Versuche" in listing
    assert "Verlauf, erneut senden…" in listing
    assert no_english_words(listing) == []
    assert re.search(r"\bsent\b", listing) is None

    mail = shown_texts(
        german.get(f"/admin/billing_invoices/mail/{october['globex']}").get_data(as_text=True)
    )
    assert "E-Rechnung hat die Prüfung nicht bestanden, nicht gesendet: BR-CO-10: " in mail
    assert "Zustellung 1 ist unterwegs (E-Rechnung ungültig)" in mail
    assert no_english_words(mail) == []
    page = german.get("/admin/billing_workspaces/w/acme/").get_data(as_text=True)
    assert f"gesendet\nan {MAILED['acme']}" in shown_texts(page)
    assert re.search(r"\bsent\b", shown_texts(page)) is None

    german.get("/demo/role/support")  # may not resend: the link says only "History"
    nodes = text_nodes(german.get("/admin/billing_invoices/").get_data(as_text=True))
    assert "Verlauf" in nodes
    assert "Verlauf, erneut senden…" not in nodes
    assert no_english_words("\n".join(nodes)) == []


def test_the_same_pages_in_english_keep_the_english_words(german, october):
    german.get("/demo/language/en")
    german.get("/demo/role/accounting")
    listing = shown_texts(german.get("/admin/billing_invoices/").get_data(as_text=True))
    assert "being rendered" in listing
    assert "e-invoice invalid, not final" in listing
    assert f"sent\nto {MAILED['acme']}, 1 attempt" in listing
    assert "e-invoice invalid\nto ap@globex.example, 0 attempts" in listing
    assert "History, resend…" in listing
    mail = shown_texts(
        german.get(f"/admin/billing_invoices/mail/{october['globex']}").get_data(as_text=True)
    )
    assert "e-invoice failed validation, not sent: BR-CO-10: " in mail


def test_a_credit_note_s_flash_is_german_and_the_command_line_s_english(
    german, october, demo_cli, session
):
    german.get("/demo/role/accounting")
    number = october["initech"]
    url = f"/admin/billing_invoices/credit/{number}"
    form = german.get(url).get_data(as_text=True)
    assert "Grund (wird auf die Gutschrift gedruckt)" in shown_texts(form)
    response = german.post(
        url, data={"csrf_token": token(german, url), "reason": "Falsche Staffel"},
        follow_redirects=True,
    )
    page = shown_texts(response.get_data(as_text=True))
    note = session.scalar(select(Invoice).where(Invoice.kind == "credit_note"))
    gross = german_amount(-note.gross)  # written out without Babel, then the sign
    assert f"Gutschrift {note.number} für {number} ausgestellt: -{gross}" in page
    assert "Die Historie des Arbeitsbereichs initech ist wieder offen" in page
    assert "2026-10 ist für diesen Arbeitsbereich wieder geöffnet." in page
    assert "Ihr PDF ist fertig." in page
    assert no_english_words(page) == []
    assert english_on(response.get_data(as_text=True)) == []
    # The command line says the same of another credit note in English.
    result = demo_cli("credit-note", october["acme"], "--reason", "Wrong tier")
    assert result.exit_code == 0, result.output
    assert "The history of workspace acme is open again: no invoice of it stands." in (
        result.output
    )
    assert "Historie" not in result.output


def test_a_closed_month_s_close_is_refused_in_german(german, october, session):
    german.get("/demo/role/accounting")
    # The page of a closed month has no form; the session's token is on any other one.
    url = f"/admin/billing_invoices/credit/{october['initech']}"
    before = snapshot(session)
    response = german.post(
        "/admin/billing_close/close",
        data={
            "csrf_token": token(german, url), "month": "2026-10",
            "confirm": "Oktober 2026 abschließen",
        },
    )
    page = refused(response, 400)
    assert "Für 2026-10 ist nichts mehr auszustellen: Kein Monatsabschluss nötig" in page
    assert "nothing left to issue" not in page
    session.expire_all()
    assert snapshot(session) == before


def test_a_saved_rules_file_is_flashed_in_german(database_url, demo_cli, tmp_path):
    from tests.test_admin_rules import NEW_TEAM_PRICE, PAGE, TEAM_PRICE, check, save

    rules, app, client = german_accounting_on_a_rules_copy(database_url, tmp_path)
    draft = rules.read_text(encoding="utf-8").replace(TEAM_PRICE, NEW_TEAM_PRICE)
    diff = text_nodes(check(client, draft).get_data(as_text=True))
    assert "--- geltende Regeln" in diff
    assert "+++ Entwurf" in diff
    assert "--- rules in force" not in diff
    assert save(client, draft).status_code == 302
    page = client.get(PAGE).get_data(as_text=True)
    sha256 = app.extensions["billing"].rules(app).sha256
    assert (
        f"pricing_rules.yaml gespeichert (sha256 {sha256[:12]}); die Abrechnung verwendet ab "
        "jetzt die neuen Preisregeln." in unescape(page)
    )
    assert "billing uses the new rules" not in page
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def shown_in_python() -> list[str]:
    """English words in what the admin views compose in Python outside gettext.

    The text a view hands to ``flash`` (its message) or to ``Markup`` (its template and
    ``.format`` arguments), as literals: a literal inside any call (``_()``, ``url_for()``),
    a subscript or a comparison is not shown as such.  Tags, ``{}`` fields and entities
    are left out; a run of three lowercase letters is a word (``PDF``, ``XML`` are not).
    """
    def name(func: ast.expr) -> str:
        if isinstance(func, ast.Name):
            return func.id
        return func.attr if isinstance(func, ast.Attribute) else ""

    def literals(node: ast.AST):
        if isinstance(node, ast.Call | ast.Compare):
            return
        if isinstance(node, ast.Subscript):
            yield from literals(node.value)
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node
        for child in ast.iter_child_nodes(node):
            yield from literals(child)

    def shown(call: ast.Call) -> list[ast.expr]:
        func = call.func
        if name(func) in ("Markup", "flash"):
            return call.args[:1]
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "format"
            and isinstance(func.value, ast.Call)
            and name(func.value.func) == "Markup"
        ):
            return [*call.args, *(keyword.value for keyword in call.keywords)]
        return []

    found = []
    admin = Path(__file__).resolve().parent.parent / "plugin" / "admin"
    for path in sorted(admin.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            for argument in shown(node):
                for literal in literals(argument):
                    text = re.sub(r"<[^>]*>|\{[^}]*\}|&\w+;", " ", literal.value)
                    if re.search(r"[a-z]{3}", text):
                        found.append(f"{path.name}:{literal.lineno}: {literal.value!r}")
    return found


def test_the_admin_views_flash_and_compose_no_english_outside_gettext():
    """What the catalogue walk cannot see: a string that was never marked."""
    assert shown_in_python() == []


# --- Numbers in the page's locale. ----------------------------------------------------------


def this_month() -> Month:
    return Month.of(utcnow(), ZoneInfo("Europe/Berlin"))


@pytest.fixture
def thousands(database_url, tmp_path):
    """A client on the demo data under prices in the thousands, the previous month closed.

    The team licence costs 1234.56 a month and the user licences' second tier
    goes up to 5000: amounts and counts with a thousands separator.
    """
    rules = tmp_path / "pricing_rules.yaml"
    text = RULES_PATH.read_text(encoding="utf-8")
    text = text.replace("unit_price: 32.00", "unit_price: 1234.56")
    tier = "up_to: 50\n            unit_price: 7.50"
    text = text.replace(tier, tier.replace("50", "5000", 1))
    rules.write_text(text, encoding="utf-8")
    app = make_app(database_url, BILLING_RULES_PATH=str(rules))
    runner = app.test_cli_runner()
    month = str(this_month().previous())
    for args in (("import", str(DEMO)), ("close-month", month)):
        result = runner.invoke(args=["billing", *args])
        assert result.exit_code == 0, result.output
    client = app.test_client()
    client.get("/demo/role/accounting")
    yield client, month
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def german_amount(value) -> str:
    """``1234.5`` as ``1.234,50 EUR``: the German form, written out without Babel."""
    return f"{value:,.2f}".translate(str.maketrans(",.", ".,")) + " EUR"


def texts(page: str, element_id: str) -> list[str]:
    """The text nodes inside the element with this id (up to its table's or list's end)."""
    part = page.split(f'id="{element_id}"', 1)[1].split(">", 1)[1]
    return text_nodes(re.split(r"</(?:table|ul|section)>", part, maxsplit=1)[0])


def prices_shown(client) -> list[str]:
    """The texts of the rules page's price tables."""
    page = client.get("/admin/billing_rules/").get_data(as_text=True)
    return text_nodes(page.split('id="rules-prices"', 1)[1].split('id="rules-content"', 1)[0])


def list_cells(page: str, number: str) -> dict[str, str]:
    """The licences and amounts of the invoice list's row of invoice ``number``."""
    row = page.split(f">{number}</a>", 1)[1].split("</tr>", 1)[0]
    cells = dict(re.findall(r'<td class="col-(\w+)">\s*([^<]*?)\s*</td>', row))
    return {key: cells[key] for key in ("quantity", "net", "tax", "gross")}


def test_a_german_page_shows_german_amounts_counts_percentages_and_dates(thousands):
    client, month = thousands
    app = client.application
    with app.app_context():
        session = app.extensions["sqlalchemy"].session
        invoices = session.scalars(select(Invoice).where(Invoice.period == month)).all()
        team = next(i for i in invoices if i.workspace_key == "nordwind")
        month_net = sum(i.net for i in invoices)
        team_net = sum(i.net for i in invoices if i.variant == "team_licences")
    client.get("/demo/language/de")
    assert team.gross > 1000

    listing = client.get("/admin/billing_invoices/").get_data(as_text=True)
    assert list_cells(listing, team.number) == {
        "quantity": f"{team.quantity} Teams",
        "net": german_amount(team.net),
        "tax": german_amount(team.tax),
        "gross": german_amount(team.gross),
    }

    page = client.get(f"/admin/billing_invoices/details/?id={team.id}").get_data(as_text=True)
    assert texts(page, "invoice-lines")[5:10] == [
        team.lines[0]["description"], str(team.quantity), "1.234,56 EUR",
        german_amount(team.net), "S 19 %",
    ]
    assert german_amount(team.gross) in texts(page, "invoice-gross")
    assert "USt S 19 %" in texts(page, "invoice-lines")
    facts = texts(page, "invoice-facts")
    assert f"{team.due_date:%d.%m.%Y}" in facts
    assert f"({team.service_start:%d.%m.%Y} – {team.service_end:%d.%m.%Y})" in facts
    issued = facts[facts.index("Ausgestellt") + 1]
    assert re.fullmatch(r"\d\d\.\d\d\.\d{4} \d\d:\d\d MES?Z", issued), issued

    dashboard = client.get("/admin/billing_dashboard/").get_data(as_text=True)
    row = dashboard.split(f'<tr data-month="{month}"', 1)[1].split("</tr>", 1)[0]
    assert f'data-net="total">{german_amount(month_net)}<' in row
    assert german_amount(month_net) in texts(dashboard, "dashboard-total-net")
    chart = texts(dashboard, "dashboard-revenue-team_licences")
    assert f"{month}: {german_amount(team_net)} netto" in chart
    assert f"{round(team_net):,}".replace(",", ".") in chart  # the bar's label

    close = client.get(f"/admin/billing_close/?month={this_month()}")
    totals = [t for t in texts(close.get_data(as_text=True), "close-totals") if "EUR" in t]
    assert totals
    assert all(re.fullmatch(r"\d{1,3}(\.\d{3})*,\d{2} EUR", total) for total in totals), totals
    assert any("." in total for total in totals), totals

    prices = prices_shown(client)
    for shown in (
        "1.234,56 EUR", "11–5.000: 7,50 EUR", "5.001 und weitere: 6,00 EUR", "59,00 EUR",
        "01.01.2026", "31.12.2025",
    ):
        assert shown in prices

    # The same pages in English: the English forms, with the English separators.
    client.get("/demo/language/en")
    listing = client.get("/admin/billing_invoices/").get_data(as_text=True)
    assert list_cells(listing, team.number)["gross"] == f"{team.gross:,.2f} EUR"
    prices = prices_shown(client)
    for shown in (
        "1,234.56 EUR", "11–5,000: 7.50 EUR", "5,001 and more: 6.00 EUR", "59.00 EUR",
        "2026-01-01", "2025-12-31",
    ):
        assert shown in prices


def test_numbers_and_dates_outside_a_request_and_without_flask_babel_are_english(app):
    from flask import Flask

    from plugin.formatting import amount, day, instant, number, percentage

    def shown():
        return (
            amount(Decimal("1234.5"), "EUR"),
            number(12345),
            percentage(Decimal("0.075")),
            day(date(2026, 11, 30)),
            instant(datetime(2026, 7, 30, 13, 5, tzinfo=UTC), ZoneInfo("Europe/Berlin")),
        )

    english = ("1,234.50 EUR", "12,345", "7.5 %", "2026-11-30", "2026-07-30 15:05 CEST")
    assert shown() == english  # the CLI, the worker: no request
    with app.test_request_context(headers={"Accept-Language": "de"}):
        assert shown() == ("1.234,50 EUR", "12.345", "7,5 %", "30.11.2026", "30.07.2026 15:05 MESZ")
    with Flask("no_babel").test_request_context(headers={"Accept-Language": "de"}):
        assert shown() == english
