-- What the business reads: the insights the specifications ask for, one set of rows per period
-- like the alerts (replaced per period, a _latest view each). The README's metrics tables define
-- every column; sql/<table>.sql computes it.

-- This period against the previous month, per region and per segment (and in total): revenue
-- growth or decline, customer acquisition and retention. previous_* come from the previous month's
-- published customer rows (grouped by the region and segment each customer had then) and are NULL
-- when that month is not loaded.
CREATE TABLE {schema}.period_comparison (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    grouping_level text NOT NULL,       -- total, region, segment
    label text,                         -- the region or segment (NULL: customers without one, or the total)
    customers bigint NOT NULL,
    new_customers bigint NOT NULL,
    acquisition_rate numeric,           -- new customers / the customers known at the period start
    active_customers bigint NOT NULL,
    revenue numeric NOT NULL,
    previous_period_end date,           -- the end of the previous month's published period
    previous_revenue numeric,
    revenue_change numeric,
    revenue_change_share numeric,       -- revenue_change / previous_revenue
    previous_active_customers bigint,
    retained_customers bigint,          -- of those, active again in this period
    retention_rate numeric
) PARTITION BY LIST (report_month);

CREATE INDEX period_comparison_month ON {schema}.period_comparison (report_month, grouping_level);

-- Sessions by weekday (ISO: 1 = Monday) and hour of day, both in UTC.
CREATE TABLE {schema}.engagement_heatmap (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    weekday integer NOT NULL,
    hour integer NOT NULL,
    sessions bigint NOT NULL,
    session_minutes numeric NOT NULL
) PARTITION BY LIST (report_month);

CREATE INDEX engagement_heatmap_month ON {schema}.engagement_heatmap (report_month);

-- CRM interactions over grouping sets of type, department, priority and resolution status
-- (grouping_level names the grouping, e.g. 'interaction_type+department'; a NULL in a grouped
-- column is a real NULL).
CREATE TABLE {schema}.interaction_summary (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    grouping_level text NOT NULL,
    interaction_type text,
    department text,
    priority text,
    resolution_status text,
    interactions bigint NOT NULL,
    customers bigint NOT NULL,
    avg_satisfaction numeric,
    resolved_share numeric,
    escalated_share numeric,
    avg_resolution_hours numeric
) PARTITION BY LIST (report_month);

CREATE INDEX interaction_summary_month ON {schema}.interaction_summary (report_month, grouping_level);

-- Small tables of association (not causation): per analysis, one row per bucket of the
-- explanatory measure with the mean outcome, and a row 'all' with Pearson's correlation.
--   activity_decile   sessions this period (deciles) -> revenue and retention
--   support_contacts  CRM contacts this period -> mean satisfaction
--   feature_usage     features used in the previous month -> retention this period
CREATE TABLE {schema}.engagement_correlations (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    analysis text NOT NULL,
    bucket text NOT NULL,
    bucket_order integer NOT NULL,
    customers bigint NOT NULL,
    mean_value numeric,                 -- the explanatory measure's mean in the bucket
    mean_revenue numeric,
    retention_rate numeric,
    mean_satisfaction numeric,
    correlation numeric,                -- on the row 'all': Pearson's r with correlated_with
    correlated_with text
) PARTITION BY LIST (report_month);

CREATE INDEX engagement_correlations_month ON {schema}.engagement_correlations (report_month, analysis);

CREATE VIEW {schema}.period_comparison_latest AS
SELECT t.* FROM {schema}.period_comparison AS t
INNER JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;

CREATE VIEW {schema}.engagement_heatmap_latest AS
SELECT t.* FROM {schema}.engagement_heatmap AS t
INNER JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;

CREATE VIEW {schema}.interaction_summary_latest AS
SELECT t.* FROM {schema}.interaction_summary AS t
INNER JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;

CREATE VIEW {schema}.engagement_correlations_latest AS
SELECT t.* FROM {schema}.engagement_correlations AS t
INNER JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;
