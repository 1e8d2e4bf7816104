"""The value checks every path shares (plugin.validators), the VAT cases and the wording."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from plugin import validators, wording
from plugin.rules import load_rules_file
from plugin.rules.vat import vat_treatment
from tests.conftest import RULES_PATH
from tests.helpers import HARMLESS_TEXTS, HOSTILE_CHARACTERS, hostile, refusal


@pytest.mark.parametrize(
    ("value", "country", "normalised"),
    [
        ("fr 40 303 265 045", "FR", "FR40303265045"),
        ("FI20774740", "FI", "FI20774740"),
        ("EL094259216", "GR", "EL094259216"),
        ("DE 136.695.976", "DE", "DE136695976"),
        ("CHE-116.281.710 MWST", "CH", "CHE116281710MWST"),
        ("GB980780684", "GB", "GB980780684"),
        ("FR40303265045", None, "FR40303265045"),
    ],
)
def test_vat_ids_are_normalised(value, country, normalised):
    assert validators.vat_id(value, country) == normalised


@pytest.mark.parametrize(
    ("value", "country", "message"),
    [
        ("DE123456789", "DE", "is not a valid EU VAT ID (the number's checksum or check digit"),
        ("FR40303265045", "DE", "is not a VAT ID of DE: it must start with DE"),
        ("DE136695976", "GR", "it must start with EL"),
        ("FR4030", "FR", "is not a valid EU VAT ID"),
        ("CHE-116.281.711", "CH", "is not a valid VAT number of CH"),
        ("12", "US", "is not a VAT number: 4 to 20 letters and digits"),
        ("DE136695976\n", "DE", "contains a line break (U+000A) at character 12"),
    ],
)
def test_bad_vat_ids_are_refused_with_the_reason(value, country, message):
    with pytest.raises(validators.InvalidValue) as refused:
        validators.vat_id(value, country)
    assert message in str(refused.value)


def test_iban_bic_country_language():
    assert validators.iban("de89 3704 0044 0532 0130 00") == "DE89370400440532013000"
    with pytest.raises(validators.InvalidValue, match="is not a valid IBAN"):
        validators.iban("DE88 3704 0044 0532 0130 00")
    assert validators.bic("cobadeffxxx") == "COBADEFFXXX"
    with pytest.raises(validators.InvalidValue, match="is not a BIC"):
        validators.bic("COBA")
    assert validators.country_code(" fr ") == "FR"
    for bad in ("XX", "EU", "DEU", "", 49):
        with pytest.raises(validators.InvalidValue):
            validators.country_code(bad)
    assert validators.language("EN") == "en"
    with pytest.raises(validators.InvalidValue, match="use de or en"):
        validators.language("fr")


def test_leitweg_ids_are_recognised_by_their_check_digits():
    assert validators.is_leitweg_id("04011000-1234512345-06")
    assert validators.is_leitweg_id("991-33333TEST-33")
    assert not validators.is_leitweg_id("04011000-1234512345-07")
    assert not validators.is_leitweg_id("PO-4711")
    assert not validators.is_leitweg_id(None)
    assert validators.buyer_reference("PO-4711") == "PO-4711"
    with pytest.raises(validators.InvalidValue, match="looks like a Leitweg-ID but its check"):
        validators.buyer_reference("04011000-1234512345-07")


@pytest.fixture(scope="module")
def rules():
    return load_rules_file(RULES_PATH)


@pytest.mark.parametrize(
    ("country", "vat_id", "category", "rate", "code", "note"),
    [
        ("DE", "DE287123457", "S", "0.19", None, None),
        ("DE", None, "S", "0.19", None, None),
        ("FR", "FR40303265045", "AE", "0", "VATEX-EU-AE",
         "Steuerschuldnerschaft des Leistungsempfängers / Reverse charge"),
        ("FR", None, "S", "0.19", None, None),
        ("CA", None, "O", "0", "VATEX-EU-O",
         "Nicht im Inland steuerbare Leistung / Service not subject to German VAT"),
        ("CH", "CHE116281710MWST", "O", "0", "VATEX-EU-O",
         "Nicht im Inland steuerbare Leistung / Service not subject to German VAT"),
    ],
)
def test_every_vat_case(rules, country, vat_id, category, rate, code, note):
    treatment = vat_treatment(rules, country, vat_id)
    assert (treatment.category, treatment.rate, treatment.exemption_code, treatment.note) == (
        category, Decimal(rate), code, note
    )


def test_documents_are_formatted_by_babel_in_their_language():
    assert wording.money(Decimal("1234.56"), "EUR", "de") == "1.234,56\xa0€"
    assert wording.money(Decimal("1234.56"), "EUR", "en") == "€1,234.56"
    assert wording.money(Decimal("-0.125"), "EUR", "de", exact=True) == "-0,125\xa0€"
    assert wording.money(Decimal("0.125"), "EUR", "en") == "€0.13"
    assert wording.day(date(2026, 12, 15), "de") == "15.12.2026"
    assert wording.day(date(2026, 12, 15), "en") == "15 Dec 2026"
    assert wording.month(date(2026, 3, 1), "de") == "März 2026"
    assert wording.percent(Decimal("0.19"), "de") == "19\xa0%"
    assert wording.country("FI", "de") == "Finnland"
    assert wording.payment_terms(date(2026, 12, 15), "de") == "Zahlbar bis 15.12.2026 ohne Abzug."


# Characters ---------------------------------------------------------------------------

REFUSED = [
    chr(code)
    for low, high in ((0, 0x1F), (0x7F, 0x9F), (0x2028, 0x202E), (0x2066, 0x2069),
                      (0xD800, 0xDFFF))
    for code in range(low, high + 1)
]


@pytest.mark.parametrize(("character", "description"), HOSTILE_CHARACTERS)
def test_a_refused_character_is_named_with_its_position(character, description):
    with pytest.raises(validators.InvalidValue) as refused:
        validators.text_line(hostile("Acme GmbH", character))
    assert str(refused.value).startswith(refusal(description))
    assert character not in str(refused.value)
    assert validators.visible(hostile("Acme", character)) == (
        "Ac\n" if character == "\n" else f"Ac<U+{ord(character):04X}>"
    ) + "me"


def test_every_refused_character_is_refused_shown_and_found_by_the_quick_look():
    for character in REFUSED:
        with pytest.raises(validators.InvalidValue):
            validators.characters(character)
        assert validators.holds_refused(character)
        assert validators.suspect_bytes(f"ok{character}ok")
    assert validators.visible("".join(REFUSED)) == "".join(
        "\n" if character == "\n" else f"<U+{ord(character):04X}>" for character in REFUSED
    )


@pytest.mark.parametrize("text", [*HARMLESS_TEXTS, "Zoë’s café – 10 € (LRM \u200e, RLM \u200f)"])
def test_printable_text_of_every_script_passes(text):
    assert validators.text_line(text) == text
    assert validators.visible(text) == text
    assert not validators.holds_refused(text)


def test_only_a_text_block_holds_line_breaks_and_keys_hold_no_trailing_newline():
    assert validators.text_block(" Doppelt\r\nberechnet\r ") == "Doppelt\nberechnet"
    with pytest.raises(validators.InvalidValue, match="contains a tab"):
        validators.text_block("a\tb")
    with pytest.raises(validators.InvalidValue, match="contains a line break"):
        validators.text_line("a\nb")
    with pytest.raises(validators.InvalidValue, match=r"contains a line break \(U\+000A\)"):
        validators.key("acme\n")
    assert validators.key("acme-2") == "acme-2"
    assert validators.person_name("  ") == ""
    with pytest.raises(validators.InvalidValue, match="line break"):
        validators.person_name("\n")
