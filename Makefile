# Two commands set everything up on a fresh machine:
#   make run    create the environment, run the quick benchmark suite on the embedded S3, write its report
#   make test   create the environment, install the test's system packages, run the whole test suite
# With conda, `conda env create -f environment.yml` makes the same environment; then use `make run VENV=$CONDA_PREFIX`.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
CONSTRAINTS ?= constraints.txt
STAMP := $(VENV)/.rlmlab-installed

.PHONY: env run test sysdeps lock clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev]'
	touch $(STAMP)

env: $(STAMP)

run: env
	$(VENV)/bin/rlmlab bench quick --out results

# bubblewrap sandboxes the isolated REPL; install it when we may (root with apt), else the tests say it is missing.
sysdeps:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) ; } || \
	  echo "note: bubblewrap (bwrap) is not installed; isolated-REPL tests will be skipped with that reason"

test: env sysdeps
	$(PY) -m pytest -n 2 -q

# Re-pin constraints.txt to what the environment holds now (after changing dependencies).
lock: env
	{ sed -n '1,3p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^rlmlab'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
