-- The destination tables in the analytics schema, partitioned by report_month (one partition a
-- month, created on first load). Idempotent: safe to run before every load. Only the keys are
-- declared here: the data columns are those the SQL models produce, added to these tables by
-- the load when a model gains one (load/analytics_db.py).
CREATE TABLE IF NOT EXISTS {schema}.customer_performance (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    customer_id bigint NOT NULL
) PARTITION BY LIST (report_month);

CREATE TABLE IF NOT EXISTS {schema}.regional_summary (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    grouping_level text NOT NULL
) PARTITION BY LIST (report_month);

CREATE TABLE IF NOT EXISTS {schema}.performance_trends (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    grain text NOT NULL,
    bucket_start date NOT NULL
) PARTITION BY LIST (report_month);

CREATE TABLE IF NOT EXISTS {schema}.data_quality_results (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    suite text NOT NULL,
    table_name text NOT NULL,
    expectation text NOT NULL,
    severity text NOT NULL,
    success boolean NOT NULL
) PARTITION BY LIST (report_month);

CREATE TABLE IF NOT EXISTS {schema}.alerts (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    alert text NOT NULL
) PARTITION BY LIST (report_month);

CREATE TABLE IF NOT EXISTS {schema}.pipeline_runs (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    row_counts jsonb NOT NULL,
    quality jsonb NOT NULL,
    kpis jsonb NOT NULL
) PARTITION BY LIST (report_month);
