# The two commands a newcomer needs: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
PACKAGES := -e common[postgres] -e services/tickets -e "services/intake[test]" -e services/routing -e "services/kb-search[test]" -e services/surveys -e services/analytics -e gateway
STAMP := $(VENV)/.installed
# eventlet prints a deprecation banner in every process; it is known (see README) and not actionable here.
export PYTHONWARNINGS := ignore
.DEFAULT_GOAL := help

.PHONY: help run test unit interface e2e demo install provision-run provision-test migrate bench docs translations clean

$(STAMP): constraints.txt common/pyproject.toml services/*/pyproject.toml gateway/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: apt-get install python3.11 python3.11-venv"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) $(PACKAGES) honcho pytest pytest-xdist pytest-timeout requests openapi-spec-validator import-linter schemathesis playwright pytest-playwright axe-playwright-python oidc-provider-mock
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install every package at the pinned versions

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

provision-run: ## check (install, start) what `make run` needs: Python 3.11, RabbitMQ
	@deploy/local/provision.sh run

provision-test: ## the same for `make test`: also PostgreSQL (trust), RabbitMQ's management plugin, Dovecot, Chromium
	@deploy/local/provision.sh test

migrate: install ## bring every local database to the latest schema
	@mkdir -p var
	$(BIN)/tickets-migrate
	$(BIN)/intake-migrate
	$(BIN)/routing-migrate
	$(BIN)/kb-migrate
	$(BIN)/surveys-migrate
	$(BIN)/analytics-migrate
	$(BIN)/helpdesk migrate

run: provision-run install migrate ## start every service and the gateway on http://127.0.0.1:8000; Ctrl-C stops all
	@test -s var/bootstrap-token || $(BIN)/python -c "import secrets; print('hd_dev_' + secrets.token_urlsafe(24))" > var/bootstrap-token
	@export HELPDESK_BOOTSTRAP_TOKEN=$${HELPDESK_BOOTSTRAP_TOKEN:-$$(cat var/bootstrap-token)}; \
	url=http://127.0.0.1:$${HELPDESK_PORT:-8000}; \
	echo ""; \
	echo "  Agent workspace  $$url/   (first admin: $(BIN)/helpdesk account create --email you@example.org --role admin)"; \
	echo "  REST API         $$url/api/v1/   document: $$url/api/openapi.json"; \
	echo "  Admin token      $$HELPDESK_BOOTSTRAP_TOKEN   (in var/bootstrap-token: Authorization: Bearer <token>)"; \
	echo "  Demo data        make demo   (in another terminal, once this one runs)"; \
	echo "  Ctrl-C stops everything."; echo ""; \
	exec $(BIN)/honcho -f deploy/local/Procfile -e deploy/local/local.env -d . start

demo: install ## fill the running platform (make run) with a small demo organisation, through its API; idempotent
	@$(BIN)/helpdesk demo --url http://127.0.0.1:$${HELPDESK_PORT:-8000} --token "$${HELPDESK_BOOTSTRAP_TOKEN:-$$(cat var/bootstrap-token)}"

test: provision-test install ## every test: unit, interface (real RabbitMQ), end to end (SQLite and PostgreSQL), in two processes
	@tests/run_in_two.sh $(ARGS)

unit: install ## the unit tests alone: rules and pure code, nothing running
	$(BIN)/pytest -m unit

interface: provision-test install ## each service and component against real RabbitMQ, PostgreSQL, Dovecot, SMTP
	$(BIN)/pytest -m interface

e2e: provision-test install ## the whole platform started on loopback and driven over HTTP and in a browser
	$(BIN)/pytest -m e2e

bench: provision-run install ## the tickets throughput benchmark (the others: bench/README.md)
	$(BIN)/python bench/tickets_throughput.py

docs: install ## regenerate the event catalogue and OpenAPI documents in docs/
	@mkdir -p docs
	$(BIN)/helpdesk-events -o docs/events.asyncapi.json
	$(BIN)/helpdesk openapi -o docs/openapi.json

translations: install ## extract the UI's messages, merge them into the nl and sv catalogues, compile (.mo committed)
	cd gateway && ../$(BIN)/pybabel -q extract -F babel.cfg -k _l --no-location --sort-output -o helpdesk_gateway/translations/messages.pot .
	cd gateway && ../$(BIN)/pybabel -q update -i helpdesk_gateway/translations/messages.pot -d helpdesk_gateway/translations --ignore-obsolete
	cd gateway && ../$(BIN)/pybabel -q compile -d helpdesk_gateway/translations

clean: ## remove .venv and var/ (the local databases)
	rm -rf $(VENV) var
