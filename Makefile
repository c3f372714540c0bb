# One command each: `make serve` runs the service on its embedded default (SQLite, no servers);
# `make test` runs the whole test suite. Both create .venv and install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned: an unpinned torch pulls several GB of CUDA wheels.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/vaelab serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# Every benchmark in bench/ (quick sizes), each appending its JSON line to bench/results.jsonl;
# then bench/report.py rewrites the README's benchmark table from those lines. A benchmark
# that fails (e.g. no PostgreSQL for metrics_store/dashboard) is listed as not run.
# BENCH_ARGS=--quick by default; BENCH_ARGS= runs the full sizes.
BENCH_ARGS ?= --quick
BENCH_RESULTS ?= bench/results.jsonl
BENCHES := engine_vs_pythae contention metrics_store service_overhead dashboard scheduler shapes_beta_sweep

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@for b in $(BENCHES); do \
		echo "== bench/$$b.py $(BENCH_ARGS)"; \
		PYTHONPATH=. $(BIN)/python bench/$$b.py $(BENCH_ARGS) > bench/.last.out 2>&1; \
		tail -n 5 bench/.last.out; \
		grep '^{' bench/.last.out | tail -n 1 >> $(BENCH_RESULTS) || echo "   (no JSON line)"; \
	done; rm -f bench/.last.out
	$(BIN)/python bench/report.py $(BENCH_RESULTS)

clean:
	rm -rf $(VENV) .pytest_cache
