# Ripples for Stripe. Everything runs from a virtualenv that `make` builds on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
STRIPE_EMULATOR_PORT ?= 12111
PYTEST_ARGS ?=
RELIABILITY_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install lint format test run token emulator bench bench-emulator bench-webhook reliability clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP) ## Create .venv and install the pinned dependencies

lint: $(STAMP) ## ruff (lint + format check), mypy, cfn-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint ## Lint, type-check, then run every test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

run: $(STAMP) ## The local stack: HTTP API on 127.0.0.1:$PORT (8000), moto, Stripe emulator on STRIPE_EMULATOR_PORT
	STRIPE_EMULATOR_PORT=$(STRIPE_EMULATOR_PORT) $(BIN)/python -m local.stack

token: $(STAMP) ## Print a local dashboard JWT: make token PROJECT=<id> (several: PROJECT="p1 p2")
	@$(BIN)/python -m local.stack.token $(PROJECT)

emulator: $(STAMP) ## The Stripe emulator alone on 127.0.0.1:$STRIPE_EMULATOR_PORT
	$(BIN)/python -m local.stripe_emulator --port $(STRIPE_EMULATOR_PORT)

bench-emulator: $(STAMP) ## Seed 100,000 charges and list them all (pages of 100, customers expanded)
	$(BIN)/python -m bench.emulator

bench-webhook: $(STAMP) ## DynamoDB and Stripe requests per webhook event type (the request budget)
	$(BIN)/python -m bench.webhook_budget

bench: bench-emulator bench-webhook ## Every benchmark

reliability: $(STAMP) ## Generated worlds delivered serially and from 1/4/16 senders x3: mismatches, events/s, p50/p99
	$(BIN)/python -m bench.reliability $(RELIABILITY_ARGS)

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
