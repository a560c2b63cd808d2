# Two commands on a fresh machine: `make templates` and `make test`.
# Every target bootstraps .venv on first use, so only Python is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CLI := $(BIN)/python -m generator

.PHONY: templates test lint plan bench run clean

$(INSTALLED): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# One process: cfn-lint's rules are built on the other core while the templates render.
templates: $(INSTALLED)
	$(CLI) generate --lint

lint: $(INSTALLED)
	$(CLI) lint

plan: $(INSTALLED)
	$(CLI) plan

test: $(INSTALLED)
	$(BIN)/python -m pytest
	$(CLI) generate --check --lint

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks

run: $(INSTALLED)
	$(BIN)/python -m service.run

clean:
	rm -rf $(VENV) build *.egg-info reports
