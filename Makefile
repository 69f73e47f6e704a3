# The few commands people type. Each prepares the machine first (dev/setup.sh is idempotent).
PY := .venv/bin/python

.PHONY: setup demo test bench bench-scaling bench-churn lint format lock clean airflow backfill report

setup:
	@bash dev/setup.sh

demo: setup  ## seed July 2025, run the DAG end to end, print what reached each destination
	@$(PY) dev/demo.py

SQL := include/customer_performance/sql include/customer_performance/migrations

test: setup  ## lint (Python incl. Airflow 3 idioms, and the SQL) and every test, on the real databases and stand-ins
	@.venv/bin/ruff check .
	@.venv/bin/sqlfluff lint $(SQL) --processes 1
	@$(PY) -m pytest

airflow: setup  ## Airflow with a scheduler and UI on :8080, the package loaded, stand-ins running; Ctrl-C stops
	@$(PY) dev/airflow_local.py up $(if $(N),--customers $(N)) $(if $(PORT),--port $(PORT))

backfill: setup  ## backfill months FROM..TO (YYYY-MM) on the Airflow `make airflow` started
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=2025-05 TO=2025-07"; exit 2; }
	@$(PY) dev/airflow_local.py backfill $(FROM) $(TO)

report: setup  ## the executive dashboard of MONTH (default: the latest complete) from the local Airflow's analytics DB
	@$(PY) dev/airflow_local.py report $(MONTH)

lint: setup  ## ruff and sqlfluff (postgres dialect, .sqlfluff)
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/sqlfluff lint $(SQL) --processes 1

format: setup
	@.venv/bin/ruff format . && .venv/bin/ruff check --fix .

lock:  ## re-resolve the whole transitive set after editing requirements*.txt
	uv pip compile requirements.txt requirements-dev.txt --python-version 3.11 --no-header -o constraints.txt
	@sed -i '1i # Lock of the whole transitive set. Regenerate with: make lock' constraints.txt

clean:
	rm -rf .demo .airflow .airflow-local .pytest_cache .ruff_cache .bench-churn

bench: setup  ## the DAG at N customers (default 1,000,000) and HISTORY months of sales history (24) against the I/O floor and a naive baseline
	@$(PY) bench/run.py $(if $(N),--customers $(N)) $(if $(HISTORY),--history-months $(HISTORY))

bench-scaling: setup  ## the nightly run at SIZES customers (100k..3M) with 1 and HISTORY months of history: time and peak RSS per size
	@$(PY) bench/scaling.py $(if $(SIZES),--sizes $(SIZES)) $(if $(HISTORY),--history-months $(HISTORY))

bench-churn: setup  ## churn model and health bands against the generator's ground truth at N customers (default 100,000), MONTHS published up to July (13)
	@$(PY) bench/churn.py $(if $(N),--customers $(N)) $(if $(MONTHS),--months $(MONTHS))
