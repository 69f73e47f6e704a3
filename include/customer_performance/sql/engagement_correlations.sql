-- engagement_correlations: small tables of association (not causation) between what customers do
-- and what follows. Per analysis, one row per bucket of the explanatory measure (bucket_order
-- sorts them) with its mean and the mean outcome, and a row 'all' (bucket_order 0) over every
-- customer of the analysis with Pearson's correlation (correlated_with names the outcome):
-- * activity_decile: customers with session data, in deciles of this period's sessions
--   (login_count; '01' the fewest; equal sessions share a decile) -> mean revenue, and retention: of
--   the bucket's customers active in the previous month, the share active again;
-- * support_contacts: customers with a CRM contact and a satisfaction score on the scale, by
--   contacts ('1' .. '5+') -> mean of the customers' average satisfaction;
-- * feature_usage: the previous month's active customers, by the features they used then
--   ('0' .. '5+') -> the share active again in this period (NULL rows when that month is not loaded).
WITH prev AS (
    SELECT pc.customer_id, pc.features_used, pc.transaction_count > 0 AS active
    FROM {previous_customers} AS pc
    WHERE %(previous_loaded)s
),
cur AS (
    SELECT
        m.customer_id, m.login_count, m.revenue, m.interaction_count, m.avg_satisfaction,
        m.transaction_count > 0 AS active, p.active AS was_active
    FROM {customer_metrics} AS m
    LEFT JOIN prev AS p USING (customer_id)
),
activity AS (
    -- deciles by value: customers with the same sessions share one (its first position's), so the
    -- many customers without a session are one bucket, not split by their ids; deciles no
    -- customer starts in have no row
    SELECT *, least(10, 1 + floor(10 * (rank() OVER (ORDER BY login_count) - 1) / count(*) OVER ()))::integer AS decile
    FROM cur
    WHERE login_count IS NOT NULL
),
support AS (
    SELECT *, least(interaction_count, 5) AS contacts
    FROM cur
    WHERE interaction_count > 0 AND avg_satisfaction BETWEEN %(satisfaction_min)s AND %(satisfaction_max)s
),
features AS (
    SELECT p.features_used, least(p.features_used, 5) AS used, coalesce(c.active, FALSE) AS active_again
    FROM prev AS p
    LEFT JOIN cur AS c USING (customer_id)
    WHERE p.active AND p.features_used IS NOT NULL
)
SELECT
    'activity_decile' AS analysis,
    CASE WHEN grouping(decile) = 0 THEN lpad(decile::text, 2, '0') ELSE 'all' END AS bucket,
    coalesce(decile, 0) AS bucket_order,
    count(*) AS customers,
    round(avg(login_count), 2) AS mean_value,
    round(avg(revenue), 2) AS mean_revenue,
    round((count(*) FILTER (WHERE was_active AND active))::numeric
          / nullif(count(*) FILTER (WHERE was_active), 0), 4) AS retention_rate,
    NULL::numeric AS mean_satisfaction,
    CASE WHEN grouping(decile) = 1 THEN round(corr(login_count, revenue)::numeric, 4) END AS correlation,
    CASE WHEN grouping(decile) = 1 THEN 'revenue' END AS correlated_with
FROM activity
GROUP BY GROUPING SETS ((), (decile))
UNION ALL
SELECT
    'support_contacts',
    CASE WHEN grouping(contacts) = 1 THEN 'all' WHEN contacts = 5 THEN '5+' ELSE contacts::text END,
    coalesce(contacts, 0)::integer,
    count(*),
    round(avg(interaction_count), 2),
    NULL::numeric,
    NULL::numeric,
    round(avg(avg_satisfaction), 2),
    CASE WHEN grouping(contacts) = 1 THEN round(corr(interaction_count, avg_satisfaction)::numeric, 4) END,
    CASE WHEN grouping(contacts) = 1 THEN 'satisfaction' END
FROM support
GROUP BY GROUPING SETS ((), (contacts))
UNION ALL
SELECT
    'feature_usage',
    CASE WHEN grouping(used) = 1 THEN 'all' WHEN used = 5 THEN '5+' ELSE used::text END,
    CASE WHEN grouping(used) = 1 THEN 0 ELSE used + 1 END::integer,
    count(*),
    round(avg(features_used), 2),
    NULL::numeric,
    round((count(*) FILTER (WHERE active_again))::numeric / nullif(count(*), 0), 4),
    NULL::numeric,
    CASE WHEN grouping(used) = 1 THEN round(corr(features_used, active_again::integer)::numeric, 4) END,
    CASE WHEN grouping(used) = 1 THEN 'retention' END
FROM features
GROUP BY GROUPING SETS ((), (used))
