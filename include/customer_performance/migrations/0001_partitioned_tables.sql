-- The destination tables, partitioned by report_month: one partition per month, named like
-- customer_performance_2025_07, created by the load on a month's first run. Every column a SQL
-- model produces is declared here; a model that gains a column needs a new migration (the load
-- refuses staged columns its destination lacks, naming them).
CREATE TABLE {schema}.customer_performance (
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
    gross_revenue numeric,
    refunds numeric,
    avg_order_value numeric,
    units numeric,
    discounts numeric,
    tax numeric,
    first_purchase timestamptz,
    last_purchase timestamptz,
    probable_duplicates bigint,
    lifetime_first_purchase timestamptz,
    lifetime_purchases bigint,
    lifetime_revenue numeric,
    days_since_last_purchase integer,
    login_count bigint,
    session_minutes numeric,
    features_used bigint,
    days_since_last_login integer,
    interaction_count bigint,
    calls bigint,
    emails bigint,
    chats bigint,
    ticket_count bigint,
    avg_satisfaction numeric,
    avg_resolution_hours numeric,
    resolution_rate numeric,
    escalation_rate numeric,
    engagement_score numeric,
    activity_level text,
    churn_probability numeric,
    churn_method text,
    expected_purchases_12m numeric,
    clv_12m numeric,
    segment text,
    health_score numeric,
    health_band text,
    previous_health_score numeric,
    health_trend text,
    revenue_at_risk numeric,
    is_top_20pct boolean
) PARTITION BY LIST (report_month);

CREATE TABLE {schema}.regional_summary (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    grouping_level text NOT NULL,
    region text,
    country text,
    state text,
    segment text,
    product_category text,
    customers bigint,
    active_customers bigint,
    transactions bigint,
    revenue numeric,
    revenue_at_risk numeric,
    avg_health_score numeric,
    avg_churn_probability numeric
) PARTITION BY LIST (report_month);

CREATE TABLE {schema}.performance_trends (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    grain text NOT NULL,
    bucket_start date NOT NULL,
    scope text,
    region text,
    transactions bigint,
    revenue numeric,
    active_customers bigint,
    new_customers bigint,
    interactions bigint,
    avg_satisfaction numeric
) PARTITION BY LIST (report_month);

-- Quality results, alerts and run records keep one set of rows per period (period_end): the
-- history of a month's daily runs; a rerun of the same period replaces its own rows only.
CREATE TABLE {schema}.data_quality_results (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    suite text NOT NULL,
    table_name text NOT NULL,
    column_name text,
    rule text,
    expectation text NOT NULL,
    severity text NOT NULL,
    rows_checked bigint,
    failing_rows bigint,
    success boolean NOT NULL,
    examples jsonb,
    quarantined_rows bigint,
    score numeric
) PARTITION BY LIST (report_month);

CREATE TABLE {schema}.alerts (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    alert text NOT NULL,
    severity text,
    scope text,
    value numeric,
    threshold numeric,
    message text
) PARTITION BY LIST (report_month);

CREATE TABLE {schema}.pipeline_runs (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    row_counts jsonb NOT NULL DEFAULT jsonb_build_object(),  -- what each task returned: tables and rows
    quality jsonb NOT NULL DEFAULT jsonb_build_object(),     -- the gate's summary: checks, failures, quarantined rows, scores
    kpis jsonb NOT NULL DEFAULT jsonb_build_object(),        -- the period's KPI row
    tasks jsonb NOT NULL DEFAULT jsonb_build_object(),       -- per task: rows in, rows out, seconds
    delivered jsonb NOT NULL DEFAULT jsonb_build_object()    -- per destination: where the period's results went, by which run
) PARTITION BY LIST (report_month);
