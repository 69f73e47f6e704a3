-- period_comparison: this period against the previous month, in total, per region and per CRM
-- segment (grouping_level 'crm_segment': consumer, smb, ..., which a customer keeps from month to
-- month; the value segment, new / VIP / at-risk, is defined by the very measures compared here):
-- revenue growth or decline, customer acquisition and retention.
-- * {previous_customers}: the previous month's published customer rows, from its month-close load;
--   the previous side groups them by the region and CRM segment each customer had then. previous_* are
--   NULL when that month is not loaded or its last load did not close it (%(previous_loaded)s
--   false): a month to date is no fair base.
-- * acquisition_rate: new customers (registered inside the period) over the customers known at
--   the period start (customers - new_customers).
-- * retention_rate: of the previous month's active customers (a completed sale then), the share
--   with a completed sale in this period.
WITH cur AS (
    SELECT
        customer_id, region, crm_segment, revenue, transaction_count > 0 AS active,
        registration_date >= %(period_start)s AS is_new
    FROM {customer_metrics}
),
prev AS (
    SELECT p.region, p.crm_segment, p.revenue, p.period_end, p.transaction_count > 0 AS active,
           coalesce(c.active, FALSE) AS active_again
    FROM {previous_customers} AS p
    LEFT JOIN cur AS c USING (customer_id)
),
now_side AS (
    SELECT
        CASE WHEN grouping(region) = 0 THEN 'region' WHEN grouping(crm_segment) = 0 THEN 'crm_segment' ELSE 'total' END
            AS grouping_level,
        CASE WHEN grouping(region) = 0 THEN region ELSE crm_segment END AS label,
        count(*) AS customers,
        count(*) FILTER (WHERE is_new) AS new_customers,
        count(*) FILTER (WHERE active) AS active_customers,
        coalesce(sum(revenue), 0) AS revenue
    FROM cur
    GROUP BY GROUPING SETS ((), (region), (crm_segment))
),
prev_side AS (
    SELECT
        CASE WHEN grouping(region) = 0 THEN 'region' WHEN grouping(crm_segment) = 0 THEN 'crm_segment' ELSE 'total' END
            AS grouping_level,
        CASE WHEN grouping(region) = 0 THEN region ELSE crm_segment END AS label,
        max(period_end) AS period_end,
        coalesce(sum(revenue), 0) AS revenue,
        count(*) FILTER (WHERE active) AS active_customers,
        count(*) FILTER (WHERE active AND active_again) AS retained_customers
    FROM prev
    WHERE %(previous_loaded)s
    GROUP BY GROUPING SETS ((), (region), (crm_segment))
),
joined AS (
    SELECT
        coalesce(n.grouping_level, p.grouping_level) AS grouping_level,
        coalesce(n.label, p.label) AS label,
        coalesce(n.customers, 0) AS customers,
        coalesce(n.new_customers, 0) AS new_customers,
        coalesce(n.active_customers, 0) AS active_customers,
        coalesce(n.revenue, 0) AS revenue,
        -- a group absent last month had nothing then (when the month is loaded at all)
        CASE WHEN %(previous_loaded)s THEN coalesce(p.revenue, 0) END AS previous_revenue,
        CASE WHEN %(previous_loaded)s THEN coalesce(p.active_customers, 0) END AS previous_active_customers,
        CASE WHEN %(previous_loaded)s THEN coalesce(p.retained_customers, 0) END AS retained_customers
    FROM now_side AS n
    FULL JOIN prev_side AS p ON n.grouping_level = p.grouping_level AND n.label IS NOT DISTINCT FROM p.label
)
SELECT
    grouping_level, label, customers, new_customers,
    round(new_customers::numeric / nullif(customers - new_customers, 0), 4) AS acquisition_rate,
    active_customers, revenue,
    (SELECT max(period_end) FROM prev WHERE %(previous_loaded)s) AS previous_period_end,
    previous_revenue,
    revenue - previous_revenue AS revenue_change,
    -- over the size of last month's revenue: from -100 to +50 is +150 %%, not -150 %%
    round((revenue - previous_revenue) / nullif(abs(previous_revenue), 0), 4) AS revenue_change_share,
    previous_active_customers, retained_customers,
    round(retained_customers::numeric / nullif(previous_active_customers, 0), 4) AS retention_rate
FROM joined
