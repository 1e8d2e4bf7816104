"""The seller's details in pricing_rules.yaml: located errors, normalised values."""

from __future__ import annotations

import pytest

from plugin.rules import load_rules, load_rules_file
from tests.conftest import RULES_PATH

CASES = {
    "VAT ID with a bad check digit": (
        [("vat_id: DE136695976", "vat_id: DE136695977")],
        ["line 10: seller.vat_id: 'DE136695977' is not a valid EU VAT ID (the number's "
         "checksum or check digit is invalid): write the country prefix and the number, "
         "such as FR40303265045"],
    ),
    "VAT ID of another country than the address": (
        [("vat_id: DE136695976", "vat_id: FR40303265045")],
        ["line 10: seller.vat_id: 'FR40303265045' is not a VAT ID of DE: it must start with DE"],
    ),
    "neither VAT ID nor tax number": (
        [("  vat_id: DE136695976\n", "")],
        ["line 5: seller.vat_id: is missing: give the seller's vat_id (USt-IdNr.) or "
         "tax_number (Steuernummer)"],
    ),
    "unknown country": (
        [("country: DE}", "country: Deutschland}")],
        ["line 8: seller.address.country: 'Deutschland' is not an ISO 3166-1 country code: "
         "use two letters such as DE, FR or US"],
    ),
    "no register": (
        [("  register: {court: AG Stuttgart, number: HRB 765432, "
          "managing_directors: [Erika Muster]}\n", "")],
        ["line 5: seller.register: is missing: this key is required"],
    ),
    "no managing directors": (
        [("managing_directors: [Erika Muster]", "managing_directors: []")],
        ["line 7: seller.register.managing_directors: must list at least one entry"],
    ),
    "bad BIC": (
        [("iban: DE89370400440532013000}", "iban: DE89370400440532013000, bic: COBA}")],
        ["line 12: seller.payment.bic: 'COBA' is not a BIC: 8 or 11 letters and digits such "
         "as COBADEFFXXX"],
    ),
    "payment terms in weeks": (
        [("terms_days: 14", "terms_days: 2 weeks")],
        ["line 12: seller.payment.terms_days: must be a whole number such as 10"],
    ),
    "no contact phone": (
        [('phone: "+49 711 4005", ', "")],
        ["line 9: seller.contact.phone: is missing: this key is required"],
    ),
    "a line break in the VAT note": (
        [("currency: EUR\n", 'currency: EUR\nvat: {reverse_charge_note: "a\\nb"}\n')],
        ["line 2: vat.reverse_charge_note: contains a line break (U+000A) at character 2: "
         "write it on one line"],
    ),
}


@pytest.mark.parametrize(("changes", "expected"), CASES.values(), ids=CASES.keys())
def test_located_seller_message(edit, errors_of, changes, expected):
    assert errors_of(edit(*changes)) == expected


def test_seller_values_are_normalised(edit):
    rules = load_rules(edit(
        ("vat_id: DE136695976", "vat_id: de 136 695 976"),
        ("iban: DE89370400440532013000}", "iban: de89 3704 0044 0532 0130 00, bic: cobadeffxxx}"),
        ("country: DE}", "country: de}"),
    ))
    seller = rules.seller
    assert (seller.vat_id, seller.iban, seller.bic, seller.country) == (
        "DE136695976", "DE89370400440532013000", "COBADEFFXXX", "DE"
    )
    assert seller.payment_terms_days == 14
    assert rules.vat.reverse_charge_note.startswith("Steuerschuldnerschaft")


def test_the_shipped_seller_is_complete():
    seller = load_rules_file(RULES_PATH).seller
    printed = (
        seller.vat_id, seller.tax_number, seller.register_court, seller.register_number,
        seller.managing_directors, seller.contact_name, seller.contact_phone,
        seller.contact_email, seller.iban, seller.bic, seller.payment_terms_days,
    )
    assert all(printed), printed
    assert seller.address == ("Königstraße 12", "70173 Stuttgart")
