# The few commands people type. Each prepares the machine first (dev/setup.sh is idempotent).
PY := .venv/bin/python

.PHONY: setup demo test bench lint format lock clean

setup:
	@bash dev/setup.sh

demo: setup  ## seed July 2025, run the DAG end to end, print what reached each destination
	@$(PY) dev/demo.py

test: setup  ## lint (incl. Airflow 3 idioms) and every test, on the real databases and stand-ins
	@.venv/bin/ruff check .
	@$(PY) -m pytest

lint: setup
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

format: setup
	@.venv/bin/ruff format . && .venv/bin/ruff check --fix .

lock:  ## re-resolve the whole transitive set after editing requirements*.txt
	uv pip compile requirements.txt requirements-dev.txt --python-version 3.11 --no-header -o constraints.txt
	@sed -i '1i # Lock of the whole transitive set. Regenerate with: make lock' constraints.txt

clean:
	rm -rf .demo .airflow .pytest_cache .ruff_cache

bench: setup  ## the DAG at N customers (default 1,000,000) against the I/O floor and a naive baseline
	@$(PY) bench/run.py $(if $(N),--customers $(N))
