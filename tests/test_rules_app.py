"""The pricing rules inside the running app: start, reload, check, explain."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

from plugin.rules import RulesUnavailable
from plugin.services.invoicing import plan_month
from plugin.services.periods import Month
from plugin.types import utcnow
from tests.conftest import RULES_PATH, make_app


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "pricing_rules.yaml"
    shutil.copyfile(RULES_PATH, path)
    return path


def replace_in(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    # A later mtime even on file systems with coarse timestamps.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_the_app_starts_with_broken_rules_and_logs_their_errors(database_url, rules_file, caplog):
    replace_in(rules_file, "tax_rate: 0.19", "tax_rate: 1.19")
    with caplog.at_level(logging.ERROR):
        app = make_app(database_url, BILLING_RULES_PATH=str(rules_file))
    assert any(
        "line 24: tax_rate" in record.getMessage() for record in caplog.records
    ), caplog.text
    with pytest.raises(RulesUnavailable) as refused:
        app.extensions["billing"].rules(app)
    assert [str(error) for error in refused.value.errors][0].startswith("line 24: tax_rate:")


@pytest.mark.parametrize(
    "command",
    [
        ["close-month", "2026-10"],
        ["rules", "explain", "acme", "--month", "2026-10"],
        ["licences", "acme", "--month", "2026-10"],
    ],
)
def test_commands_that_need_prices_name_the_broken_files_errors(
    database_url, rules_file, command
):
    replace_in(rules_file, "tax_rate: 0.19", "tax_rate: 1.19")
    app = make_app(database_url, BILLING_RULES_PATH=str(rules_file))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["billing", "migrate"]).exit_code == 0
    result = runner.invoke(args=["billing", *command])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("pricing_rules.yaml: line 24: tax_rate:")
    assert "has no valid pricing rules (1 error(s))" in lines[1]
    assert "rules check" in lines[1]
    assert len(lines) == 2


def test_rules_check_works_whatever_the_configured_file_is(database_url, rules_file):
    replace_in(rules_file, "tax_rate: 0.19", "tax_rate: 1.19")
    app = make_app(database_url, BILLING_RULES_PATH=str(rules_file))
    runner = app.test_cli_runner()
    other = runner.invoke(args=["billing", "rules", "check", str(RULES_PATH)])
    assert other.exit_code == 0, other.output
    assert "valid" in other.output
    configured = runner.invoke(args=["billing", "rules", "check"])
    assert configured.exit_code == 1
    assert configured.output.startswith("pricing_rules.yaml: line 24: tax_rate:")


def test_a_missing_rules_file_is_named_by_the_pages_that_need_prices(database_url, tmp_path):
    app = make_app(database_url, BILLING_RULES_PATH=str(tmp_path / "nowhere.yaml"))
    app.test_cli_runner().invoke(args=["billing", "migrate"])
    client = app.test_client()
    client.get("/demo/role/admin")
    page = client.get("/admin/billing_workspaces/")
    assert page.status_code == 503
    text = page.get_data(as_text=True)
    assert "has no valid pricing rules" in text
    assert "nowhere.yaml: cannot read" in text


def test_a_changed_file_is_picked_up_without_a_restart(database_url, rules_file):
    app = make_app(database_url, BILLING_RULES_PATH=str(rules_file))
    billing = app.extensions["billing"]
    assert str(billing.rules(app).tax_rate) == "0.19"
    replace_in(rules_file, "tax_rate: 0.19", "tax_rate: 0.07")
    assert str(billing.rules(app).tax_rate) == "0.07"
    assert billing.rules_store(app).last_error is None


def test_a_broken_edit_keeps_the_previous_rules_and_shows_the_error(
    database_url, rules_file, caplog
):
    app = make_app(database_url, BILLING_RULES_PATH=str(rules_file))
    billing = app.extensions["billing"]
    before = billing.rules(app)
    replace_in(rules_file, "unit_price: 32.00", "unit_price: -32.00")
    with caplog.at_level(logging.ERROR, logger="plugin.rules"):
        assert billing.rules(app) is before
    problem = billing.rules_store(app).last_error
    assert problem is not None
    assert [str(error) for error in problem.errors] == [
        "line 80: variants.team_licences.prices[1].unit_price: must not be negative"
    ]
    assert "must not be negative" in caplog.text
    replace_in(rules_file, "unit_price: -32.00", "unit_price: 33.00")
    assert str(billing.rules(app).variants["team_licences"][1].unit_price) == "33.00"
    assert billing.rules_store(app).last_error is None


def test_rules_check_summarises_a_valid_file(app):
    result = app.test_cli_runner().invoke(args=["billing", "rules", "check"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    assert "EUR" in result.output


def test_rules_check_lists_every_error_and_fails(app, rules_file):
    replace_in(rules_file, "tax_rate: 0.19", "tax_rate: 1.19")
    replace_in(rules_file, "timezone: Europe/Berlin", "timezone: Europe/Bärlin")
    result = app.test_cli_runner().invoke(args=["billing", "rules", "check", str(rules_file)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("pricing_rules.yaml: line 24: tax_rate:")
    assert lines[1].startswith("pricing_rules.yaml: line 28: timezone:")
    assert "2 error(s)" in lines[2]


def test_explain_shows_the_arithmetic_of_a_user_licence_month(demo_cli):
    # acme (created 2022-05-10) in October 2026: Anna, Chris, Dora, and Emil,
    # whose team was archived on the 15th; Bob left on 30 September.
    result = demo_cli("rules", "explain", "acme", "--month", "2026-10")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:9] == [
        "Variant: user_licences – workspace created 2022-05-10, "
        "before the cut-over date 2023-03-01",
        "Price version: variants.user_licences.prices[1], in force from 2024-01-01: "
        "graduated tiers: 1–10 at 9.00; 11–50 at 7.50; 51 and more at 6.00; "
        "minimum monthly charge 59.00",
        "Quantity: 4 users",
        "  tier 1–10: 4 × 9.00 = 36.00",
        "  minimum monthly charge top-up: minimum 59.00 minus 36.00 = 23.00",
        "Net: 36.00 + 23.00 = 59.00 EUR",
        "Tax 19 %: 59.00 × 0.19 = 11.21 EUR",
        "Gross: 59.00 + 11.21 = 70.21 EUR",
    ]


def test_explain_names_a_contract_and_its_own_prices(demo_cli):
    result = demo_cli("rules", "explain", "initech", "--month", "2026-10")
    assert result.exit_code == 0, result.output
    assert "Variant: team_licences – individual contract (contracts.initech" in result.output
    assert "  volume tier 1–5: 1 × 27.00 = 27.00" in result.output
    assert "Gross: 27.00 + 5.13 = 32.13 EUR" in result.output


def test_explain_prices_a_given_quantity(demo_cli):
    result = demo_cli("rules", "explain", "nordwind", "--month", "2026-10", "--quantity", "12")
    assert result.exit_code == 0, result.output
    assert "(quantity given on the command line, not counted)" in result.output
    assert "  12 × 32.00 = 384.00" in result.output or "12 × 32.00 = 384.00" in result.output
    assert "Gross: 384.00 + 72.96 = 456.96 EUR" in result.output


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["nope", "--month", "2026-10"], 1, "no workspace with the key 'nope'"),
        (["acme", "--month", "2026-13"], 2, "2026-13 is not a month"),
        (["acme", "--month", "Oct"], 2, "'Oct' is not a month: write it as YYYY-MM"),
        (["acme", "--month", "2999-01"], 1, "2999-01 is in the future"),
    ],
)
def test_explain_refuses_bad_arguments_clearly(demo_cli, args, status, message):
    result = demo_cli("rules", "explain", *args)
    assert result.exit_code == status
    assert message in result.output


def test_explain_refuses_a_negative_quantity(demo_cli):
    result = demo_cli("rules", "explain", "acme", "--month", "2026-10", "--quantity", "-1")
    assert result.exit_code == 2
    assert "-1 is not in the range x>=0" in result.output


REVERSE_CHARGE = "Steuerschuldnerschaft des Leistungsempfängers / Reverse charge"
NOT_TAXABLE = "Nicht im Inland steuerbare Leistung / Service not subject to German VAT"


@pytest.mark.parametrize(
    ("key", "category", "vat_line"),
    [
        ("acme", "S", "VAT: category S, 19 %: customer in DE, the seller's country: standard rate"),
        ("acme-sarl", "AE", "VAT: category AE, 0 %: business customer in FR (EU) with VAT ID "
                            f"FR40303265045: reverse charge; the invoice says: {REVERSE_CHARGE}"),
        ("maple", "O", "VAT: category O, 0 %: customer in CA, outside the EU: not taxable in DE; "
                       f"the invoice says: {NOT_TAXABLE}"),
    ],
)
def test_explain_taxes_each_workspace_as_the_close_does(
    customers_cli, app, session, key, category, vat_line
):
    result = customers_cli("rules", "explain", key, "--month", "2026-11")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert vat_line in lines
    # The invoice the close would issue for that month: the same VAT and gross.
    rules = app.extensions["billing"].rules(app)
    plan = plan_month(session, rules, Month(2026, 11), utcnow())
    (planned,) = [item for item in plan.planned if item.workspace.key == key]
    assert planned.vat.category == category
    totals = planned.totals
    assert f"Gross: {totals.net} + {totals.tax} = {totals.gross} EUR" in lines
    if category != "S":
        assert f"Tax 0 %: {totals.net} × 0 = 0.00 EUR" in lines
        assert totals.gross == totals.net


def test_explain_names_the_billing_details_a_held_workspace_lacks(customers_cli, app, session):
    result = customers_cli("rules", "explain", "brightside", "--month", "2026-11")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rules = app.extensions["billing"].rules(app)
    (held,) = [item for item in plan_month(session, rules, Month(2026, 11), utcnow()).held
               if item.key == "brightside"]
    assert (f"(billing details incomplete, missing {', '.join(held.missing)}: the close holds "
            "this workspace until they are complete)") in lines
    assert lines[-1].startswith("Rules: sha256 ")
