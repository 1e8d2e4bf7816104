"""Commands of `flask billing` (teams and members)."""

from .common import billing_cli  # noqa: F401
