# Parquet -> PostgreSQL pipeline. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MINUTES ?= 5

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv/ with the project and its test tools installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

run: install ## load every table in config/ (the sample by default) and print rows, seconds, rows/s
	$(PY) -m pipeline run

status: install ## show each configured table's load: chunks, rows, elapsed, ETA (works during a load)
	$(PY) -m pipeline status

test: install ## ruff, then the test suite against a throwaway PostgreSQL and real Spark
	$(VENV)/bin/ruff check pipeline tests
	$(VENV)/bin/pytest

sample: install ## write MINUTES minute files of the original shape into data_sample/ (full set: 43201)
	$(PY) -m pipeline.sample --minutes $(MINUTES) --out data_sample

lint: install ## ruff
	$(VENV)/bin/ruff check pipeline tests

pg-stop: install ## stop the embedded PostgreSQL
	$(PY) -m pipeline.localpg stop

clean: ## remove the state directory (chunks, checkpoints, the embedded database)
	-$(PY) -m pipeline.localpg stop
	rm -rf .state

.PHONY: help install run status test sample lint pg-stop clean
