# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out/kaltim

.PHONY: demo test lint format bench network clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/planner network build networks/kaltim
	$(BIN)/planner network check networks/kaltim
	$(BIN)/planner solve scenarios/kaltim-2024.yaml --out $(OUT)

lint: $(STAMP)
	$(BIN)/ruff check planner tests bench
	$(BIN)/ruff format --check planner tests bench

format: $(STAMP)
	$(BIN)/ruff format planner tests bench
	$(BIN)/ruff check --fix planner tests bench

test: lint
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

network: $(STAMP)
	$(BIN)/planner network build networks/kaltim

clean:
	rm -rf $(VENV) out .pytest_cache
