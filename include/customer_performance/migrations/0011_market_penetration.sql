-- The regional summary's market penetration: active customers over the addressable market of a
-- region (an optional reference file, market.py) or over the group's customer base;
-- penetration_base says which. The _latest view lists the table's columns as they were when it
-- was made, so it is made again.
ALTER TABLE {schema}.regional_summary
ADD COLUMN addressable_market bigint,
ADD COLUMN market_penetration numeric,
ADD COLUMN penetration_base text;

CREATE OR REPLACE VIEW {schema}.regional_summary_latest AS
SELECT t.* FROM {schema}.regional_summary AS t
INNER JOIN {schema}.latest_complete_month AS l USING (report_month)
WHERE t.period_end = (t.report_month + interval '1 month')::date;
