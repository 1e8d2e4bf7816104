"""Commands of `flask billing` (invoice mail and the invoice mailbox)."""

from .common import billing_cli  # noqa: F401
