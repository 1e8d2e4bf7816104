"""``make bench``: the plugin measured side by side with its baselines (see bench/README.md)."""
