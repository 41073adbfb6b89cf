# The two commands a newcomer needs: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
PACKAGES := -e common[postgres] -e services/tickets -e "services/intake[test]" -e services/routing -e "services/kb-search[test]" -e gateway
STAMP := $(VENV)/.installed
# eventlet prints a deprecation banner in every process; it is known (see README) and not actionable here.
export PYTHONWARNINGS := ignore

.PHONY: run test install broker migrate unit interface e2e bench docs clean

$(STAMP): constraints.txt common/pyproject.toml services/*/pyproject.toml gateway/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: apt-get install python3.11 python3.11-venv"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) $(PACKAGES) honcho pytest pytest-xdist pytest-timeout requests openapi-spec-validator import-linter schemathesis
	@touch $(STAMP)

install: $(STAMP)

broker: ## make sure a RabbitMQ answers on the configured URI (starts a local one when it can)
	@$(BIN)/python deploy/local/ensure_broker.py

migrate: install
	@mkdir -p var
	$(BIN)/tickets-migrate
	$(BIN)/intake-migrate
	$(BIN)/routing-migrate
	$(BIN)/kb-migrate
	$(BIN)/helpdesk migrate

run: install broker migrate ## start every service and the gateway on http://127.0.0.1:8000; Ctrl-C stops all
	@test -s var/bootstrap-token || $(BIN)/python -c "import secrets; print('hd_dev_' + secrets.token_urlsafe(24))" > var/bootstrap-token
	@export HELPDESK_BOOTSTRAP_TOKEN=$${HELPDESK_BOOTSTRAP_TOKEN:-$$(cat var/bootstrap-token)}; \
	echo "Gateway on http://127.0.0.1:$${HELPDESK_PORT:-8000}   admin token: $$HELPDESK_BOOTSTRAP_TOKEN   (Ctrl-C stops everything)"; \
	exec $(BIN)/honcho -f deploy/local/Procfile -e deploy/local/local.env -d . start

test: install broker ## every test: unit, interface (real RabbitMQ), end to end (SQLite and PostgreSQL)
	$(BIN)/pytest

bench: install broker
	$(BIN)/python bench/tickets_throughput.py

docs: install ## regenerate the event catalogue and OpenAPI documents in docs/
	@mkdir -p docs
	$(BIN)/helpdesk-events -o docs/events.asyncapi.json
	$(BIN)/helpdesk openapi -o docs/openapi.json

clean:
	rm -rf $(VENV) var
