"""The XRechnung 3.0 rules (KoSIT's BR-DE and the Peppol rules it adopted) that
apply to the invoices this plugin writes, re-implemented as XPath checks.

This is *not* KoSIT's Schematron: that is published only as a release archive
on KoSIT's project pages and is not shipped by any package that installs
offline here, and its validator is Java.  The rules below are the ones whose
failure our data could cause (payment instructions, seller contact,
addresses, buyer reference, VAT identification, type code, IBAN,
specification id, electronic addresses); rules about groups this plugin never
writes (delivery address, direct debit, payment cards, Skonto) are left out.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

from lxml import etree
from stdnum import iban as stdnum_iban

from .document import GUIDELINES

if TYPE_CHECKING:
    from .validation import RuleFailure

_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
_TX = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction"
_AGR = f"{_TX}/ram:ApplicableHeaderTradeAgreement"
_STL = f"{_TX}/ram:ApplicableHeaderTradeSettlement"
_SELLER = f"{_AGR}/ram:SellerTradeParty"
_BUYER = f"{_AGR}/ram:BuyerTradeParty"
_CONTACT = f"{_SELLER}/ram:DefinedTradeContact"
_MEANS = f"{_STL}/ram:SpecifiedTradeSettlementPaymentMeans"

#: (rule id, XPath that must be true, message): KoSIT's wording, in English.
_PRESENT: tuple[tuple[str, str, str], ...] = (
    ("BR-DE-1", f"boolean({_MEANS})", "An invoice must contain payment instructions (BG-16)."),
    ("BR-DE-2", f"boolean({_CONTACT})", "The group SELLER CONTACT (BG-6) must be present."),
    ("BR-DE-3", f"normalize-space({_SELLER}/ram:PostalTradeAddress/ram:CityName) != ''",
     "Seller city (BT-37) must be present."),
    ("BR-DE-4", f"normalize-space({_SELLER}/ram:PostalTradeAddress/ram:PostcodeCode) != ''",
     "Seller post code (BT-38) must be present."),
    ("BR-DE-5", f"normalize-space({_CONTACT}/ram:PersonName) != ''",
     "Seller contact point (BT-41) must be present."),
    ("BR-DE-6",
     f"normalize-space({_CONTACT}/ram:TelephoneUniversalCommunication/ram:CompleteNumber) != ''",
     "Seller contact telephone number (BT-42) must be present."),
    ("BR-DE-7",
     f"normalize-space({_CONTACT}/ram:EmailURIUniversalCommunication/ram:URIID) != ''",
     "Seller contact email address (BT-43) must be present."),
    ("BR-DE-8", f"normalize-space({_BUYER}/ram:PostalTradeAddress/ram:CityName) != ''",
     "Buyer city (BT-52) must be present."),
    ("BR-DE-9", f"normalize-space({_BUYER}/ram:PostalTradeAddress/ram:PostcodeCode) != ''",
     "Buyer post code (BT-53) must be present."),
    ("BR-DE-14", f"not({_STL}/ram:ApplicableTradeTax[not(ram:RateApplicablePercent)])",
     "VAT category rate (BT-119) must be present."),
    ("BR-DE-15", f"normalize-space({_AGR}/ram:BuyerReference) != ''",
     "Buyer reference (BT-10) must be present."),
    ("BR-DE-16",
     f"{_SELLER}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID = 'VA' or @schemeID = 'FC']"
     f" or not({_STL}/ram:ApplicableTradeTax/ram:CategoryCode[. = 'S' or . = 'AE'])",
     "Seller VAT identifier (BT-31) or tax registration identifier (BT-32) must be present."),
    ("BR-DE-17",
     "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode"
     "[. = '326' or . = '380' or . = '384' or . = '389' or . = '381' or . = '875'"
     " or . = '876' or . = '877']",
     "Invoice type code (BT-3) should be one of 326, 380, 384, 389, 381, 875, 876, 877."),
    ("BR-DE-21",
     "/rsm:CrossIndustryInvoice/rsm:ExchangedDocumentContext"
     f"/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID = '{GUIDELINES['xrechnung']}'",
     "Specification identifier (BT-24) must be the XRechnung 3.0 one."),
    ("BR-DE-23-a",
     f"not({_MEANS}/ram:TypeCode[. = '30' or . = '58']) or "
     f"{_MEANS}/ram:PayeePartyCreditorFinancialAccount/ram:IBANID",
     "With payment means 30 or 58, CREDIT TRANSFER (BG-17) must be present."),
    ("PEPPOL-EN16931-R010", f"normalize-space({_BUYER}/ram:URIUniversalCommunication/ram:URIID)"
     " != ''", "Buyer electronic address (BT-49) must be present."),
    ("PEPPOL-EN16931-R020", f"normalize-space({_SELLER}/ram:URIUniversalCommunication/ram:URIID)"
     " != ''", "Seller electronic address (BT-34) must be present."),
)

_PHONE_DIGITS = re.compile(r"\d")


def check(tree: etree._Element) -> list[RuleFailure]:
    """The XRechnung rules ``tree`` (a parsed CII document) breaks."""
    from .validation import RuleFailure

    failures = [
        RuleFailure("xrechnung", rule, message)
        for rule, test, message in _PRESENT
        if not tree.xpath(f"boolean({test})", namespaces=_NS)
    ]
    # lxml-stubs type every XPath result as the union of all kinds; text() gives strings.
    ibans = cast(list[str], tree.xpath(
        f"{_MEANS}[ram:TypeCode = '58']/ram:PayeePartyCreditorFinancialAccount/ram:IBANID/text()",
        namespaces=_NS,
    ))
    for iban in ibans:
        if not stdnum_iban.is_valid(iban):
            failures.append(RuleFailure(
                "xrechnung", "BR-DE-19", f"{iban!r} is not a valid IBAN (BT-84)."))
    phone = str(tree.xpath(
        f"string({_CONTACT}/ram:TelephoneUniversalCommunication/ram:CompleteNumber)",
        namespaces=_NS,
    ))
    if phone and len(_PHONE_DIGITS.findall(phone)) < 3:
        failures.append(RuleFailure(
            "xrechnung", "BR-DE-27", "Seller contact telephone number (BT-42) needs 3 digits."))
    email = str(tree.xpath(f"string({_CONTACT}/ram:EmailURIUniversalCommunication/ram:URIID)",
                           namespaces=_NS))
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        failures.append(RuleFailure(
            "xrechnung", "BR-DE-28", "Seller contact email address (BT-43) is not an address."))
    return failures
