"""The values the plugin stores, validated once for every path that accepts them.

The import file, the ``flask billing`` commands, the admin forms, the CSV
upload, :mod:`plugin.api` and ``pricing_rules.yaml`` all call these
functions, so one value is accepted or refused the same way wherever it is
typed.  Each returns the normalised value or raises :class:`InvalidValue`
with a message that says what is wrong and how to write it; the caller puts
the location in front (a file's line, a form field, a command-line option).
No network: ``python-stdnum`` checks formats and check digits offline.

Every text refuses the characters :func:`characters` names: C0 and C1
control characters (a tab and a line break among them: only a text of
several lines, :func:`text_block`, may hold a line break), the Unicode line
and paragraph separators, the bidirectional embeddings, overrides and
isolates that make text show in another order than it is stored, and lone
surrogates.  What is already stored is shown with :func:`visible` wherever
it leaves the plugin (PDF, e-invoice XML, mail, exports).
"""

from __future__ import annotations

import functools
import re
import unicodedata

from babel import Locale
from email_validator import EmailNotValidError, validate_email
from stdnum import bic as stdnum_bic
from stdnum import get_cc_module
from stdnum import iban as stdnum_iban
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.iso7064 import mod_97_10

from .i18n import _

LANGUAGES = ("de", "en")

#: The EU member states by ISO 3166-1 code (Greece is GR here, EL in its VAT IDs).
EU_COUNTRIES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})
#: ISO country code -> the prefix of its VAT IDs, where they differ.
_VAT_PREFIX = {"GR": "EL"}
#: Babel's territories that are not countries with an ISO 3166-1 alpha-2 code.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})

#: A Leitweg-ID: coarse address (2-12 digits), optional fine address, two check digits.
_LEITWEG = re.compile(r"[0-9]{2,12}(?:-[A-Z0-9]{1,30})?-[0-9]{2}")
#: C0 controls, DEL and C1 controls; the line and paragraph separators; the bidirectional
#: embeddings, overrides (U+202A-U+202E) and isolates (U+2066-U+2069) of "Trojan Source"
#: (CVE-2021-42574); lone surrogates, which a JSON escape such as ``"\ud800"`` can produce.
_OTHER_REFUSED = r"\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(rf"[\x00-\x1f{_OTHER_REFUSED}]")
#: The same but for the line feed: what a text of several lines may not hold.
_UNSAFE_IN_BLOCK = re.compile(rf"[\x00-\x09\x0b-\x1f{_OTHER_REFUSED}]")
#: What Python counts as a line break (``str.splitlines``) among the refused characters.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: The bytes no refused character's UTF-8 form starts with (see :func:`suspect_bytes`).
_CLEAR_BYTES = bytes(b for b in range(0x20, 0x100) if b not in (0x7F, 0xC2, 0xE2, 0xED))
_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_SHOWN = 60


class InvalidValue(ValueError):
    """A value that is refused; ``str()`` says why and how to write it."""


def shown(value: object, *, limit: int = _SHOWN) -> str:
    """``value`` quoted for a message, control characters escaped, cut after ``limit``."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "…'"


def characters(value: str, *, line_breaks: bool = False) -> str:
    """``value`` unchanged if it holds none of the refused characters (see the module).

    With ``line_breaks`` a line feed (U+000A) is allowed: a text of several
    lines.  Otherwise :class:`InvalidValue` names the first refused character,
    its code point and its position (counted from 1), and never shows it raw.
    """
    found = (_UNSAFE_IN_BLOCK if line_breaks else _UNSAFE).search(value)
    if found is None:
        return value
    character = found.group()
    code = f"U+{ord(character):04X}"
    position = found.start() + 1
    if character in _BIDI:
        raise InvalidValue(
            _(
                "contains the bidirectional control %(code)s (%(name)s) at character "
                "%(position)s, which shows text in another order than it is stored: remove it",
                code=code,
                name=unicodedata.name(character),
                position=position,
            )
        )
    if "\ud800" <= character <= "\udfff":
        raise InvalidValue(
            _(
                "contains the lone surrogate %(code)s at character %(position)s, which is no "
                "character: write the character itself",
                code=code,
                position=position,
            )
        )
    if character in _LINE_BREAKS:
        raise InvalidValue(
            _(
                "contains a line break (%(code)s) at character %(position)s: write it on one line",
                code=code,
                position=position,
            )
        )
    if character == "\t":
        raise InvalidValue(
            _(
                "contains a tab (%(code)s) at character %(position)s: write spaces instead",
                code=code,
                position=position,
            )
        )
    raise InvalidValue(
        _(
            "contains the control character %(code)s at character %(position)s: write printable "
            "text only",
            code=code,
            position=position,
        )
    )


def holds_refused(text: str) -> bool:
    """Whether ``text`` holds any of the refused characters, a line feed among them."""
    return _UNSAFE.search(text) is not None


def suspect_bytes(text: str) -> bytes:
    """The bytes of ``text`` in UTF-8 that could begin a refused character, in order.

    A quick first look for long texts (a CSV export's batch of rows), about
    ten times faster than :func:`holds_refused`: the bytes below U+0020 and
    DEL, and the lead bytes of C1 (``C2``), of U+2028-U+2069 (``E2``) and of
    surrogates (``ED``).  Empty, or only expected bytes: nothing refused;
    otherwise ask :func:`holds_refused`.
    """
    return text.encode("utf-8", "surrogatepass").translate(None, _CLEAR_BYTES)


def visible(text: str, escape: str = "<U+{:04X}>") -> str:
    """``text`` with each refused character but the line feed shown as ``<U+XXXX>``.

    For what is already stored (a row written before the values were
    checked, or by hand): a PDF, an e-invoice, a mail or an export shows
    the character as an escape instead of carrying it.  A line feed is kept:
    it is white space in HTML and XML, and a mail's subject folds it away.
    ``escape`` is the form of the escape, given the code point (HTML markup
    needs ``&lt;U+{:04X}&gt;``).  ``text`` itself is returned when it is clean.
    """
    if _UNSAFE_IN_BLOCK.search(text) is None:
        return text
    return _UNSAFE_IN_BLOCK.sub(lambda found: escape.format(ord(found.group())), text)


def text_line(value: object, *, max_length: int = 200) -> str:
    """One line of printable text, stripped; refused: :func:`characters`, empty, too long."""
    if not isinstance(value, str):
        raise InvalidValue(_("must be text"))
    return _bounded(characters(value).strip(), max_length)


def person_name(value: object) -> str:
    """A person's name: one line of at most 200 characters, or empty (not known yet)."""
    if value is None or (isinstance(value, str) and not characters(value).strip()):
        return ""
    return text_line(value, max_length=200)


def text_block(value: object, *, max_length: int = 500) -> str:
    """Text of one or more lines (line ends made ``\\n``), stripped; else as :func:`text_line`."""
    if not isinstance(value, str):
        raise InvalidValue(_("must be text"))
    text = characters(value.replace("\r\n", "\n").replace("\r", "\n"), line_breaks=True)
    return _bounded(text.strip(), max_length)


def _bounded(text: str, max_length: int) -> str:
    if not text:
        raise InvalidValue(_("must not be empty"))
    if len(text) > max_length:
        raise InvalidValue(
            _(
                "must be at most %(max)s characters long, not %(length)s",
                max=max_length,
                length=len(text),
            )
        )
    return text


def key(value: object) -> str:
    """A workspace, team or contract key: 1-63 lower-case letters, digits or '-'."""
    if not isinstance(value, str) or _KEY.fullmatch(characters(value)) is None:
        raise InvalidValue(
            _("must be 1-63 lower-case letters, digits or '-', not starting with '-'")
        )
    return value


def email_address(value: object) -> str:
    """A person's e-mail address in its stored form: normalised and lower-cased.

    The import file, :mod:`plugin.api`, the CLI and the admin store people
    by this form, so a person invited by hand and one imported are one
    person.  International addresses are allowed (unlike an invoice mailbox).
    Spaces around it are dropped (a pasted address often has them); a line
    break or another control character is refused, never stripped.
    """
    if not isinstance(value, str):
        raise InvalidValue(_("must be an e-mail address such as anna@example.com"))
    try:
        result = validate_email(
            characters(value).strip(" "), check_deliverability=False, allow_display_name=False
        )
    except EmailNotValidError as exc:
        raise InvalidValue(_("is not a valid e-mail address: %(reason)s", reason=exc)) from None
    return result.normalized.lower()


@functools.cache
def niceness(value: object) -> int:
    """A process niceness for background work: an integer from 0 (normal) to 19 (idle only)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 19:
        raise InvalidValue(_("must be a niceness from 0 to 19, not %(value)s", value=shown(value)))
    return value


def country_names(language: str) -> dict[str, str]:
    """ISO 3166-1 alpha-2 code -> the country's name in ``language`` (from Babel's CLDR data)."""
    territories = Locale.parse(language).territories
    return {
        code: name
        for code, name in territories.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    }


def country_code(value: object) -> str:
    """An ISO 3166-1 alpha-2 country code, upper case (``de`` -> ``DE``)."""
    if not isinstance(value, str):
        raise InvalidValue(_("must be a two-letter ISO 3166-1 country code such as DE"))
    code = value.strip().upper()
    if code not in country_names("en"):
        raise InvalidValue(
            _(
                "%(value)s is not an ISO 3166-1 country code: use two letters such as DE, FR or US",
                value=shown(value),
            )
        )
    return code


def language(value: object) -> str:
    """The language of a customer's documents: ``de`` or ``en``."""
    code = value.strip().lower() if isinstance(value, str) else value
    if code not in LANGUAGES:
        raise InvalidValue(
            _("%(value)s is not a document language: use de or en", value=shown(value))
        )
    return code


def vat_id(value: object, country: str | None = None) -> str:
    """A VAT identification number, normalised (``fr 40 303 265 045`` -> ``FR40303265045``).

    Checked with python-stdnum for its country's format and check digits.  An
    EU customer's VAT ID must carry the prefix of ``country`` (EL for Greece).
    Outside the EU the number is checked where python-stdnum knows the
    country's format (CH, GB, NO, …), otherwise only for letters and digits.
    """
    if not isinstance(value, str):
        raise InvalidValue(_("must be a VAT ID such as DE136695976"))
    text_line(value, max_length=30)
    compact = re.sub(r"[\s.\-/]", "", value).upper()
    if country is None or country in EU_COUNTRIES:
        try:
            number = eu_vat.validate(compact)
        except StdnumError as exc:
            raise InvalidValue(
                _(
                    "%(value)s is not a valid EU VAT ID (%(reason)s): write the country prefix "
                    "and the number, such as FR40303265045",
                    value=shown(value),
                    reason=_number_problem(exc),
                )
            ) from None
        prefix = _VAT_PREFIX.get(country, country) if country is not None else None
        if prefix is not None and not number.startswith(prefix):
            raise InvalidValue(
                _(
                    "%(value)s is not a VAT ID of %(country)s: it must start with %(prefix)s",
                    value=shown(value),
                    country=country,
                    prefix=prefix,
                )
            )
        return number
    module = get_cc_module(country.lower(), "vat")
    if module is not None:
        try:
            module.validate(compact)
        except StdnumError as exc:
            raise InvalidValue(
                _(
                    "%(value)s is not a valid VAT number of %(country)s (%(reason)s)",
                    value=shown(value),
                    country=country,
                    reason=_number_problem(exc),
                )
            ) from None
        return compact
    if not re.fullmatch(r"[A-Z0-9]{4,20}", compact):
        raise InvalidValue(
            _("%(value)s is not a VAT number: 4 to 20 letters and digits", value=shown(value))
        )
    return compact


def _number_problem(exc: StdnumError) -> str:
    """python-stdnum's reason, in the user's language where it is one of its own four."""
    reason = str(exc).rstrip(".").lower()
    return {
        "the number has an invalid format": _("the number has an invalid format"),
        "the number has an invalid length": _("the number has an invalid length"),
        "the number's checksum or check digit is invalid": _(
            "the number's checksum or check digit is invalid"
        ),
        "one of the parts of the number are invalid or unknown": _(
            "one of the parts of the number are invalid or unknown"
        ),
    }.get(reason, reason)


def iban(value: object) -> str:
    """An IBAN, normalised without spaces; format and check digits checked."""
    if not isinstance(value, str):
        raise InvalidValue(_("must be an IBAN such as DE89 3704 0044 0532 0130 00"))
    try:
        return stdnum_iban.validate(value)
    except StdnumError as exc:
        raise InvalidValue(
            _(
                "is not a valid IBAN (%(reason)s): two letters, two check digits, then the account",
                reason=_number_problem(exc),
            )
        ) from None


def bic(value: object) -> str:
    """A BIC (SWIFT code) of 8 or 11 characters, upper case."""
    if not isinstance(value, str):
        raise InvalidValue(_("must be a BIC such as COBADEFFXXX"))
    try:
        return stdnum_bic.validate(value)
    except StdnumError:
        raise InvalidValue(
            _(
                "%(value)s is not a BIC: 8 or 11 letters and digits such as COBADEFFXXX",
                value=shown(value),
            )
        ) from None


def looks_like_leitweg_id(value: str) -> bool:
    """Whether ``value`` has the shape of a Leitweg-ID (its check digits aside)."""
    return _LEITWEG.fullmatch(value.strip().upper()) is not None


def is_leitweg_id(value: str | None) -> bool:
    """Whether ``value`` is a Leitweg-ID with matching check digits (ISO 7064 mod 97-10)."""
    if not value or not looks_like_leitweg_id(value):
        return False
    return mod_97_10.is_valid(value.strip().upper().replace("-", ""))


def buyer_reference(value: object) -> str:
    """A buyer reference (BT-10); one that looks like a Leitweg-ID must have valid check digits."""
    reference = text_line(value, max_length=100)
    if looks_like_leitweg_id(reference) and not is_leitweg_id(reference):
        raise InvalidValue(
            _(
                "%(value)s looks like a Leitweg-ID but its check digits do not match: copy it "
                "exactly as the public-sector customer gave it",
                value=shown(reference),
            )
        )
    return reference.upper() if looks_like_leitweg_id(reference) else reference
