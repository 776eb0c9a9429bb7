# OpenLoop developer commands. Everything installs into .venv from this repo's files.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up demo test lint unit bench bench-ledger bench-rules gen trace clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## Start PostgreSQL, the five services and Envoy; seed the demo program. Ctrl-C stops all.
up: $(STAMP)
	$(BIN)/python -m openloop_dev up

## Pay as a bank would, through Envoy (uses the running mesh, or starts one).
demo: $(STAMP)
	$(BIN)/python -m openloop_dev demo

## Lint, type-check, contract checks, then every test (unit, integration, end to end).
## The tests' temporary files (their PostgreSQL among them) live in this checkout's
## .pytest-tmp: under the shared default, a pytest run in another checkout by the same user
## prunes old runs' folders and can delete a running suite's database from under it.
test: $(STAMP) lint
	$(BIN)/pytest -q --basetemp=.pytest-tmp

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd protos && ../$(BIN)/buf lint

## Drive payments through Envoy and write bench/reports/*.json.
bench: $(STAMP)
	$(BIN)/python -m bench.payments $(BENCH_ARGS)

## The ledger's throughput, checkpoint lag, proofs and verifier beside naive baselines.
bench-ledger: $(STAMP)
	$(BIN)/python -m bench.ledger $(BENCH_ARGS)

## The rules service: EvaluateBatch decisions/s and Evaluate latency at a fixed rate.
bench-rules: $(STAMP)
	$(BIN)/python -m bench.rules $(BENCH_ARGS)

## Regenerate Python code from protos/.
gen: $(STAMP)
	$(BIN)/python -m openloop_dev.protogen

## Print one payment's trace from the local span files: make trace ID=<trace id>
trace: $(STAMP)
	$(BIN)/python -m openloop_dev trace $(ID)

clean:
	rm -rf $(VENV) .devstack
