# apiary: everything a fresh machine of this kind needs is installed from here.
SHELL := /bin/bash
PYTHON_VERSION := $(shell cat .python-version)
# uv cannot download interpreters here: use pyenv's 3.13 (installed on these machines).
PYTHON := $(shell pyenv prefix $(PYTHON_VERSION) 2>/dev/null)/bin/python3
UV := $(PYTHON) -m uv
VENV := .venv
STAMP := $(VENV)/.synced

VENDORED := public/vendor/.copied

.PHONY: install chromium assets dev test test-python wrangler-check lint bench clean token signin screenshots

$(STAMP): pyproject.toml uv.lock
	@test -x "$(PYTHON)" || { echo "Python $(PYTHON_VERSION) not found via pyenv"; exit 1; }
	$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --locked --python $(PYTHON)
	@touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Synthetic browser checks drive Debian's Chromium by path: Playwright's own browser
# downloads are never used (only the package registries are reachable).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

chromium:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

# The dashboard's third-party browser files (Swagger UI, the QR code encoder), pinned in
# package-lock.json, copied into the static assets: no CDN, nothing fetched at run time.
$(VENDORED): node_modules/.installed scripts/vendor-assets.sh
	scripts/vendor-assets.sh

assets: $(VENDORED)

install: $(STAMP) node_modules/.installed chromium assets

.dev.vars:
	@sed "s/change-me-to-a-long-random-string/$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')/" \
		.dev.vars.example > .dev.vars
	@echo "wrote .dev.vars with a fresh JWT_SECRET"

dev: $(STAMP) .dev.vars assets
	$(VENV)/bin/apiary dev

token: $(STAMP) .dev.vars
	$(VENV)/bin/apiary token --scope admin --ttl 1h

# A dashboard sign-in link for a 1-hour admin session (opens a browser where there is one).
signin: $(STAMP) .dev.vars
	$(VENV)/bin/apiary token --scope admin --ttl 1h --subject operator --open

# The whole suite: Python tests (unit, local runtime, Cloudflare adapters) and wrangler's checks.
test: install lint wrangler-check test-python

test-python: $(STAMP) assets
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile

wrangler-check: node_modules/.installed assets
	scripts/wrangler-check.sh

# mypy reads [tool.mypy] in pyproject.toml: strict, over src and apiary_local.
lint: $(STAMP)
	$(VENV)/bin/ruff check src apiary_local tests bench
	$(VENV)/bin/ruff format --check src apiary_local tests bench
	$(VENV)/bin/mypy

# The README's screenshots: the dashboard tests, saving a picture of every page.
screenshots: $(STAMP) assets
	mkdir -p docs/screenshots
	APIARY_SCREENSHOTS=docs/screenshots $(VENV)/bin/python -m pytest tests/integration/test_dashboard.py -q

bench: install
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) node_modules .apiary .wrangler .pytest_cache public/vendor
