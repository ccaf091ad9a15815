# Two commands on a fresh clone: `make run` (the demo) and `make test` (the suite).
# Needs only python3 (3.11+) and make; everything else is installed into .venv from
# requirements.lock (pinned, with hashes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test migrate seed bench bench-smoke soak

$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# The demo's settings: DEBUG=1 and a random SECRET_KEY. Written once and kept, so the demo's
# sessions and its log's chain key (derived from SECRET_KEY) survive restarts. manage.py
# reads it (python-dotenv; a variable set in the environment wins); daphne, the tests and
# the benchmarks never do. Git-ignored; never for production.
.env:
	@umask 077 && key=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))') && test -n "$$key" && \
		printf '# Demo only, written by make: never use in production.\nDEBUG=1\nSECRET_KEY=%s\n' "$$key" > .env.tmp && \
		mv .env.tmp .env
	@echo "Wrote .env: the demo's settings (DEBUG=1, a random SECRET_KEY)."

migrate: install .env
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo
	@echo "  Staff:  http://$(HOST):$(PORT)/login/         manager@acme.test / demo-password"
	@echo "  Portal: http://$(HOST):$(PORT)/portal/login/  client@acme.test  / demo-password"
	@echo "  Admin:  http://$(HOST):$(PORT)/admin/         root@demo.test    / demo-password"
	@echo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks (issue 5; bench/__main__.py, with its own settings, bench/settings.py):
# PostgreSQL and Redis must be running. The full run builds a 10 M-event dataset once
# (reused afterwards; BENCH_ARGS=--rebuild starts over) and writes docs/benchmarks.md;
# the smoke run is the same code at 1/1000 of the size.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/agencyhandy_bench
BENCH_SMOKE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/agencyhandy_bench_smoke

bench: install
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python -m bench $(BENCH_ARGS)

bench-smoke: install
	BENCH_DATABASE_URL=$(BENCH_SMOKE_DATABASE_URL) $(BIN)/python -m bench --smoke $(BENCH_ARGS)

# Soak (soak/__main__.py): two daphne processes on PostgreSQL and Redis, tabs left open for
# SOAK_SECONDS through idle stretches and trickles of portal sign-ins; every event must
# arrive exactly once and no socket may close. The soak database is dropped and rebuilt.
SOAK_SECONDS ?= 600
SOAK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/agencyhandy_soak
SOAK_REDIS_URL ?= redis://127.0.0.1:6379/14

soak: install
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_DATABASE_URL=$(SOAK_DATABASE_URL) SOAK_REDIS_URL=$(SOAK_REDIS_URL) \
		$(BIN)/python -m soak
