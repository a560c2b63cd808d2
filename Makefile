# Two commands on a fresh machine: `make templates` and `make test`.
# Every target bootstraps .venv on first use, so only Python is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CLI := $(BIN)/python -m generator
# AWS SAM CLI, for `sam validate --lint` in the tests (tests/workloads/test_workloads_sam.py).
# A venv of its own: aws-sam-cli pins boto3 and botocore below the versions this project
# runs with, so it cannot share .venv. setup.cfg's `sam` extra holds the requirement.
SAM_VENV := .venv-sam
SAM_INSTALLED := $(SAM_VENV)/.installed

.PHONY: templates test lint plan bench run clean sam

$(INSTALLED): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(SAM_INSTALLED): setup.cfg
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	@$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	@$(SAM_VENV)/bin/python -m pip install --quiet "$$(sed -n 's/^sam = //p' setup.cfg)"
	@touch $@

sam: $(SAM_INSTALLED)

# One process: cfn-lint's rules are built on the other core while the templates render.
templates: $(INSTALLED)
	$(CLI) generate --lint

lint: $(INSTALLED)
	$(CLI) lint

plan: $(INSTALLED)
	$(CLI) plan

test: $(INSTALLED) $(SAM_INSTALLED)
	$(BIN)/python -m pipeline.build_images lint
	$(BIN)/python -m pytest
	$(CLI) generate --check --lint

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks

run: $(INSTALLED)
	$(BIN)/python -m service.run

clean:
	rm -rf $(VENV) $(SAM_VENV) build *.egg-info reports
