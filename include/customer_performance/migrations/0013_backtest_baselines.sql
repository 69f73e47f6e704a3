-- The back-test ranks the same event by the baselines a team would use without the churn model:
-- days since the last purchase (recency_auc) and the health score (health_auc), beside the
-- published churn probability's auc. The _latest view lists the table's columns as they were when
-- it was made, so it is made again.
ALTER TABLE {schema}.model_backtest
ADD COLUMN recency_auc numeric,
ADD COLUMN health_auc numeric;

CREATE OR REPLACE VIEW {schema}.model_backtest_latest AS
SELECT t.* FROM {schema}.model_backtest AS t
INNER JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;
