-- The back-test checks the CLV's value too: the expected purchases over the horizon times the
-- revenue per purchase day the CLV uses (expected_revenue) against the revenue made
-- (actual_revenue), overall and per frequency group (sql/backtest.sql). Earlier months keep their
-- rows; the new columns are NULL there.
ALTER TABLE {schema}.model_backtest
ADD COLUMN expected_revenue numeric,
ADD COLUMN actual_revenue numeric;

CREATE OR REPLACE VIEW {schema}.model_backtest_latest AS
SELECT t.* FROM {schema}.model_backtest AS t
INNER JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;
