# Parquet -> PostgreSQL pipeline. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MINUTES ?= 5
STATE := $(or $(PIPELINE_STATE_DIR),.state)

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

test: install ## ruff, the unit tests (seconds), then the end-to-end suite against a throwaway PostgreSQL and real Spark
	$(VENV)/bin/ruff check pipeline tests
	$(VENV)/bin/pytest -q tests/unit
	$(VENV)/bin/pytest --ignore=tests/unit --durations=15

chaos: install ## the long fault-injection run: 25 SIGKILLs at random instants, per write mode and chunk format (PIPELINE_CHAOS_SEED replays one, PIPELINE_CHAOS_ENGINE=arrow, PIPELINE_CHAOS_MODES=append, PIPELINE_CHAOS_FORMATS=binary)
	mkdir -p test-artifacts
	PIPELINE_CHAOS_KILLS=$${PIPELINE_CHAOS_KILLS:-25} PIPELINE_CHAOS_REPORT=test-artifacts/chaos.txt \
		$(VENV)/bin/pytest tests/test_chaos.py -s -p no:cacheprovider
	@tail -n 6 test-artifacts/chaos.txt

corpus: install ## load every parquet-testing file with both engines and rewrite the corpus table in docs/corpus.md
	PIPELINE_WRITE_CORPUS_TABLE=1 $(VENV)/bin/pytest tests/test_corpus.py -p no:cacheprovider -q

bench: install ## benchmark against the COPY limits, the original solutions and the peers ADBC and pgpq (BENCH_ARGS="--rows 1000000 --repeat 3")
	$(VENV)/bin/pip install --quiet -e '.[dev,bench]'
	$(PY) -m pipeline.devtools.bench $(BENCH_ARGS)

sample: install ## write MINUTES minute files of the original shape into data_sample/ (full set: 43201)
	$(PY) -m pipeline.devtools.sample --minutes $(MINUTES) --out data_sample

luigid: install ## start luigid (visualiser: http://127.0.0.1:8082) with its state under the state dir
	umask 077 && mkdir -p $(STATE)/luigid && chmod 700 $(STATE) $(STATE)/luigid && $(VENV)/bin/luigid --background --address 127.0.0.1 --port 8082 --pidfile $(abspath $(STATE))/luigid/luigid.pid \
		--logdir $(abspath $(STATE))/luigid --state-path $(abspath $(STATE))/luigid/state.pickle
	@echo "luigid: http://127.0.0.1:8082 (make luigid-stop to stop it; make run uses it while it is up)"

luigid-stop: ## stop the luigid started by make luigid (SIGTERM: it saves its state)
	-kill $$(cat $(STATE)/luigid/luigid.pid)

compose-test: install ## build and run the Docker stack for real (host networking), kill a worker mid-load; installs and starts a Docker engine where it can
	bash tests/docker/engine.sh
	$(VENV)/bin/pytest tests/test_compose.py -p no:cacheprovider -rs

up: ## docker compose: postgres, luigid and a worker loading config/ (needs .env, see .env.example)
	docker compose up --build -d

down: ## docker compose down
	docker compose down

logs: ## follow the docker compose logs
	docker compose logs -f

lint: install ## ruff
	$(VENV)/bin/ruff check pipeline tests

pg-stop: install ## stop the embedded PostgreSQL
	$(PY) -m pipeline.postgres.embedded stop

clean: ## remove the state directory (chunks, checkpoints) and the embedded database
	-$(PY) -m pipeline.postgres.embedded remove
	rm -rf $(STATE)

.PHONY: help install run status test chaos corpus bench sample luigid luigid-stop up down logs lint pg-stop clean
