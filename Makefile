# Portside: `make run` serves the console, `make test` runs the whole suite. Both set up .venv first.
SHELL := /bin/bash
VENV := .venv
VPY := $(VENV)/bin/python

# A Python >= 3.12: PYTHON= wins; then python3.14..python3.12 that actually run; then pyenv's
# installed versions by full path (pyenv's shims fail unless a version is selected).
define FIND_PYTHON
for c in $${PYTHON:-} python3.14 python3.13 python3.12 python3 \
    $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
  [ -n "$$c" ] || continue; \
  if "$$c" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
    command -v "$$c" || echo "$$c"; exit 0; \
  fi; \
done; exit 1
endef
export FIND_PYTHON

.PHONY: run test bench lint format clean check-python browser vite axe mutate

$(VPY):
	@py=$$(bash -c "$$FIND_PYTHON") || { \
	  echo "Portside needs Python 3.12 or newer (Django 6.1), and none was found."; \
	  echo "Install one (e.g. 'pyenv install 3.13', 'apt-get install python3.13' or python.org),"; \
	  echo "or point to it: make run PYTHON=/path/to/python3.13"; exit 1; }; \
	echo "Using $$py ($$($$py --version))"; \
	$$py -m venv $(VENV)

$(VENV)/.installed: $(VPY) pyproject.toml
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(VPY) -m pip install --quiet -e '.[test]'
	@touch $@

# serve refuses to run as root (see README, Security); where everything runs as root (containers,
# CI) make says so and passes --allow-root.
run: $(VENV)/.installed
	@if [ "$$(id -u)" = 0 ]; then echo "Running as root: passing --allow-root to serve (run as your own user to avoid it)."; fi
	$(VPY) manage.py serve $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(ARGS)

# Debian's chromium drives the browser tests; Playwright's own browser download is not used.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "$${PORTSIDE_CHROMIUM:-}" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "No Chromium found and cannot install it: browser tests will skip (fail under CI=true)."; fi

# The Vite dev server the server-tree tests start (tests/ports/real_servers.py), from the npm
# registry at the version its lock file pins. Without npm the Vite tests skip (fail under CI=true).
VITE_FIXTURE := tests/fixtures/vite
$(VITE_FIXTURE)/node_modules/.installed: $(VITE_FIXTURE)/package-lock.json
	@if command -v npm >/dev/null; then \
	  (cd $(VITE_FIXTURE) && npm ci --silent --no-audit --no-fund) && touch $@; \
	else echo "No npm: the Vite server tests will skip (fail under CI=true)."; fi

vite: $(VITE_FIXTURE)/node_modules/.installed

# axe-core, which tests/browser/test_page_quality.py injects into every page, from the npm
# registry at the version its lock file pins. Without npm those tests skip (fail under CI=true).
AXE_FIXTURE := tests/fixtures/axe
$(AXE_FIXTURE)/node_modules/.installed: $(AXE_FIXTURE)/package-lock.json
	@if command -v npm >/dev/null; then \
	  (cd $(AXE_FIXTURE) && npm ci --silent --no-audit --no-fund) && touch $@; \
	else echo "No npm: the page quality tests will skip (fail under CI=true)."; fi

axe: $(AXE_FIXTURE)/node_modules/.installed

# Lint, layers and types first: each takes seconds, the suite minutes.
test: $(VENV)/.installed-test browser vite axe
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VPY) -m mypy
	$(VPY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-test browser vite
	$(VPY) -m bench.inventory
	$(VPY) -m bench.health
	$(VPY) -m bench.live
	$(VPY) -m bench.servers

# Mutation testing of the code that guards people ([tool.mutmut] in pyproject.toml,
# docs/testing.md). A venv of its own: mutmut brings setproctitle, which would retitle the real
# gunicorn workers the server tests start. Twelve children on two cores: a mutant's tests spend
# part of their time waiting on sockets and processes. How long a run takes: docs/testing.md.
# `mutmut results` after.
MUTATE_CHILDREN ?= 12
MUTATE_VENV := .venv-mutate
$(MUTATE_VENV)/.installed: pyproject.toml | $(VPY)
	@test -x $(MUTATE_VENV)/bin/python || $(VPY) -m venv $(MUTATE_VENV)
	$(MUTATE_VENV)/bin/python -m pip install --quiet -e '.[test]' 'mutmut>=3.8.1,<4'
	@touch $@

mutate: $(MUTATE_VENV)/.installed vite
	$(MUTATE_VENV)/bin/mutmut run --max-children $(MUTATE_CHILDREN)
	$(VPY) -m tools.mutation_leftovers --end
	$(MUTATE_VENV)/bin/python -m tools.mutation_table
	$(VPY) -m tools.hand_mutants

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-test
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
