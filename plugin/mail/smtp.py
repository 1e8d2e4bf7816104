"""Delivery over SMTP: the settings, and a transport that sends composed mails with smtplib.

Nothing here touches the database: :mod:`plugin.services.mail_delivery`
claims the mails, hands each one to :meth:`SmtpTransport.send` and records
the outcome.  The message itself is made by :mod:`plugin.mail.compose`.  The
contract with the delivery is in the exceptions: ``send`` returns only when
the server has accepted the mail (250 after DATA), raises
:class:`~plugin.services.mail_delivery.PermanentFailure` for a 5xx reply and
:class:`~plugin.services.mail_delivery.TemporaryFailure` for everything that
may work later (no connection, timeouts, 4xx, a connection dropped mid-way).

The recipient is passed to the server explicitly as the envelope's only
``RCPT TO``; no header of the message is ever read for recipients.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from ipaddress import ip_address
from types import TracebackType
from typing import Any

from ..services.mail_delivery import OutgoingMail, PermanentFailure, TemporaryFailure
from ..types import utcnow
from .compose import as_wire_bytes, compose

SECURITY_MODES = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


class SmtpConfigError(RuntimeError):
    """The ``BILLING_SMTP_*`` / ``BILLING_MAIL_*`` settings cannot work: the message says which."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    timeout: float
    sender: Address
    domain: str
    #: TLS settings for ``starttls`` / ``tls``; ``None``: the system's trusted CAs, verified.
    ssl_context: ssl.SSLContext | None = None

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, default_sender: Address | None = None
    ) -> SmtpSettings:
        """The settings from the app config; the sender defaults to ``default_sender``.

        Refuses a login on a connection without TLS to anything but this
        machine: the password would cross the network in clear text.
        """
        security = str(config.get("BILLING_SMTP_SECURITY") or "none").lower()
        if security not in SECURITY_MODES:
            raise SmtpConfigError(
                f"BILLING_SMTP_SECURITY is {security!r}: use one of {', '.join(SECURITY_MODES)}"
            )
        host = str(config.get("BILLING_SMTP_HOST") or "localhost")
        username = config.get("BILLING_SMTP_USERNAME") or None
        if username and security == "none" and not _is_loopback(host):
            raise SmtpConfigError(
                "BILLING_SMTP_USERNAME is set but BILLING_SMTP_SECURITY is 'none': the password "
                f"would go to {host} in clear text; use 'starttls' or 'tls'"
            )
        sender = _sender(config.get("BILLING_MAIL_SENDER"), default_sender)
        return cls(
            host=host,
            port=_port(config.get("BILLING_SMTP_PORT"), security),
            security=security,
            username=username,
            password=config.get("BILLING_SMTP_PASSWORD") or None,
            timeout=_timeout(config.get("BILLING_SMTP_TIMEOUT", 30)),
            sender=sender,
            domain=_domain(config.get("BILLING_MAIL_DOMAIN") or sender.domain),
        )

    @property
    def lease(self) -> timedelta:
        """How long one mail may hold a worker: a session is a few round trips of ``timeout``."""
        return max(timedelta(minutes=5), timedelta(seconds=10 * self.timeout))

    def message_id(self, key: str) -> str:
        return f"<{key}@{self.domain}>"


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _port(value: Any, security: str) -> int:
    if value in (None, ""):
        return DEFAULT_PORTS[security]
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise SmtpConfigError(f"BILLING_SMTP_PORT is {value!r}: a port number from 1 to 65535")
    return port


def _timeout(value: Any) -> float:
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        timeout = 0
    if not timeout > 0:
        raise SmtpConfigError(f"BILLING_SMTP_TIMEOUT is {value!r}: a number of seconds above 0")
    return timeout


def _sender(value: Any, default: Address | None) -> Address:
    if value in (None, ""):
        if default is None:
            raise SmtpConfigError("BILLING_MAIL_SENDER is not set")
        return default
    text = str(value)
    name, addr = parseaddr(text)
    if any(ord(char) < 0x20 for char in text) or "@" not in addr:
        raise SmtpConfigError(
            f"BILLING_MAIL_SENDER is {text!r}: write addr@host or Name <addr@host>"
        )
    try:
        return Address(display_name=name, addr_spec=addr)
    except (ValueError, HeaderParseError) as exc:
        raise SmtpConfigError(f"BILLING_MAIL_SENDER is {text!r}: {exc}") from None


def _domain(value: str) -> str:
    if not _DOMAIN.match(value):
        raise SmtpConfigError(
            f"BILLING_MAIL_DOMAIN is {value!r}: a domain name such as example.com"
        )
    return value.lower()


class SmtpTransport:
    """One SMTP session, opened on the first mail and reused until a failure or :meth:`close`."""

    def __init__(self, settings: SmtpSettings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clock = clock
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, mail: OutgoingMail) -> None:
        """Send ``mail`` to its recipient only; return once the server has accepted it."""
        data = as_wire_bytes(compose(mail, self.settings, now=self.clock()))
        client = self._session()
        try:
            client.sendmail(self.settings.sender.addr_spec, [mail.recipient], data)
        except smtplib.SMTPRecipientsRefused as exc:
            self._drop()
            code, reply = next(iter(exc.recipients.values()))
            raise _by_code(code, reply, "RCPT TO") from None
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise _by_code(exc.smtp_code, exc.smtp_error, _stage(exc)) from None
        except smtplib.SMTPNotSupportedError as exc:
            self._drop()
            raise PermanentFailure(f"the server cannot take this mail: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise TemporaryFailure(f"connection lost while sending: {_describe(exc)}") from None
        except BaseException:
            # Anything else (an address smtplib cannot encode, a stop signal) may have
            # left the server inside this mail's transaction, after MAIL FROM: reusing
            # the session would make the next mail's MAIL FROM a "503 nested MAIL".
            self._drop()
            raise

    def close(self) -> None:
        """End the session politely if it still stands; never raises."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def _drop(self) -> None:
        """Forget the session after a failure: the next mail starts a fresh one."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _session(self) -> smtplib.SMTP:
        if self._client is None:
            settings = self.settings
            where = f"{settings.host}:{settings.port}"
            try:
                self._client = self._open()
            except smtplib.SMTPResponseException as exc:
                reply = _reply(exc.smtp_code, exc.smtp_error)
                raise TemporaryFailure(
                    f"the SMTP server {where} refused the session: {reply}", connection=True
                ) from None
            except (smtplib.SMTPException, OSError) as exc:
                raise TemporaryFailure(
                    f"cannot reach the SMTP server {where}: {_describe(exc)}", connection=True
                ) from None
        return self._client

    def _open(self) -> smtplib.SMTP:
        settings = self.settings
        context = settings.ssl_context or ssl.create_default_context()
        if settings.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            client.ehlo()
            if settings.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if settings.username:
                client.login(settings.username, settings.password or "")
        except BaseException:
            client.close()
            raise
        return client


def _stage(exc: smtplib.SMTPResponseException) -> str:
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return "MAIL FROM"
    if isinstance(exc, smtplib.SMTPDataError):
        return "DATA"
    return "SMTP"


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}"


def _by_code(code: int, reply: bytes | str, stage: str) -> Exception:
    """A 5xx reply about the mail is permanent; 4xx (and anything odd) may work later.

    503 "bad sequence of commands" speaks of the session's state, not of the
    mail: a fresh session may well take it.
    """
    message = f"{_reply(code, reply)} (at {stage})"
    if 500 <= code < 600 and code != 503:
        return PermanentFailure(message)
    return TemporaryFailure(message)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
