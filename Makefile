# Ripples for Stripe. Everything runs from a virtualenv that `make` builds on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
STRIPE_EMULATOR_PORT ?= 12111
# `make run` seeds the demo account and project demo's visitors; DEMO_SEED=0 make run does not
DEMO_SEED ?= 1
PYTEST_ARGS ?=
RELIABILITY_ARGS ?=
BACKFILL_ARGS ?=
REPORTS_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install lint format test run token reconcile emulator bench bench-emulator bench-webhook bench-flood bench-backfill reliability clean

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

test: lint chromium ## Lint, type-check, then run every test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Headless Chromium for tests/browser: Debian's package, which Playwright drives (it never downloads a
# browser). Installed where missing and apt-get can run (root); elsewhere, or if the install fails, the
# browser tests are skipped with a message naming what is missing.
.PHONY: chromium
chromium: ## Install Debian's chromium for the browser tests where it is missing (needs root and apt-get)
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium (Debian) for tests/browser"; \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
				|| echo "chromium could not be installed: tests/browser will be skipped" >&2; \
		else \
			echo "chromium not found and apt-get needs root: tests/browser will be skipped" >&2; \
		fi; \
	}

run: $(STAMP) ## The local stack: HTTP API on 127.0.0.1:$PORT (8000), moto, Stripe emulator on STRIPE_EMULATOR_PORT
	STRIPE_EMULATOR_PORT=$(STRIPE_EMULATOR_PORT) DEMO_SEED=$(DEMO_SEED) $(BIN)/python -m local.stack

.PHONY: demo
demo: $(STAMP) ## The demo in the terminal: seed, connect, backfill, live payments, revenue (DEMO_CHARGES=10000)
	$(BIN)/python -m local.demo

token: $(STAMP) ## Print a local dashboard JWT: make token PROJECT=<id> (several: PROJECT="p1 p2")
	@$(BIN)/python -m local.stack.token $(PROJECT)

reconcile: $(STAMP) ## The scheduled reconcile once, in the running `make run` stack (same PORT)
	$(BIN)/python -m local.stack.reconcile

.PHONY: rebuild-rollups
rebuild-rollups: $(STAMP) ## Check a project's rollups against its ledger in the running stack: PROJECT=<id> [REPAIR=1] MOTO_PORT=<its moto port>
	$(BIN)/python -m local.stack.rebuild $(PROJECT) $(if $(filter 1,$(REPAIR)),--repair)

emulator: $(STAMP) ## The Stripe emulator alone on 127.0.0.1:$STRIPE_EMULATOR_PORT
	$(BIN)/python -m local.stripe_emulator --port $(STRIPE_EMULATOR_PORT)

bench-emulator: $(STAMP) ## Seed 100,000 charges and list them all (pages of 100, customers expanded)
	$(BIN)/python -m bench.emulator

bench-webhook: $(STAMP) ## DynamoDB and Stripe requests per webhook event type (the request budget)
	$(BIN)/python -m bench.webhook_budget

bench-flood: $(STAMP) ## What bad requests to the unauthenticated webhook route cost (AWS requests, CPU)
	$(BIN)/python -m bench.webhook_flood

bench-backfill: $(STAMP) ## A seeded account's history through the backfill, in-process: charges/s, requests per charge, CPU
	$(BIN)/python -m bench.backfill $(BACKFILL_ARGS)

.PHONY: bench-reports
bench-reports: $(STAMP) ## The revenue report over 200,000 seeded charges: latency, requests, items, from rollups vs ledger (REPORTS_ARGS)
	$(BIN)/python -m bench.reports $(REPORTS_ARGS)

bench: bench-emulator bench-webhook bench-flood bench-backfill bench-reports ## Every benchmark

reliability: $(STAMP) ## Generated worlds delivered serially and from 1/4/16 senders x3: mismatches, events/s, p50/p99
	$(BIN)/python -m bench.reliability $(RELIABILITY_ARGS)

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# ---- Deployment packages ------------------------------------------------------------------------
# `sam build` runs `make build-<LogicalId>` for each resource with `BuildMethod: makefile`, in a copy of
# the repository, with ARTIFACTS_DIR set to that resource's artifact folder. A function's package is
# read from its Handler in template.yaml (functions.<package>.app.lambda_handler), so the template is
# the one place that maps functions to packages. These targets need make, a POSIX shell, awk, find,
# tar and (the layer only) pip: no virtualenv.
FUNCTION_PACKAGES := $(shell awk '/^[A-Za-z]/ { in_resources = /^Resources:/ } \
	in_resources && /^  [A-Za-z0-9]+:/ { id = $$1; sub(/:.*/, "", id) } \
	in_resources && /^ +Handler: *["\047]?functions\./ { h = $$2; gsub(/["\047]/, "", h); split(h, p, "."); print id "=" p[2] }' \
	template.yaml)
FUNCTION_BUILDS := $(foreach entry,$(FUNCTION_PACKAGES),build-$(firstword $(subst =, ,$(entry))))
package_of = $(patsubst $(1)=%,%,$(filter $(1)=%,$(FUNCTION_PACKAGES)))
LAYER_PIP ?= $(PYTHON) -m pip
LAMBDA_PIP_TARGET := --platform manylinux2014_aarch64 --implementation cp --python-version 3.13 --only-binary=:all:
need_artifacts_dir = @test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build sets it (or run make package)" >&2; exit 1; }

.PHONY: $(FUNCTION_BUILDS) build-DependenciesLayer package

# A function: functions/__init__.py, its own package and shared/, Python sources only.
$(FUNCTION_BUILDS): build-%:
	$(need_artifacts_dir)
	@test -f "functions/$(call package_of,$*)/app.py" || { echo "$*: no functions/<package>/app.py for its Handler" >&2; exit 1; }
	rm -rf "$(ARTIFACTS_DIR)/functions" "$(ARTIFACTS_DIR)/shared"
	mkdir -p "$(ARTIFACTS_DIR)"
	find functions/__init__.py "functions/$(call package_of,$*)" shared -type f -name '*.py' ! -path '*/__pycache__/*' \
		| tar -cf - -T - | tar -xf - -C "$(ARTIFACTS_DIR)"

# The layer: requirements.txt for python3.13 on arm64 under python/, no compiled bytecode, no scripts.
build-DependenciesLayer:
	$(need_artifacts_dir)
	rm -rf "$(ARTIFACTS_DIR)/python"
	$(LAYER_PIP) install --quiet --disable-pip-version-check --no-warn-conflicts --no-compile --requirement requirements.txt \
		--target "$(ARTIFACTS_DIR)/python" $(LAMBDA_PIP_TARGET)
	rm -rf "$(ARTIFACTS_DIR)/python/bin"
	find "$(ARTIFACTS_DIR)/python" -type d -name __pycache__ -prune -exec rm -rf {} +

package: $(STAMP) ## Build every function and the layer as sam build does (.aws-sam/local-build/), zip, print sizes
	$(BIN)/python -m local.package
