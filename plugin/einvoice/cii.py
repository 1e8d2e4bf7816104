"""The UN/CEFACT Cross Industry Invoice (CII D16B) of an :class:`EInvoice`.

One builder serves both formats: Factur-X / ZUGFeRD in the EN 16931 profile
and the XRechnung 3.0 CIUS of it.  They differ only in the specification
identifier (BT-24) and in what XRechnung makes mandatory, which the builder
writes whenever the data is there (seller contact BT-41/42/43, buyer
reference BT-10, electronic addresses BT-34/BT-49).

The tree is built with lxml, so every text is escaped as XML text: a buyer
name such as ``</ram:Name><script>`` stays a name; a control character shows
as ``<U+XXXX>``.  Element order follows the
CII XSD (checked by :mod:`plugin.einvoice.validation`).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from lxml import etree

from ..rules.currencies import MINOR_UNITS
from ..validators import visible
from .document import Address, Buyer, EInvoice, Seller

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}

#: UN/ECE Recommendation 20 "one": a licence, a team, a minimum charge.
UNIT_CODE = "C62"
#: UNTDID 4461: SEPA credit transfer.
SEPA_CREDIT_TRANSFER = "58"


def _qname(tag: str) -> str:
    prefix, local = tag.split(":")
    return f"{{{NS[prefix]}}}{local}"


def _sub(
    parent: etree._Element, tag: str, text: str | None = None, **attrib: str
) -> etree._Element:
    """A child element; its text with refused characters as ``<U+XXXX>`` (``visible``).

    XML 1.0 cannot hold most C0 controls at all (lxml refuses them), and a
    bidirectional override would reorder the text a reader sees: a value
    stored before the values were checked shows as an escape instead.
    """
    element = etree.SubElement(parent, _qname(tag), attrib)
    if text is not None:
        element.text = visible(text)
    return element


def _amount(value: Decimal, currency: str) -> str:
    places = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    # ``copy_abs`` on zero: a negated 0.00 is -0.00, which BR-AE-09 does not take for zero.
    value = value.copy_abs() if value == 0 else value
    return f"{value.quantize(places, rounding=ROUND_HALF_UP):f}"


def _number(value: Decimal) -> str:
    """A quantity, price or rate without trailing zeros (``19``, ``0.125``)."""
    text = f"{value.normalize():f}"
    return text if text != "-0" else "0"


def _date(parent: etree._Element, tag: str, day: date, *, qualified: bool = False) -> None:
    holder = _sub(parent, tag)
    _sub(holder, "qdt:DateTimeString" if qualified else "udt:DateTimeString",
         day.strftime("%Y%m%d"), format="102")


def _address(parent: etree._Element, address: Address) -> None:
    postal = _sub(parent, "ram:PostalTradeAddress")
    _sub(postal, "ram:PostcodeCode", address.postcode)
    for tag, line in zip(("ram:LineOne", "ram:LineTwo", "ram:LineThree"), address.lines,
                         strict=False):
        _sub(postal, tag, line)
    _sub(postal, "ram:CityName", address.city)
    _sub(postal, "ram:CountryID", address.country)


def _electronic_address(parent: etree._Element, email: str | None) -> None:
    if email:
        uri = _sub(parent, "ram:URIUniversalCommunication")
        _sub(uri, "ram:URIID", email, schemeID="EM")


def _tax_registration(parent: etree._Element, scheme: str, value: str | None) -> None:
    if value:
        registration = _sub(parent, "ram:SpecifiedTaxRegistration")
        _sub(registration, "ram:ID", value, schemeID=scheme)


def _seller(parent: etree._Element, seller: Seller, *, vat_ids: bool) -> None:
    party = _sub(parent, "ram:SellerTradeParty")
    _sub(party, "ram:Name", seller.name)
    if seller.legal_info:
        _sub(party, "ram:Description", seller.legal_info)
    if seller.register_number:
        legal = _sub(party, "ram:SpecifiedLegalOrganization")
        _sub(legal, "ram:ID", seller.register_number)
    if seller.contact:
        contact = _sub(party, "ram:DefinedTradeContact")
        _sub(contact, "ram:PersonName", seller.contact.name)
        phone = _sub(contact, "ram:TelephoneUniversalCommunication")
        _sub(phone, "ram:CompleteNumber", seller.contact.phone)
        email = _sub(contact, "ram:EmailURIUniversalCommunication")
        _sub(email, "ram:URIID", seller.contact.email)
    _address(party, seller.address)
    _electronic_address(party, seller.email)
    if vat_ids:
        _tax_registration(party, "VA", seller.vat_id)
    _tax_registration(party, "FC", seller.tax_number)


def _buyer(parent: etree._Element, buyer: Buyer, *, vat_ids: bool) -> None:
    party = _sub(parent, "ram:BuyerTradeParty")
    _sub(party, "ram:Name", buyer.name)
    _address(party, buyer.address)
    _electronic_address(party, buyer.email)
    if vat_ids:
        _tax_registration(party, "VA", buyer.vat_id)


def _trade_tax(parent: etree._Element, invoice: EInvoice, *, basis: Decimal | None = None,
               tax: Decimal | None = None) -> None:
    """BG-23 at the header (with ``basis`` and ``tax``) or BG-30 on a line (without)."""
    vat = invoice.vat
    node = _sub(parent, "ram:ApplicableTradeTax")
    if tax is not None:
        _sub(node, "ram:CalculatedAmount", _amount(tax, invoice.currency))
    _sub(node, "ram:TypeCode", "VAT")
    if basis is not None and vat.exemption_reason:
        _sub(node, "ram:ExemptionReason", vat.exemption_reason)
    if basis is not None:
        _sub(node, "ram:BasisAmount", _amount(basis, invoice.currency))
    _sub(node, "ram:CategoryCode", vat.category)
    if basis is not None and vat.exemption_code:
        _sub(node, "ram:ExemptionReasonCode", vat.exemption_code)
    # EN 16931 BR-O-05/BR-O-09: category O has no rate at all.
    if vat.category != "O":
        _sub(node, "ram:RateApplicablePercent", _number(vat.rate * 100))


def _lines(transaction: etree._Element, invoice: EInvoice) -> None:
    for index, line in enumerate(invoice.lines, start=1):
        item = _sub(transaction, "ram:IncludedSupplyChainTradeLineItem")
        document = _sub(item, "ram:AssociatedDocumentLineDocument")
        _sub(document, "ram:LineID", str(index))
        product = _sub(item, "ram:SpecifiedTradeProduct")
        _sub(product, "ram:Name", line.description)
        # BR-27: a price is never negative; a negative line has a negative quantity.
        sign = -1 if line.unit_price < 0 else 1
        agreement = _sub(item, "ram:SpecifiedLineTradeAgreement")
        price = _sub(agreement, "ram:NetPriceProductTradePrice")
        _sub(price, "ram:ChargeAmount", _number(sign * line.unit_price))
        delivery = _sub(item, "ram:SpecifiedLineTradeDelivery")
        _sub(delivery, "ram:BilledQuantity", _number(sign * line.quantity), unitCode=UNIT_CODE)
        settlement = _sub(item, "ram:SpecifiedLineTradeSettlement")
        _trade_tax(settlement, invoice)
        summation = _sub(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _sub(summation, "ram:LineTotalAmount", _amount(line.amount, invoice.currency))


def _settlement(transaction: etree._Element, invoice: EInvoice) -> None:
    currency = invoice.currency
    settlement = _sub(transaction, "ram:ApplicableHeaderTradeSettlement")
    _sub(settlement, "ram:PaymentReference", invoice.number)
    _sub(settlement, "ram:InvoiceCurrencyCode", currency)
    payment = invoice.payment
    means = _sub(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    _sub(means, "ram:TypeCode", SEPA_CREDIT_TRANSFER)
    account = _sub(means, "ram:PayeePartyCreditorFinancialAccount")
    _sub(account, "ram:IBANID", payment.iban)
    if payment.bic:
        institution = _sub(means, "ram:PayeeSpecifiedCreditorFinancialInstitution")
        _sub(institution, "ram:BICID", payment.bic)
    _trade_tax(settlement, invoice, basis=invoice.net, tax=invoice.tax)
    period = _sub(settlement, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", invoice.service_start)
    _date(period, "ram:EndDateTime", invoice.service_end)
    terms = _sub(settlement, "ram:SpecifiedTradePaymentTerms")
    _sub(terms, "ram:Description", payment.terms)
    _date(terms, "ram:DueDateDateTime", payment.due_date)
    totals = _sub(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(totals, "ram:LineTotalAmount", _amount(invoice.net, currency))
    _sub(totals, "ram:TaxBasisTotalAmount", _amount(invoice.net, currency))
    _sub(totals, "ram:TaxTotalAmount", _amount(invoice.tax, currency), currencyID=currency)
    _sub(totals, "ram:GrandTotalAmount", _amount(invoice.gross, currency))
    _sub(totals, "ram:DuePayableAmount", _amount(invoice.gross, currency))
    if invoice.preceding:
        reference = _sub(settlement, "ram:InvoiceReferencedDocument")
        _sub(reference, "ram:IssuerAssignedID", invoice.preceding.number)
        _date(reference, "ram:FormattedIssueDateTime", invoice.preceding.issue_date,
              qualified=True)


def build_cii(invoice: EInvoice) -> bytes:
    """The CII XML of ``invoice`` as UTF-8 bytes with an XML declaration."""
    root = etree.Element(_qname("rsm:CrossIndustryInvoice"), nsmap=NS)
    context = _sub(root, "rsm:ExchangedDocumentContext")
    guideline = _sub(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _sub(guideline, "ram:ID", invoice.guideline)

    header = _sub(root, "rsm:ExchangedDocument")
    _sub(header, "ram:ID", invoice.number)
    _sub(header, "ram:TypeCode", invoice.type_code)
    _date(header, "ram:IssueDateTime", invoice.issue_date)
    for text in invoice.notes:
        note = _sub(header, "ram:IncludedNote")
        _sub(note, "ram:Content", text)

    transaction = _sub(root, "rsm:SupplyChainTradeTransaction")
    _lines(transaction, invoice)
    agreement = _sub(transaction, "ram:ApplicableHeaderTradeAgreement")
    if invoice.buyer.reference:
        _sub(agreement, "ram:BuyerReference", invoice.buyer.reference)
    # EN 16931 BR-O-02: an invoice outside the scope of VAT names no VAT IDs.
    vat_ids = invoice.vat.category != "O"
    _seller(agreement, invoice.seller, vat_ids=vat_ids)
    _buyer(agreement, invoice.buyer, vat_ids=vat_ids)
    if invoice.buyer.order_reference:
        order = _sub(agreement, "ram:BuyerOrderReferencedDocument")
        _sub(order, "ram:IssuerAssignedID", invoice.buyer.order_reference)
    # BT-72, the end of the service period: an empty delivery element draws a warning.
    delivery = _sub(transaction, "ram:ApplicableHeaderTradeDelivery")
    event = _sub(delivery, "ram:ActualDeliverySupplyChainEvent")
    _date(event, "ram:OccurrenceDateTime", invoice.service_end)
    _settlement(transaction, invoice)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
