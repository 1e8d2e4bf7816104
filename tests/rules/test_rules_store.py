"""Reloading the rules file in a running app: good edits apply, bad ones never do."""

from __future__ import annotations

import logging
import os
import threading
from decimal import Decimal

import pytest

from plugin.rules import PricingRules, RulesStore, RulesUnavailable
from plugin.rules import loader as loader_module


def write(path, text: str) -> None:
    """Write and move the modification time on, as a later save would."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


@pytest.fixture
def rules_file(tmp_path, base):
    path = tmp_path / "pricing_rules.yaml"
    write(path, base)
    return path


def test_loads_at_start(rules_file):
    store = RulesStore(rules_file)
    assert store.current().tax_rate == Decimal("0.19")
    assert store.last_error is None


def test_without_valid_rules_nothing_can_be_priced(rules_file, edit):
    write(rules_file, edit(("tax_rate: 0.19", "tax_rate: 19")))
    store = RulesStore(rules_file)
    with pytest.raises(RulesUnavailable) as caught:
        store.current()
    assert [str(e) for e in caught.value.errors] == [
        "line 2: tax_rate: must be at least 0 and less than 1 (0.19 means 19 %)"
    ]
    assert caught.value.path == rules_file
    write(rules_file, edit())
    assert str(store.current().tax_rate) == "0.19"
    assert store.last_error is None


def test_without_a_file_nothing_can_be_priced(tmp_path):
    with pytest.raises(RulesUnavailable, match="cannot read .*missing.yaml: No such file"):
        RulesStore(tmp_path / "missing.yaml").current()


def test_good_change_is_picked_up(rules_file, edit):
    store = RulesStore(rules_file)
    before = store.current()
    write(rules_file, edit(("tax_rate: 0.19", "tax_rate: 0.07")))
    after = store.current()
    assert after.tax_rate == Decimal("0.07")
    assert after.sha256 != before.sha256
    assert store.last_error is None


def test_bad_change_keeps_the_last_valid_rules_and_exposes_the_error(
    rules_file, edit, caplog
):
    store = RulesStore(rules_file)
    valid = store.current()
    write(rules_file, edit(("unit_price: 9.00", "unit_price: -9.00")))
    with caplog.at_level(logging.ERROR, logger="plugin.rules"):
        assert store.current() is valid
    assert store.last_error is not None
    assert [str(e) for e in store.last_error.errors] == [
        "line 29: variants.user_licences.prices[1].tiers[0].unit_price: must not be negative"
    ]
    assert store.last_error.at.tzinfo is not None
    assert "pricing_rules.yaml: line 29: variants.user_licences" in caplog.text
    assert "keeps the rules loaded at" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="plugin.rules"):
        assert store.current() is valid
    assert caplog.text == "", "the same broken file is reported once, not on every call"

    write(rules_file, edit(("tax_rate: 0.19", "tax_rate: 0.16")))
    assert store.current().tax_rate == Decimal("0.16")
    assert store.last_error is None


def test_reverting_a_bad_edit_clears_the_error(rules_file, base, edit):
    store = RulesStore(rules_file)
    valid = store.current()
    write(rules_file, edit(("currency: EUR", "currency: EURO")))
    assert store.current() is valid
    assert store.last_error is not None
    write(rules_file, base)
    assert store.current() is valid
    assert store.last_error is None


def test_deleted_file_keeps_the_rules(rules_file):
    store = RulesStore(rules_file)
    valid = store.current()
    rules_file.unlink()
    assert store.current() is valid
    assert [str(e) for e in store.last_error.errors] == [
        f"cannot read {rules_file}: No such file or directory"
    ]


def test_unchanged_file_is_neither_read_nor_parsed(rules_file, monkeypatch):
    store = RulesStore(rules_file)
    calls = []
    monkeypatch.setattr(loader_module, "_read", lambda path: calls.append(path) or b"")
    for _ in range(100):
        store.current()
    assert calls == []


def test_touched_but_identical_file_is_not_parsed_again(rules_file, base, monkeypatch):
    store = RulesStore(rules_file)
    valid = store.current()
    monkeypatch.setattr(loader_module, "load_rules", lambda *a, **k: pytest.fail("parsed"))
    write(rules_file, base)
    assert store.current() is valid


def test_concurrent_readers_always_get_valid_rules(rules_file, base, edit):
    store = RulesStore(rules_file)
    texts = [base, edit(("tax_rate: 0.19", "tax_rate: 0.07")), edit(("currency: EUR", "x: ["))]
    seen, failures = [], []

    def read() -> None:
        try:
            for _ in range(200):
                seen.append(store.current())
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for index in range(30):
        write(rules_file, texts[index % 3])
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(isinstance(rules, PricingRules) for rules in seen)
    assert {rules.tax_rate for rules in seen} <= {Decimal("0.19"), Decimal("0.07")}


def test_two_stores_of_an_unchanged_file_share_one_parse(rules_file, edit):
    """Every app a process makes from the same file (one per test, per thread) parses it once."""
    first, second = RulesStore(rules_file).current(), RulesStore(rules_file).current()
    assert second is first
    write(rules_file, edit(("tax_rate: 0.19", "tax_rate: 0.07")))
    changed = RulesStore(rules_file).current()
    assert changed is not first
    assert changed.tax_rate == Decimal("0.07")
    assert first.tax_rate == Decimal("0.19")


def test_a_known_text_is_still_refused_over_the_size_limit_and_bad_texts_each_time(base, edit):
    from plugin.rules import RulesError, load_rules

    load_rules(base)
    with pytest.raises(RulesError) as caught:
        load_rules(base, max_bytes=100)
    assert "100" in str(caught.value.errors[0])
    broken = edit(("tax_rate: 0.19", "tax_rate: 19"))
    for _ in range(2):
        with pytest.raises(RulesError):
            load_rules(broken)
