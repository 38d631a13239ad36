# The README's commands. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed ## Create the virtualenv and install the pinned dependencies

run: install ## Bring up web + worker + beat with demo data (embedded PostgreSQL and broker unless DATABASE_URL / CELERY_BROKER_URL are set)
	$(BIN)/python manage.py run_stack --port $(PORT)

test: install ## Run the whole test suite (integration tests start a real Celery worker)
	$(BIN)/pytest

fuzz: install ## Schemathesis against the API's served schema on a test server (every operation, bounded examples)
	$(BIN)/pytest -m fuzz tests/test_api_fuzz.py

lint: install ## ruff, mypy and a check that no migration is missing
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run

bench: install ## Ingestion benchmark over real HTTP (see bench/README.md)
	$(BIN)/python bench/ingest_orders.py

bench-seg: install ## Segmentation benchmark at 10k, 100k and 1M customers (see bench/README.md)
	$(BIN)/python bench/segmentation.py --sizes 10000,100000,1000000

bench-models: install ## Predictive models benchmark, fit and scoring, at 1M customers (see bench/README.md)
	$(BIN)/python bench/predictive.py --customers 1000000 --reuse

bench-campaigns: install ## Campaign pipeline benchmark at 1M recipients (see bench/README.md)
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0} $(BIN)/python bench/campaign_pipeline.py

bench-console: install ## Admin pages and a campaign's dry run at 1M customers, 10M orders (see bench/README.md)
	$(BIN)/python bench/console_pages.py --reuse

bench-portrait: install ## Segment portrait of 100k and 10k members at 1M customers (see bench/README.md)
	$(BIN)/python bench/portrait.py --customers 1000000 --reuse

bench-callbacks: install ## WeCom callbacks through /wecom/callback with processing, 5,000 events (see bench/README.md)
	$(BIN)/python bench/wecom_callbacks.py --events 5000

bench-wecom: install ## Full sync of 100k WeCom contacts against the fake (see bench/README.md)
	$(BIN)/python bench/wecom_sync.py --contacts 100000

.PHONY: help install run test fuzz lint bench bench-seg bench-models bench-campaigns bench-console bench-portrait bench-callbacks bench-wecom
