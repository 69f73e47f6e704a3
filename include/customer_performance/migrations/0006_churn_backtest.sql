-- Churn and health that are proven to predict. Per customer: the days with a sale in the period
-- (purchase_days, the unit the churn model counts), the expected purchases over the next month and
-- the next three (what the back-test scores), the value at stake (clv_12m x churn
-- probability) and the health score's weakest part in words (risk_driver). Per month: the
-- back-test of the predictions published one and three months before (sql/backtest.sql), and in
-- the run record the churn model that was fitted (method, MBG/NBD parameters).
ALTER TABLE {schema}.customer_performance
ADD COLUMN purchase_days bigint,
ADD COLUMN expected_purchases_1m numeric,
ADD COLUMN expected_purchases_3m numeric,
ADD COLUMN value_at_stake numeric,
ADD COLUMN risk_driver text;

-- the view's column list was fixed when it was created: take the new columns in
CREATE OR REPLACE VIEW {schema}.customer_performance_latest AS
SELECT t.* FROM {schema}.customer_performance AS t
INNER JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;

ALTER TABLE {schema}.pipeline_runs ADD COLUMN churn_model jsonb NOT NULL DEFAULT jsonb_build_object();

-- One set of rows per period, like the alerts: for each horizon whose months are all published,
-- the predictions of the month `predicted_month` against the completed purchases of the months
-- after it through report_month. measure 'overall' (bucket 'all', with the ROC AUC), 'churn_decile'
-- (bucket '01'..'10', 01 = the lowest predicted churn: the calibration table) and 'health_band'
-- (bucket green / yellow / red, with each band's churn rate over green's).
CREATE TABLE {schema}.model_backtest (
    report_month date NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    run_id text NOT NULL,
    predicted_month date NOT NULL,
    horizon_months integer NOT NULL,
    measure text NOT NULL,
    bucket text NOT NULL,
    customers bigint NOT NULL,
    churned bigint NOT NULL,
    observed_churn_rate numeric,
    mean_churn_probability numeric,
    auc numeric,
    lift_over_green numeric,
    expected_purchases numeric,   -- purchase days, as the model counts them
    actual_purchases numeric,     -- purchase days (completed sales, UTC) in the months observed
    churn_method text
) PARTITION BY LIST (report_month);

CREATE INDEX model_backtest_month ON {schema}.model_backtest (report_month, horizon_months, measure);

CREATE VIEW {schema}.model_backtest_latest AS
SELECT t.* FROM {schema}.model_backtest AS t
INNER JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;
