-- What the dashboard and the report CLI read: one month at a time, by customer, by band, the
-- largest customers first. Declared on the parents, so every partition gets them.
CREATE UNIQUE INDEX customer_performance_month_customer
    ON {schema}.customer_performance (report_month, customer_id);
CREATE INDEX customer_performance_month_band
    ON {schema}.customer_performance (report_month, health_band, revenue_at_risk DESC);
CREATE INDEX customer_performance_month_revenue
    ON {schema}.customer_performance (report_month, revenue DESC);
CREATE INDEX regional_summary_month_level
    ON {schema}.regional_summary (report_month, grouping_level);
CREATE INDEX performance_trends_month_grain
    ON {schema}.performance_trends (report_month, grain, bucket_start);
CREATE INDEX data_quality_results_month_period
    ON {schema}.data_quality_results (report_month, period_end);
CREATE INDEX alerts_month_period
    ON {schema}.alerts (report_month, period_end);
-- one record per period: the load and each destination task add their part to it
CREATE UNIQUE INDEX pipeline_runs_month_period
    ON {schema}.pipeline_runs (report_month, period_end);
