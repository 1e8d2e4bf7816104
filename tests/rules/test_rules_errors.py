"""Every kind of mistake in pricing_rules.yaml, with the exact message accounting sees."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from plugin.rules import PricingRules, compute, load_rules, load_rules_file

REPOSITORY = Path(__file__).resolve().parents[2]

CASES = {
    "negative price (the issue's example)": (
        [("unit_price: 9.00", "unit_price: -9.00")],
        ["line 29: variants.user_licences.prices[1].tiers[0].unit_price: must not be negative"],
    ),
    "negative minimum charge": (
        [("minimum_monthly_charge: 59.00", "minimum_monthly_charge: -1")],
        ["line 32: variants.user_licences.prices[1].minimum_monthly_charge: must not be negative"],
    ),
    "duplicate key": (
        [("  vat_id: DE136695976\n", "  vat_id: DE136695976\n  name: Other GmbH\n")],
        ["line 11: seller.name: duplicate key: 'name' is already given on line 6"],
    ),
    "anchor": (
        [("unit_price: 29.00", "unit_price: &price 29.00")],
        ["line 19: variants.team_licences.prices[0].unit_price: "
         "anchors (&price) are not allowed: write the value out in full"],
    ),
    "alias": (
        [("  team_licences:\n", "  team_licences: &team\n"),
         ("  user_licences:\n", "  user_licences: *team\n  unused:\n")],
        ["line 15: variants.team_licences: "
         "anchors (&team) are not allowed: write the value out in full",
         "line 20: variants.user_licences: "
         "aliases (*team) are not allowed: write the value out in full"],
    ),
    "NO where text is expected": (
        [("name: Wolkenwerk GmbH", "name: NO")],
        ["line 6: seller.name: value 'NO' is read by YAML as a boolean; "
         "write it in quotes if you mean the text"],
    ),
    "off where text is expected": (
        [("vat_id: DE136695976", "vat_id: Off")],
        ["line 10: seller.vat_id: value 'Off' is read by YAML as a boolean; "
         "write it in quotes if you mean the text"],
    ),
    "1:30 where a decimal is expected": (
        [("unit_price: 29.00", "unit_price: 1:30")],
        ["line 19: variants.team_licences.prices[0].unit_price: value '1:30' is read by YAML "
         "as the number 90 (base 60, like a clock time); write a plain number such as 12.50"],
    ),
    "010 where a decimal is expected": (
        [("unit_price: 8.00", "unit_price: 010")],
        ["line 24: variants.user_licences.prices[0].unit_price: value '010' is read by YAML "
         "as the octal number 8; write a plain number such as 12.50"],
    ),
    "010 where a whole number is expected": (
        [("up_to: 10", "up_to: 010")],
        ["line 28: variants.user_licences.prices[1].tiers[0].up_to: value '010' is read by "
         "YAML as the octal number 8; write a plain whole number such as 10"],
    ),
    "0x1F where a decimal is expected": (
        [("tax_rate: 0.19", "tax_rate: 0x1F")],
        ["line 2: tax_rate: value '0x1F' is read by YAML as the hexadecimal number 31; "
         "write a plain number such as 12.50"],
    ),
    ".inf where a decimal is expected": (
        [("unit_price: 6.00", "unit_price: .inf")],
        ["line 31: variants.user_licences.prices[1].tiers[1].unit_price: value '.inf' is read "
         "by YAML as the special number infinity; write a plain number such as 12.50"],
    ),
    "yes where a boolean is expected": (
        [("    variant: user_licences\n", "    variant: user_licences\n    email_invoices: yes\n")],
        ["line 36: contracts.globex.email_invoices: must be true or false"],
    ),
    "syntax error": (
        [("  vat_id: DE136695976", "  vat_id DE136695976")],
        ["line 11: syntax error: could not find expected ':' "
         "(while scanning a simple key on line 10)"],
    ),
    "tab indentation": (
        [("  vat_id: DE136695976", "\tvat_id: DE136695976")],
        ["line 10: syntax error: found character '\\t' that cannot start any token "
         "(while scanning for the next token); indent with spaces, not tabs"],
    ),
    "unknown key at the top": (
        [("currency: EUR\n", "currency: EUR\nvat_rate: 0.19\n")],
        ["line 2: vat_rate: unknown key; the keys allowed here are: currency, tax_rate, "
         "timezone, invoice_number_format, seller, vat, cutover_date, variants, contracts"],
    ),
    "unknown key in a tier": (
        [("            unit_price: 9.00\n",
          "            unit_price: 9.00\n            discount: 0.10\n")],
        ["line 30: variants.user_licences.prices[1].tiers[0].discount: "
         "unknown key; the keys allowed here are: up_to, unit_price"],
    ),
    "unknown variant": (
        [("  user_licences:\n", "  seat_licences:\n")],
        ["line 14: variants.user_licences: is missing: this key is required",
         "line 20: variants.seat_licences: "
         "unknown key; the keys allowed here are: team_licences, user_licences"],
    ),
    "descending tiers": (
        [("          - up_to: null\n",
          "          - up_to: 5\n            unit_price: 7.00\n          - up_to: null\n")],
        ["line 30: variants.user_licences.prices[1].tiers[1].up_to: "
         "must be greater than the previous tier's up_to (10): tiers go upwards"],
    ),
    "equal tiers": (
        [("          - up_to: null\n",
          "          - up_to: 10\n            unit_price: 7.00\n          - up_to: null\n")],
        ["line 30: variants.user_licences.prices[1].tiers[1].up_to: "
         "must be greater than the previous tier's up_to (10): tiers go upwards"],
    ),
    "last tier not open-ended": (
        [("up_to: null", "up_to: 100")],
        ["line 30: variants.user_licences.prices[1].tiers[1].up_to: the last tier must be "
         "open-ended (up_to: null), so that every quantity has a price"],
    ),
    "open-ended tier before the last": (
        [("up_to: null", "up_to: 50"), ("up_to: 10", "up_to: null")],
        ["line 28: variants.user_licences.prices[1].tiers[0].up_to: "
         "only the last tier may be open-ended: give this tier an up_to",
         "line 30: variants.user_licences.prices[1].tiers[1].up_to: the last tier must be "
         "open-ended (up_to: null), so that every quantity has a price"],
    ),
    "tier up_to zero": (
        [("up_to: 10", "up_to: 0")],
        ["line 28: variants.user_licences.prices[1].tiers[0].up_to: must be at least 1"],
    ),
    "tier up_to not whole": (
        [("up_to: 10", "up_to: 10.5")],
        ["line 28: variants.user_licences.prices[1].tiers[0].up_to: "
         "must be a whole number such as 10"],
    ),
    "versions on the same date": (
        [("effective_from: 2024-01-01", "effective_from: 2020-01-01")],
        ["line 25: variants.user_licences.prices[1].effective_from: must be later than the "
         "previous version's effective_from (2020-01-01): list versions from oldest to newest, "
         "one per date"],
    ),
    "versions in descending order": (
        [("effective_from: 2024-01-01", "effective_from: 2019-12-01")],
        ["line 25: variants.user_licences.prices[1].effective_from: must be later than the "
         "previous version's effective_from (2020-01-01): list versions from oldest to newest, "
         "one per date"],
    ),
    "version not starting on the first of a month": (
        [("effective_from: 2024-01-01", "effective_from: 2024-01-15")],
        ["line 25: variants.user_licences.prices[1].effective_from: must be the first day of a "
         "month, such as 2026-01-01: prices apply to whole months"],
    ),
    "date in another format": (
        [("cutover_date: 2023-03-01", "cutover_date: 01.03.2023")],
        ["line 13: cutover_date: must be a date written as YYYY-MM-DD, such as 2023-03-01"],
    ),
    "impossible date": (
        [("cutover_date: 2023-03-01", "cutover_date: 2023-02-30")],
        ["line 13: cutover_date: must be a date written as YYYY-MM-DD, such as 2023-03-01"],
    ),
    "tax rate of one": (
        [("tax_rate: 0.19", "tax_rate: 1")],
        ["line 2: tax_rate: must be at least 0 and less than 1 (0.19 means 19 %)"],
    ),
    "tax rate as a percentage": (
        [("tax_rate: 0.19", "tax_rate: 19")],
        ["line 2: tax_rate: must be at least 0 and less than 1 (0.19 means 19 %)"],
    ),
    "negative tax rate": (
        [("tax_rate: 0.19", "tax_rate: -0.19")],
        ["line 2: tax_rate: must be at least 0 and less than 1 (0.19 means 19 %)"],
    ),
    "exponent": (
        [("unit_price: 29.00", "unit_price: 2.9e1")],
        ["line 19: variants.team_licences.prices[0].unit_price: "
         "must be a number such as 12.50 (digits and a decimal point only)"],
    ),
    "quoted NaN": (
        [("unit_price: 29.00", "unit_price: 'NaN'")],
        ["line 19: variants.team_licences.prices[0].unit_price: "
         "must be a number such as 12.50 (digits and a decimal point only)"],
    ),
    "decimal comma": (
        [("unit_price: 29.00", "unit_price: 29,00")],
        ["line 19: variants.team_licences.prices[0].unit_price: "
         "must use a decimal point, not a comma: such as 12.50"],
    ),
    "too many decimal places": (
        [("unit_price: 29.00", "unit_price: 29.0000001")],
        ["line 19: variants.team_licences.prices[0].unit_price: "
         "must have at most 6 decimal places"],
    ),
    "bad time zone": (
        [("timezone: Europe/Berlin", "timezone: Europe/Berln")],
        ["line 3: timezone: unknown time zone 'Europe/Berln': use a name from the IANA time "
         "zone database, such as Europe/Berlin"],
    ),
    "bad currency": (
        [("currency: EUR", "currency: EURO")],
        ["line 1: currency: unknown currency 'EURO': use an ISO 4217 code such as EUR (known: "
         "AED, AUD, BGN, BHD, BRL, CAD, CHF, CLP, CNY, CZK, DKK, EUR, GBP, HKD, HUF, ILS, INR, "
         "ISK, JOD, JPY, KRW, KWD, MXN, NOK, NZD, OMR, PLN, RON, RSD, SAR, SEK, SGD, TND, TRY, "
         "UAH, USD, ZAR)"],
    ),
    "bad contract key": (
        [("  globex:", "  Globex Corp:")],
        ["line 34: contracts[\"Globex Corp\"]: must be 1-63 lower-case "
         "letters, digits or '-', not starting with '-'"],
    ),
    "contract key starting with a dash": (
        [("  globex:", "  -globex:")],
        ["line 34: contracts.-globex: must be 1-63 lower-case "
         "letters, digits or '-', not starting with '-'"],
    ),
    "bad contract variant": (
        [("variant: user_licences", "variant: users")],
        ["line 35: contracts.globex.variant: must be team_licences or user_licences"],
    ),
    "empty contract": (
        [("    variant: user_licences\n", "")],
        ["line 34: contracts.globex: must not be empty"],
    ),
    "flat price without unit_price": (
        [("        unit_price: 29.00\n", "")],
        ["line 17: variants.team_licences.prices[0].unit_price: "
         "is missing: a flat price needs a unit_price"],
    ),
    "flat price with tiers": (
        [("        unit_price: 29.00\n",
          "        unit_price: 29.00\n        tiers:\n          - unit_price: 1.00\n")],
        ["line 20: variants.team_licences.prices[0].tiers: "
         "a flat price has no tiers: remove them, or use model graduated or volume"],
    ),
    "graduated price with a unit_price": (
        [("        model: graduated\n", "        model: graduated\n        unit_price: 9.00\n")],
        ["line 27: variants.user_licences.prices[1].unit_price: "
         "a graduated price has no unit_price of its own: the tiers hold the prices"],
    ),
    "unknown pricing model": (
        [("model: graduated", "model: staircase")],
        ["line 26: variants.user_licences.prices[1].model: "
         "must be one of: flat, graduated, volume"],
    ),
    "volume price without tiers": (
        [("        model: flat\n        unit_price: 8.00\n", "        model: volume\n")],
        ["line 22: variants.user_licences.prices[0].tiers: "
         "is missing: a volume price needs tiers"],
    ),
    "no price versions": (
        [("  team_licences:\n    prices:\n      - effective_from: 2023-03-01\n"
          "        model: flat\n        unit_price: 29.00\n",
          "  team_licences:\n    prices: []\n")],
        ["line 16: variants.team_licences.prices: must list at least one entry"],
    ),
    "missing key in a nested object": (
        [("  email: rechnungen@wolkenwerk.example\n", "")],
        ["line 5: seller.email: is missing: this key is required"],
    ),
    "missing key at the top has no line": (
        [("currency: EUR\n", "")],
        ["currency: is missing: this key is required"],
    ),
    "bad e-mail": (
        [("email: rechnungen@wolkenwerk.example", "email: rechnungen at wolkenwerk")],
        ["line 11: seller.email: must be an e-mail address such as billing@example.com"],
    ),
    "bad IBAN check digits": (
        [("iban: DE89370400440532013000", "iban: DE88 3704 0044 0532 0130 00")],
        ["line 12: seller.payment.iban: is not a valid IBAN (the number's checksum or check "
         "digit is invalid): two letters, two check digits, then the account"],
    ),
    "invoice number format without {seq}": (
        [('"{year}-{seq:05d}"', '"{year}-{number}"')],
        ["line 4: invoice_number_format: must contain {year} and {seq} and no other {…} "
         "fields, such as {year}-{seq:05d}"],
    ),
    "invoice number format with an empty link segment": (
        [('"{year}-{seq:05d}"', '"RE//{year}/{seq}"')],
        ["line 4: invoice_number_format: must not start or end with '/', hold '//', or a '.' "
         "or '..' between slashes: invoice numbers are part of their download links"],
    ),
    "invoice number format with a dot-dot segment": (
        [('"{year}-{seq:05d}"', '"{year}/../{seq}"')],
        ["line 4: invoice_number_format: must not start or end with '/', hold '//', or a '.' "
         "or '..' between slashes: invoice numbers are part of their download links"],
    ),
    "invoice number format unquoted": (
        [('"{year}-{seq:05d}"', "{year}")],
        ['line 4: invoice_number_format: must be text in quotes, such as "{year}-{seq:05d}"'],
    ),
    "control character in a name": (
        [("name: Wolkenwerk GmbH", 'name: "Wolkenwerk\\nGmbH"')],
        ["line 6: seller.name: contains a line break (U+000A) at character 11: "
         "write it on one line"],
    ),
    "a list where a mapping is expected": (
        [("seller:\n", "seller: [x]\nold_seller:\n")],
        ["line 5: seller: must be a group of 'key: value' lines",
         "line 6: old_seller: unknown key; the keys allowed here are: currency, tax_rate, "
         "timezone, invoice_number_format, seller, vat, cutover_date, variants, contracts"],
    ),
}


@pytest.mark.parametrize(("changes", "expected"), CASES.values(), ids=CASES.keys())
def test_located_message(edit, errors_of, changes, expected):
    assert errors_of(edit(*changes)) == expected


def test_base_is_valid(base):
    rules = load_rules(base)
    assert rules.currency == "EUR"
    assert rules.seller.address == ("Königstraße 12", "70173 Stuttgart")


def test_several_errors_are_reported_at_once(edit, errors_of):
    text = edit(
        ("currency: EUR", "currency: XXX"),
        ("tax_rate: 0.19", "tax_rate: 1.19"),
        ("name: Wolkenwerk GmbH", "name: no"),
        ("unit_price: 9.00", "unit_price: -9.00"),
        ("up_to: null", "up_to: 5"),
        ("effective_from: 2024-01-01", "effective_from: 2019-01-01"),
        ("  globex:", "  GLOBEX:"),
    )
    assert errors_of(text) == [
        "line 1: currency: unknown currency 'XXX': use an ISO 4217 code such as EUR (known: "
        "AED, AUD, BGN, BHD, BRL, CAD, CHF, CLP, CNY, CZK, DKK, EUR, GBP, HKD, HUF, ILS, INR, "
        "ISK, JOD, JPY, KRW, KWD, MXN, NOK, NZD, OMR, PLN, RON, RSD, SAR, SEK, SGD, TND, TRY, "
        "UAH, USD, ZAR)",
        "line 2: tax_rate: must be at least 0 and less than 1 (0.19 means 19 %)",
        "line 6: seller.name: value 'no' is read by YAML as a boolean; "
        "write it in quotes if you mean the text",
        "line 25: variants.user_licences.prices[1].effective_from: must be later than the "
        "previous version's effective_from (2020-01-01): list versions from oldest to newest, "
        "one per date",
        "line 29: variants.user_licences.prices[1].tiers[0].unit_price: must not be negative",
        "line 30: variants.user_licences.prices[1].tiers[1].up_to: the last tier must be "
        "open-ended (up_to: null), so that every quantity has a price",
        "line 34: contracts.GLOBEX: must be 1-63 lower-case letters, "
        "digits or '-', not starting with '-'",
    ]


def test_several_structural_errors_are_reported_at_once(edit, errors_of):
    text = edit(
        ("tax_rate: 0.19\n", "tax_rate: 0.19\ntax_rate: 0.07\n"),
        ("unit_price: 29.00", "unit_price: &p 29.00"),
        ("unit_price: 8.00", "unit_price: *p"),
    )
    assert errors_of(text) == [
        "line 3: tax_rate: duplicate key: 'tax_rate' is already given on line 2",
        "line 20: variants.team_licences.prices[0].unit_price: "
        "anchors (&p) are not allowed: write the value out in full",
        "line 25: variants.user_licences.prices[0].unit_price: "
        "aliases (*p) are not allowed: write the value out in full",
    ]


def test_quoted_trap_values_are_text(edit):
    rules = load_rules(edit(("name: Wolkenwerk GmbH", 'name: "NO"'), ("  globex:", "  '010':")))
    assert rules.seller.name == "NO"
    assert "010" in rules.contracts


def test_oversized_file_is_refused_before_parsing(base, errors_of):
    text = base + "# " + "x" * 1_000_000 + "\n"
    assert errors_of(text) == [
        f"the file is too large: {len(text.encode()):,} bytes, at most 1,000,000 are allowed"
    ]
    assert errors_of("[" * 2000, max_bytes=1000) == [
        "the file is too large: 2,000 bytes, at most 1,000 are allowed"
    ]


def test_not_utf8(base, errors_of):
    raw = base.encode("utf-8").replace("Königstraße".encode(), "Königstraße".encode("latin-1"))
    assert errors_of(raw) == ["line 8: the file is not UTF-8 text: save it with the UTF-8 encoding"]


def test_top_level_must_be_a_mapping(errors_of):
    assert errors_of("- currency: EUR\n") == [
        "line 1: the top level must be a mapping of 'key: value' lines, not list"
    ]
    assert errors_of("# only a comment\n") == [
        "the top level must be a mapping of 'key: value' lines, not nothing"
    ]


def test_amounts_are_exact_decimals_never_floats(edit):
    rules = load_rules(
        edit(("unit_price: 29.00", "unit_price: 0.1"), ("tax_rate: 0.19", "tax_rate: 0.1"))
    )
    version = rules.variants["team_licences"][0]
    assert version.unit_price == Decimal("0.1")
    assert version.unit_price + version.unit_price + version.unit_price == Decimal("0.3")
    totals = compute(version, 3, rules.tax_rate, rules.currency_exponent)
    assert (totals.net, totals.tax, totals.gross) == (
        Decimal("0.30"), Decimal("0.03"), Decimal("0.33")
    )
    assert not list(_floats(rules))


def _floats(value):
    if isinstance(value, float):
        yield value
    elif dataclasses.is_dataclass(value):
        for item in dataclasses.fields(value):
            yield from _floats(getattr(value, item.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _floats(item)
    elif hasattr(value, "values"):
        for item in value.values():
            yield from _floats(item)


def test_defaults_for_optional_keys(edit):
    rules = load_rules(edit(
        ("timezone: Europe/Berlin\n", ""),
        ('invoice_number_format: "{year}-{seq:05d}"\n', ""),
        ("cutover_date: 2023-03-01\n", ""),
        ("contracts:\n  globex:\n    variant: user_licences\n", ""),
    ))
    assert rules.timezone == "Europe/Berlin"
    assert rules.invoice_number(2026, 42) == "2026-00042"
    assert rules.cutover_date == date(2023, 3, 1)
    assert dict(rules.contracts) == {}


def test_empty_contracts_section(edit):
    contracts = "contracts:\n  globex:\n    variant: user_licences\n"
    rules = load_rules(edit((contracts, "contracts:\n")))
    assert dict(rules.contracts) == {}


def test_rules_as_json():
    text = (
        '{"currency": "JPY", "tax_rate": 0.10, "seller": {"name": "X KK", "address":'
        ' {"street": ["1-1 Marunouchi"], "postcode": "100-0005", "city": "Tokyo",'
        ' "country": "JP"}, "tax_number": "T1", "email": "x@example.com",'
        ' "register": {"court": "Tokyo", "number": "1", "managing_directors": ["Y"]},'
        ' "contact": {"name": "Y", "phone": "+81 3 1234", "email": "y@example.com"},'
        ' "payment": {"terms_days": 30, "iban": "DE89370400440532013000"}}, "variants": {'
        '"team_licences": {"prices": [{"effective_from": "2023-03-01", "model": "flat",'
        ' "unit_price": 3000}]},'
        '"user_licences": {"prices": [{"effective_from": "2023-03-01", "model": "flat",'
        ' "unit_price": 1000}]}}}'
    )
    rules = load_rules(text, source="rules.json")
    assert rules.currency_exponent == 0
    assert rules.tax_rate == Decimal("0.10")


def test_shipped_file_loads():
    rules = load_rules_file(REPOSITORY / "pricing_rules.yaml")
    assert isinstance(rules, PricingRules)
    assert rules.currency == "EUR"
    assert rules.tax_rate == Decimal("0.19")
    assert rules.timezone == "Europe/Berlin"
    assert rules.cutover_date == date(2023, 3, 1)
    assert [v.effective_from for v in rules.variants["team_licences"]] == [
        date(2023, 3, 1), date(2026, 1, 1)
    ]
    assert {v.model for v in rules.variants["user_licences"]} == {"graduated"}
    assert all(v.minimum_monthly_charge for v in rules.variants["user_licences"])
    assert rules.contracts["globex"].variant == "user_licences"
    assert rules.contracts["initech"].prices[0].model == "volume"
    assert rules.content == (REPOSITORY / "pricing_rules.yaml").read_text(encoding="utf-8")


def test_unreadable_file(tmp_path):
    from plugin.rules import RulesError

    with pytest.raises(RulesError) as caught:
        load_rules_file(tmp_path / "missing.yaml")
    missing = tmp_path / "missing.yaml"
    assert str(caught.value) == f"cannot read {missing}: No such file or directory"


def test_documented_example_loads():
    text = (REPOSITORY / "docs" / "pricing-rules.md").read_text(encoding="utf-8")
    section = text[text.index("# Pricing rules"):]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    rules = load_rules(example)
    assert rules.contracts["initech"].prices[0].model == "volume"
    # The documented example is the shipped file, comments aside.
    shipped = load_rules_file(REPOSITORY / "pricing_rules.yaml")
    for field in dataclasses.fields(PricingRules):
        if field.name not in ("content", "sha256", "source"):
            assert getattr(rules, field.name) == getattr(shipped, field.name), field.name
