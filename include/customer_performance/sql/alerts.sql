-- alerts: what needs a person's attention this period, one row per alert.
--   region_revenue_drop  a region's revenue fell by more than the threshold against the previous
--                        month, prorated to the period's length (a mid-month run compares
--                        month-to-date with the same share of last month)
--   revenue_at_risk      the share of the period's revenue at risk is above the threshold
--   data_completeness    a required field is filled in fewer than the threshold share of rows
--   source_volume        a source's rows per day are outside the gate's range against the recent
--                        loaded periods (the gate's warning <dataset>.volume)
--   source_freshness     a source's latest event is older than the gate allows (<dataset>.freshness)
--   source_empty         a source had no rows and the month is published anyway (allowed by the
--                        run's param or because the previous period was empty too)
--   data_docs            the gate's Data Docs could not be written to the export location (the
--                        gate went on; the report's warning run.data_docs says why)
WITH current_region AS (
    SELECT region, sum(revenue) AS revenue FROM {customer_metrics} WHERE region IS NOT NULL GROUP BY region
),
region_drop AS (
    SELECT
        'region_revenue_drop' AS alert, 'warning' AS severity, c.region AS scope,
        round(1 - c.revenue / (p.revenue * %(period_share)s::numeric), 4) AS value, %(region_drop)s::numeric AS threshold,
        format('%%s revenue %%s is %%s%%%% below last month''s %%s (prorated)', c.region, round(c.revenue, 2),
               round(100 * (1 - c.revenue / (p.revenue * %(period_share)s::numeric)), 1), round(p.revenue * %(period_share)s::numeric, 2))
            AS message
    FROM current_region AS c
    JOIN {previous_regions} AS p USING (region)
    WHERE p.revenue > 0 AND c.revenue < p.revenue * %(period_share)s::numeric * (1 - %(region_drop)s::numeric)
),
risk AS (
    SELECT
        'revenue_at_risk' AS alert, 'warning' AS severity, 'all' AS scope,
        round(sum(revenue_at_risk) / nullif(sum(greatest(revenue, 0)), 0), 4) AS value,
        %(risk_share)s::numeric AS threshold,
        format('%%s%%%% of revenue is at risk (%%s)', round(100 * sum(revenue_at_risk) / nullif(sum(greatest(revenue, 0)), 0), 1),
               round(sum(revenue_at_risk), 2)) AS message
    FROM {customer_metrics}
    HAVING sum(revenue_at_risk) / nullif(sum(greatest(revenue, 0)), 0) > %(risk_share)s::numeric
),
completeness AS (
    SELECT 'customers.email' AS field, count(email)::numeric / nullif(count(*), 0) AS share FROM {customer_metrics}
    UNION ALL
    SELECT 'customers.region', count(region)::numeric / nullif(count(*), 0) FROM {customer_metrics}
    UNION ALL
    SELECT 'transactions.amount', count(amount)::numeric / nullif(count(*), 0) FROM {int_transactions}
)
SELECT alert, severity, scope, value, threshold, message FROM region_drop
UNION ALL
SELECT alert, severity, scope, value, threshold, message FROM risk
UNION ALL
SELECT 'data_completeness', 'critical', field, round(share, 4), %(completeness_min)s::numeric,
       format('%%s is filled in %%s%%%% of rows (minimum %%s%%%%)', field, round(100 * share, 1),
              round(100 * %(completeness_min)s::numeric, 1))
FROM completeness
WHERE share < %(completeness_min)s::numeric
UNION ALL
SELECT CASE WHEN rule LIKE '%%.volume' THEN 'source_volume' WHEN rule LIKE '%%.freshness' THEN 'source_freshness'
            WHEN rule = 'run.data_docs' THEN 'data_docs' ELSE 'source_empty' END,
       severity, table_name, rows_checked::numeric, NULL::numeric, examples ->> 0
FROM {dq_results}
WHERE NOT success AND (
    (severity = 'warning' AND (rule LIKE '%%.volume' OR rule LIKE '%%.freshness'))
    OR (severity = 'info' AND rule LIKE '%%.not_empty')
    OR rule = 'run.data_docs'
)
