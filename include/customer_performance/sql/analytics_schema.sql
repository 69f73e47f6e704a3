-- The destination tables in the analytics schema, partitioned by report_month (one partition a
-- month, created on first load). Idempotent: safe to run before every load.
CREATE TABLE IF NOT EXISTS {schema}.customer_performance (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    customer_id bigint NOT NULL,
    name text,
    email text,
    status text,
    region text,
    country text,
    state text,
    crm_segment text,
    registration_date date,
    transaction_count bigint,
    revenue numeric,
    refunds numeric,
    avg_order_value numeric,
    units bigint,
    first_purchase timestamptz,
    last_purchase timestamptz,
    login_count bigint,
    session_minutes numeric,
    features_used bigint,
    interaction_count bigint,
    ticket_count bigint,
    avg_satisfaction numeric
) PARTITION BY LIST (report_month);

CREATE TABLE IF NOT EXISTS {schema}.regional_summary (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    grouping_level text NOT NULL,
    region text,
    country text,
    state text,
    customers bigint,
    active_customers bigint,
    transactions bigint,
    revenue numeric,
    interactions bigint,
    avg_satisfaction numeric
) PARTITION BY LIST (report_month);

CREATE TABLE IF NOT EXISTS {schema}.performance_trends (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    grain text NOT NULL,
    bucket_start date NOT NULL,
    transactions bigint,
    revenue numeric,
    active_customers bigint
) PARTITION BY LIST (report_month);

CREATE TABLE IF NOT EXISTS {schema}.data_quality_results (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    suite text NOT NULL,
    table_name text NOT NULL,
    column_name text,
    expectation text NOT NULL,
    severity text NOT NULL,
    rows_checked bigint,
    failing_rows bigint,
    success boolean NOT NULL,
    examples jsonb
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
