# FlowNet: `make demo` and `make test` work on a fresh machine (Python >= 3.11, Node >= 20, npm).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FORGE := tools/foundry forge
FOUNDRY_PROFILE ?= ci
export FOUNDRY_PROFILE

.PHONY: help setup build artifacts artifacts-check lint format forge-test slither pytest test gas demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "FlowNet needs Python >= 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# Slither needs web3 < 8 (the project uses web3 8): its own environment, pinned in tools/.
.venv-slither/.installed: tools/slither-requirements.txt
	$(PYTHON) -m venv .venv-slither
	.venv-slither/bin/python -m pip install --quiet --upgrade pip
	.venv-slither/bin/python -m pip install --quiet -r tools/slither-requirements.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

setup: $(VENV)/.installed node_modules/.installed .venv-slither/.installed ## create .venv, .venv-slither and install the npm toolchain (solc, forge, anvil, cast, OpenZeppelin)

build: setup ## compile the contracts with forge (no warnings allowed)
	$(FORGE) build

artifacts: setup ## regenerate flownet/artifacts/ from contracts/ through py-solc-x
	$(PY) -m flownet.chain.compile

artifacts-check: setup ## fail if the committed artifacts differ from a fresh compile
	$(PY) -m flownet.chain.compile --check

lint: setup ## ruff lint + format check, mypy on the core and blobs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup ## apply ruff formatting
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

forge-test: build ## forge unit, fuzz and invariant tests (CI profile: 256 runs, depth 64)
	$(FORGE) test

slither: setup ## Slither on contracts/: fails on any High or Medium finding not triaged in place with a reason
	tools/slither

pytest: setup ## Python tests (eth-tester and anvil)
	$(PY) -m pytest

test: lint forge-test slither pytest ## everything: set-up, lint, forge tests, Slither, pytest

gas: build ## gas figures (snapshots/, .gas-snapshot) with each call in its own transaction, then the table
	FOUNDRY_PROFILE=default $(FORGE) test --isolate --match-path 'contracts/test/Gas.t.sol'
	FOUNDRY_PROFILE=default $(FORGE) snapshot --isolate --snap .gas-snapshot
	$(PY) benchmarks/gas_table.py

demo: setup ## the whole network on a local devnet: providers, verifiers, a client, a dispute and its slash
	$(PY) -m flownet.netdemo

clean: ## remove build outputs (keeps .venv and node_modules)
	rm -rf out cache .pytest_cache .ruff_cache .mypy_cache
