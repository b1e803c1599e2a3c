# The two commands a fresh Linux box (Python 3.11+, a C compiler) needs: `make run`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast lint bench install clean shm-clean deploy-tools

$(STAMP): pyproject.toml setup.py $(wildcard native/*.c native/*.h)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)
	@echo "mm is installed in $(VENV)/bin: run 'source $(VENV)/bin/activate' to put it on the PATH (or call $(VENV)/bin/mm)"

run: $(STAMP)
	$(VENV)/bin/mm run

lint: $(STAMP)
	$(PY) -m ruff check engine bench tests

test: lint
	$(PY) -m pytest -q

# The tests not marked slow (engine processes, millions of records, bench runs): under 2 minutes.
test-fast: lint
	$(PY) -m pytest -q -m "not slow"

# make bench [QUICK=1] [ONLY=e2e[,sim,...]] [AGAINST=<git ref>] [VENUE=sim]: results in
# bench/results/<time>/; AGAINST: the working tree's engine A/B against the ref's
bench: $(STAMP)
	$(PY) -m bench $(if $(filter-out 0,$(QUICK)),--quick) $(if $(ONLY),--only $(ONLY)) \
	  $(if $(AGAINST),--against $(AGAINST)) $(if $(VENUE),--venue $(VENUE))

# Tools the deploy tests use when present (they skip without them): systemd-analyze, shellcheck.
# Best effort, as root through apt; CI calls it, `make test` does not.
deploy-tools:
	@command -v systemd-analyze >/dev/null && command -v shellcheck >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { apt-get install -y -q systemd shellcheck >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q systemd shellcheck >/dev/null 2>&1; }; }; } || \
	  echo "deploy-tools: systemd-analyze/shellcheck not installed; their tests will be skipped"

shm-clean: $(STAMP)
	$(VENV)/bin/mm shm rm --all

clean:
	rm -rf $(VENV) build *.egg-info engine/_*.so
	find engine tests bench -name "*.nbi" -o -name "*.nbc" | xargs rm -f
