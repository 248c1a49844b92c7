# The two commands a user types: `make demo` and `make test`. Both begin with `make setup`.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
PY := $(VENV)/bin/python

.PHONY: setup system-packages test test-fast lint demo bench clean

setup: $(STAMP) system-packages

# Reinstall only when the pins or the project's metadata change. The lock is complete
# (every package pinned), so pip need not resolve anything: --no-deps.
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Prometheus, Alertmanager and Pushgateway from Debian's packages, when we may install them.
system-packages:
	@bash scripts/install-system-packages.sh

# Modules run on three xdist workers (tests/conftest.py keeps each module, and the two demo
# modules, on one worker): most tests wait on real services, so three share two cores well.
# One BLAS/OpenMP thread per process: several workers' numpy and scikit-learn each starting a
# thread per core oversubscribe the cores (a reference's fit took 107 s instead of 1.5 s).
test: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/pytest -q --durations=25 -n 3 --dist loadfile --no-loadscope-reorder

# While working: everything that starts no real service (see the `slow` marker).
test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow"

# The code's rules alone (make test runs them too, in tests/test_code_rules.py).
lint: $(STAMP)
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check
	$(PY) scripts/layers.py

demo: setup
	$(VENV)/bin/modelwatch demo

bench: setup
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) run

# Copy the monitoring configs the Kubernetes manifests carry (kustomize reads only its own tree).
.PHONY: k8s
k8s:
	$(PYTHON) deploy/kubernetes/generate.py
