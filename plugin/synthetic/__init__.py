"""Synthetic back-office data for demos and benchmarks: not a domain service.

Nothing here runs in a host unless it asks for it: ``flask billing generate``
is registered only when ``BILLING_SYNTHETIC_COMMANDS`` is true (the demo host,
the benchmarks).
"""
