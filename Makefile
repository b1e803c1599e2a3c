# The two commands a fresh Linux box (Python 3.11+, a C compiler) needs: `make run`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench install clean shm-clean

$(STAMP): pyproject.toml setup.py native/mm_native.c native/mm_ring.h
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/mm run

test: $(STAMP)
	$(PY) -m pytest -q

# make bench [QUICK=1] [ONLY=e2e[,sim,...]]: results in bench/results/<time>/
bench: $(STAMP)
	$(PY) -m bench $(if $(filter-out 0,$(QUICK)),--quick) $(if $(ONLY),--only $(ONLY))

shm-clean: $(STAMP)
	$(VENV)/bin/mm shm rm --all

clean:
	rm -rf $(VENV) build *.egg-info engine/_native*.so
	find engine -name "*.nbi" -o -name "*.nbc" | xargs rm -f
