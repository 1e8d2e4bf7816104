# Two commands on a fresh Debian machine: `make demo` and `make test`.
# Everything they need is installed here: system packages with apt-get (as
# root), Python packages into .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# DEMO_MODE=1: the demo host accepts its published secret key (it refuses it elsewhere).
FLASK := DEMO_MODE=1 $(BIN)/flask --app examples.backoffice:create_app
DEMO_SCALE ?= tiny

.PHONY: demo test lint translations docs screenshots system-deps venv demo-data clean bench load coverage

# Debian packages: installed only when a command they provide is missing.
system-deps:
	@missing=""; \
	command -v wkhtmltopdf >/dev/null || missing="$$missing wkhtmltopdf"; \
	command -v pdftotext >/dev/null || missing="$$missing poppler-utils"; \
	command -v gs >/dev/null || missing="$$missing ghostscript"; \
	[ -f /usr/share/color/icc/ghostscript/srgb.icc ] || missing="$$missing libgs-common"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "run as root (or install:$$missing)"; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo-data: system-deps venv
	rm -f instance/demo.sqlite
	$(FLASK) host-migrate
	$(FLASK) billing migrate
	$(FLASK) billing import examples/backoffice/demo_data.yaml
	$(FLASK) billing import examples/backoffice/demo_customers.yaml
	$(FLASK) billing generate --seed 7 --scale $(DEMO_SCALE)
	$(FLASK) billing close-month

# The web app and, beside it, one `flask billing worker` (PDFs and mail as they are queued),
# stopped with it.
demo: demo-data
	@echo "Demo back-office: http://127.0.0.1:5000/admin/"
	$(FLASK) billing worker & worker=$$!; trap 'kill $$worker' EXIT; \
	$(FLASK) run --host 127.0.0.1 --port 5000

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# The plugin's German catalogue: extract the marked strings (babel.cfg) into
# translations/billing.pot, merge them into each translations/*/LC_MESSAGES/billing.po
# and compile those (builds of the package compile them too, hatch_build.py).
BABEL_KEYWORDS := -k _ -k _l -k N_ -k _b -k _bn:1,2 -k lazy_gettext -k ngettext:1,2 -k pgettext:1c,2 -k npgettext:1c,2,3
translations: venv
	$(BIN)/pybabel extract -F babel.cfg $(BABEL_KEYWORDS) --no-default-keywords \
		--project flask-workspace-billing --sort-by-file -w 100 -o translations/billing.pot .
	$(BIN)/pybabel update -i translations/billing.pot -d translations -D billing \
		--no-fuzzy-matching --ignore-obsolete -w 100
	$(BIN)/pybabel compile -d translations -D billing --statistics

# The documentation site (docs/, Sphinx with MyST Markdown); warnings are errors.
docs: venv
	$(BIN)/sphinx-build -W --keep-going -q -b html docs build/docs

# The docs' screenshots, retaken by the browser tests (tests/browser/screenshots.py).
screenshots: system-deps venv
	$(BIN)/python -m pytest tests/browser -n 0 -q -k sqlite --no-cov
	$(BIN)/python -m tests.browser.screenshots

# The whole suite on every core. Coverage tracing costs a fifth of the suite's CPU
# time, so it is `make coverage`'s, not `make test`'s (which must stay under 10 minutes).
PYTEST := BILLING_TEST_REQUIRE_POSTGRES=1 $(BIN)/python -m pytest -n auto --dist worksteal
test: system-deps venv lint docs
	$(PYTEST) --no-cov

# The same suite with a branch-coverage summary of plugin/ (pytest-cov).
coverage: system-deps venv
	$(PYTEST) --cov --cov-report=term:skip-covered

clean:
	rm -rf $(VENV) instance build dist .pytest_cache

# Benchmarks (not part of `make test`): the plugin against its baselines on
# SQLite and on a throw-away PostgreSQL; prints the table, writes bench/results.json.
# `make bench SCALE=small` takes a few minutes on an idle machine; on a busy one the
# harness adds pairs until each ratio's spread is known (at most 4x the runs, ~10 min).
SCALE ?= large

bench: system-deps venv
	$(BIN)/python -m bench --scale $(SCALE)

# Load test (docs/benchmarks.md): the back-office under gunicorn on a throw-away PostgreSQL at the
# benchmarks' scale, 50 locust users, a month close, a purge and a mailbox change meanwhile;
# writes the "load" key of bench/results.json (docs/benchmarks.md). `make load SCALE=small`
# takes about five minutes; the full scale as long as the close renders its PDFs under load.
$(VENV)/.installed-load: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev,load]'
	touch $@

load: system-deps venv $(VENV)/.installed-load
	$(BIN)/python -m bench.load --scale $(SCALE)
