-- The latest complete month: the newest month whose partition holds the whole month (its last
-- load was the month-close run, period_end = the first day of the next month).
CREATE VIEW {schema}.latest_complete_month AS
SELECT max(report_month) AS report_month
FROM {schema}.pipeline_runs
WHERE period_end = (report_month + interval '1 month')::date;

CREATE VIEW {schema}.customer_performance_latest AS
SELECT t.* FROM {schema}.customer_performance AS t
JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;

CREATE VIEW {schema}.regional_summary_latest AS
SELECT t.* FROM {schema}.regional_summary AS t
JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;

CREATE VIEW {schema}.performance_trends_latest AS
SELECT t.* FROM {schema}.performance_trends AS t
JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;

CREATE VIEW {schema}.alerts_latest AS
SELECT t.* FROM {schema}.alerts AS t
JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;
