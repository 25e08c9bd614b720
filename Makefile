# Two commands a new user needs: `make demo` and `make test`.
# Both create (or reuse) a local virtual environment in .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint typecheck pytest reference bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# lifelines, the reference for Kaplan-Meier and Aalen-Johansen, needs pandas < 3 while dev takes
# pandas 3: its checks run in an environment of their own, which also holds the frame path to
# pandas 2.
REF_VENV ?= .venv-reference
REF_STAMP := $(REF_VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
$(REF_STAMP): pyproject.toml
	@test -x $(REF_VENV)/bin/python || $(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(REF_VENV)/bin/python -m pip install --quiet -e '.[frames,reference]' 'pandas>=2,<3' \
		polars duckdb pytest hypothesis
	@rm -f $(REF_VENV)/.installed-*
	@touch $@

# The main job on the bundled sample: a seeded simulated pipeline on the built-in b2b process,
# imported into the embedded SQLite store, then the pipeline health report (terminal + HTML),
# in English with its section per owner (--by owner), and in Korean. The demo has a light
# environment of its own with only the extra it uses (`cli`: click, rich, jinja2), not the
# development tools of `dev`.
DEMO_DIR ?= demo-output
DEMO_VENV ?= .venv-demo
DEMO_BIN := $(DEMO_VENV)/bin
DEMO_STAMP := $(DEMO_VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
$(DEMO_STAMP): pyproject.toml
	@test -x $(DEMO_BIN)/python || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_BIN)/python -m pip install --quiet --upgrade pip
	$(DEMO_BIN)/python -m pip install --quiet -e '.[cli]'
	@rm -f $(DEMO_VENV)/.installed-*
	@touch $@

demo: $(DEMO_STAMP)
	@mkdir -p $(DEMO_DIR)
	$(DEMO_BIN)/python -m stagegate.demo
	$(DEMO_BIN)/stagegate simulate --deals 2000 --seed 7 --out $(DEMO_DIR)/sample.jsonl
	$(DEMO_BIN)/stagegate import $(DEMO_DIR)/sample.jsonl --store $(DEMO_DIR)/pipeline.sqlite --replace
	$(DEMO_BIN)/stagegate report --store $(DEMO_DIR)/pipeline.sqlite --by owner \
		--html $(DEMO_DIR)/report.html
	$(DEMO_BIN)/stagegate report --store $(DEMO_DIR)/pipeline.sqlite --language ko \
		--html $(DEMO_DIR)/report-ko.html

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest --cov --cov-report=term

reference: $(REF_STAMP)
	STAGEGATE_REQUIRE_REFERENCE=1 $(REF_VENV)/bin/pytest -p no:cacheprovider \
		tests/test_stats_reference.py tests/test_analytics_parity.py tests/test_analytics_definitions.py

test: lint typecheck reference pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/core.py
	$(BIN)/python benchmarks/store.py --deals 100000
	$(BIN)/python benchmarks/analytics.py --deals 100000

clean:
	rm -rf $(VENV) $(REF_VENV) $(DEMO_VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache .coverage
