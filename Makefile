# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench fuzz torture clean man cluster

$(STAMP): pyproject.toml mda/launcher.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is needed (PYTHON=$(PYTHON))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
	  { echo "python3 -m venv failed: on Debian, apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m mda.launcher $(BIN)/mda
	@touch $@

run: $(STAMP)
	$(BIN)/python -m mra.demo

# The fuzz targets (fuzz/): a short pass in `make test` (a few seconds each, on the seed
# corpora; a generous per-input timeout, the machine may be busy), FUZZ_SECONDS each in
# `make fuzz` with the 1 s timeout the targets promise. FUZZ_TARGETS= picks some, FUZZ_JOBS=2
# runs two at once.
FUZZ_SECONDS ?= 300
FUZZ_JOBS    ?= 1
FUZZ_TARGETS ?=

test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(BIN)/python -m fuzz --seconds 3 --timeout 10

fuzz: $(STAMP)
	$(BIN)/python -m fuzz --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) $(FUZZ_TARGETS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# mra(8), mda(8) and mra.toml(5), written from README.md (mra/manpages.py)
man: $(STAMP)
	$(BIN)/python -m mra.manpages dist/man

bench: $(STAMP)
	$(BIN)/python -m bench

# Crash consistency (not in `make test`: about half an hour): 1,000 SIGKILLs of mra serve and
# mda at random moments of their writes, the store checked after each (torture/__main__.py).
torture: $(STAMP)
	$(BIN)/python -m torture --kills 1000

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache fuzz/.work

# Three nodes over one mail root behind nginx's mail proxy (mra/cluster/demo.py).
cluster: $(STAMP)
	$(BIN)/python -m mra.cluster.demo
