-- The churn probability is now the probability of no completed purchase in the next 90 days
-- (churn.no_purchase_days), from the gradient-boosted model or the BTYD fallback (churn_model.py);
-- beside it the BTYD probability of the same event and P(alive). The value at stake (CLV x the old
-- churn, a priority score summed as money) goes: its place is taken by the expected loss (value if
-- kept x churn probability), with the save and win-back lists, each customer's rank in its list,
-- its usual gap between purchases (what "still active" is judged against) and the churn reason. Earlier months keep their rows; the new columns are NULL there.
DROP VIEW {schema}.customer_performance_latest;

ALTER TABLE {schema}.customer_performance
DROP COLUMN value_at_stake,
ADD COLUMN churn_probability_btyd numeric,
ADD COLUMN p_alive numeric,
ADD COLUMN value_if_kept numeric,
ADD COLUMN expected_loss numeric,
ADD COLUMN usual_gap_days numeric,
ADD COLUMN churn_list text,
ADD COLUMN list_rank integer,
ADD COLUMN churn_reason text;

CREATE VIEW {schema}.customer_performance_latest AS
SELECT t.* FROM {schema}.customer_performance AS t
INNER JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;

-- The back-test scores the churn probability against its own event at the horizon that holds it
-- (sql/backtest.sql), beside the BTYD probability (btyd_auc), on the customers active at the
-- prediction too (active_auc, active_recency_auc), with the save list's size and precision.
ALTER TABLE {schema}.model_backtest
ADD COLUMN btyd_auc numeric,
ADD COLUMN active_auc numeric,
ADD COLUMN active_recency_auc numeric,
ADD COLUMN save_list bigint,
ADD COLUMN save_precision numeric;

CREATE OR REPLACE VIEW {schema}.model_backtest_latest AS
SELECT t.* FROM {schema}.model_backtest AS t
INNER JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;
