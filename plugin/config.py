"""The plugin's configuration keys and their defaults.

Every key is read from the host's ``app.config`` with ``setdefault`` when the
extension is initialised, so a host overrides any of them in its own config.
"""

from __future__ import annotations

import getpass
from typing import Any

from flask import has_request_context

from .processes import DEFAULT_RENDER_NICE

#: The PDF renderer's keys (plugin.pdf reads them from here with the others).
PDF_DEFAULTS: dict[str, Any] = {
    # Path of the wkhtmltopdf binary.  ``None``: ``wkhtmltopdf`` on the PATH.
    "BILLING_WKHTMLTOPDF": None,
    # Seconds one PDF may take before its wkhtmltopdf process is killed.
    "BILLING_PDF_TIMEOUT": 30,
    # Parallel wkhtmltopdf processes for many invoices.  ``None``: one per CPU.
    "BILLING_PDF_WORKERS": None,
    # Niceness of the renderer processes (wkhtmltopdf, Ghostscript), 0-19:
    # rendering takes the CPU time the back-office's requests leave over.
    "BILLING_RENDER_NICE": DEFAULT_RENDER_NICE,
}


#: The PDF/A conversion's keys (plugin.einvoice.pdfa reads them from here).
PDFA_DEFAULTS: dict[str, Any] = {
    # Path of the Ghostscript binary.  ``None``: ``gs`` on the PATH.
    "BILLING_GHOSTSCRIPT": None,
    # The sRGB ICC profile of the output intent (Debian: package libgs-common).
    "BILLING_ICC_PROFILE": "/usr/share/color/icc/ghostscript/srgb.icc",
    # Seconds one conversion may take before Ghostscript is killed.
    "BILLING_PDFA_TIMEOUT": 30,
    # Niceness of Ghostscript, as of wkhtmltopdf (plugin.pdf).
    "BILLING_RENDER_NICE": DEFAULT_RENDER_NICE,
    # True: one long-running Ghostscript per worker converts document after document
    # (it starts up once; the bytes then depend on the documents it converted before).
    # False: a fresh Ghostscript per document, started ahead (byte-reproducible output).
    "BILLING_PDFA_LONG_RUNNING": True,
}


def default_actor() -> str:
    """Who the audit log names when the host says nothing: the OS user on the CLI."""
    if has_request_context():
        return "anonymous"
    return f"cli:{getpass.getuser()}"


DEFAULTS: dict[str, Any] = {
    # Path of accounting's pricing rules file.  ``None`` means
    # ``pricing_rules.yaml`` in the app's instance folder.
    "BILLING_RULES_PATH": None,
    # Menu category under which the plugin's admin views appear.
    "BILLING_MENU_CATEGORY": "Billing",
    # Callable returning the name of whoever acts now (audit log).
    "BILLING_CURRENT_ACTOR": default_actor,
    # Callable returning the current user's roles (support, admin, accounting).
    "BILLING_CURRENT_ROLES": lambda: (),
    # Overrides of the access table: {permission: [roles]} (plugin.manifest).
    "BILLING_ACCESS": {},
    # Views switched off or renamed: {view key: False | "Menu name"} (plugin.manifest).
    "BILLING_VIEWS": {},
    # Actions switched off: {"view key.action": False} (plugin.manifest).
    "BILLING_ACTIONS": {},
    # Workspaces whose current counts the list pages keep per process, under
    # the workspace's stamp (plugin.services.counts); 0 computes them anew on
    # every page.
    "BILLING_COUNTS_CACHE_SIZE": 10_000,
    # `flask billing generate` (plugin.synthetic, docs/synthetic-data.md): only
    # for a demo or a benchmark host.  On a real back-office its workspaces
    # would be invoiced by the next close.
    "BILLING_SYNTHETIC_COMMANDS": False,
    # Largest file `flask billing import` accepts, in bytes.
    "BILLING_IMPORT_MAX_BYTES": 50 * 1024 * 1024,
    # Niceness (0-19) the long-running `flask billing` commands lower their own
    # process to: close-month, render-pending, worker, purge-inactive, import,
    # licences
    # (plugin.cli.common.background).  0 leaves it as started.
    "BILLING_BATCH_NICE": 10,
    # wkhtmltopdf path, timeout, parallel processes and niceness (plugin.pdf).
    **PDF_DEFAULTS,
    # Ghostscript path, ICC profile, timeout and long-running servers (plugin.einvoice.pdfa).
    **PDFA_DEFAULTS,
    # Invoice mail (plugin.mail.smtp, docs/mail.md).  The defaults deliver to a
    # plain SMTP server on localhost:25: point HOST and PORT at yours.
    "BILLING_SMTP_HOST": "localhost",
    # ``None``: 25 for ``none``, 587 for ``starttls``, 465 for ``tls``.
    "BILLING_SMTP_PORT": None,
    # ``none``, ``starttls`` (upgrade a plain connection) or ``tls`` (TLS from the start).
    "BILLING_SMTP_SECURITY": "none",
    # Login, if the server wants one (``None``: no login).
    "BILLING_SMTP_USERNAME": None,
    "BILLING_SMTP_PASSWORD": None,
    # Seconds any one SMTP operation may take.
    "BILLING_SMTP_TIMEOUT": 30,
    # From address, ``addr@host`` or ``Name <addr@host>``.  ``None``: the
    # seller's name and e-mail address in the pricing rules.
    "BILLING_MAIL_SENDER": None,
    # Domain of the Message-IDs.  ``None``: the sender's domain.
    "BILLING_MAIL_DOMAIN": None,
    # The worker (plugin.worker, docs/operations.md) and the admin actions' jobs
    # (plugin.jobs).
    # Seconds an idle worker waits before it looks for work again.  On
    # PostgreSQL a listening worker also wakes at once when work is queued.
    "BILLING_WORKER_POLL_SECONDS": 2,
    # LISTEN/NOTIFY on PostgreSQL (switch off behind a pooler that cannot LISTEN).
    "BILLING_WORKER_LISTEN": True,
    # How long a worker may hold one job before another may take it over.
    # ``None``: several of the renderer's and the SMTP server's timeouts.
    "BILLING_WORKER_LEASE_SECONDS": None,
    # Plugin pages warn when PDFs or mail are due and no worker (or cron run of
    # render-pending / send-invoices) was seen for this many seconds.
    # ``None``: never warn.
    "BILLING_WORKER_STALE_SECONDS": 120,
    # Admin actions render the one PDF they queue (a credit note) in the request.
    "BILLING_RENDER_IN_REQUEST": True,
    # Admin actions send the few mails they queue (a resend, one mailbox change's
    # notices) in the request, with the SMTP timeout cut to IN_REQUEST_SMTP_TIMEOUT.
    "BILLING_SEND_IN_REQUEST": False,
}
