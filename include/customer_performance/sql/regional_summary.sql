-- regional_summary: the period over grouping sets of geography (region > country > state),
-- segment and product category. grouping_level names the grouping ('total', 'region',
-- 'region+segment', 'country', 'state', 'segment+product_category', ...); a NULL in a grouped
-- column is a real NULL (e.g. customers without a region), not "all". market_penetration is
-- active customers over the addressable market of a region row when the deployment gives one
-- (market_size_file), else over the group's customers; penetration_base says which.
-- Two parts, each a single pass:
-- * without product_category, every measure is a customer measure: one row per customer
--   (customer_metrics, whose transactions and revenue are the same deduplicated, converted
--   transactions);
-- * with product_category, a customer counts in each category it bought in (any status; active
--   when one purchase there settled), and customers without any transaction under a NULL
--   category; transactions and revenue are summed per category. Customer-level measures
--   (revenue at risk, health, churn) are not split by category: NULL there. The transactions
--   are read once, summed per customer and category, and those sums joined to the customers.
WITH categories AS (
    SELECT
        customer_id,
        product_category,
        bool_or(is_sale) AS active,
        count(*) FILTER (WHERE is_sale) AS transactions,
        sum(revenue_amount) AS revenue
    FROM {int_transactions}
    GROUP BY customer_id, product_category
),
by_category AS (
    SELECT
        m.region, m.segment, c.product_category,
        count(*) AS customers,
        count(*) FILTER (WHERE c.active) AS active_customers,
        coalesce(sum(c.transactions), 0) AS transactions,
        coalesce(sum(c.revenue), 0) AS revenue
    FROM {customer_metrics} AS m
    LEFT JOIN categories AS c USING (customer_id)
    GROUP BY 1, 2, 3
),
geography AS (
    SELECT
        coalesce(nullif(concat_ws('+',
            CASE WHEN grouping(state) = 0 THEN 'state' WHEN grouping(country) = 0 THEN 'country'
                 WHEN grouping(region) = 0 THEN 'region' END,
            CASE WHEN grouping(segment) = 0 THEN 'segment' END
        ), ''), 'total') AS grouping_level,
        region, country, state, segment, NULL::text AS product_category,
        count(*) AS customers,
        count(*) FILTER (WHERE transaction_count > 0) AS active_customers,
        sum(transaction_count)::bigint AS transactions,
        sum(revenue) AS revenue,
        sum(revenue_at_risk) AS revenue_at_risk,
        round(avg(health_score), 1) AS avg_health_score,
        round(avg(churn_probability), 4) AS avg_churn_probability
    FROM {customer_metrics}
    GROUP BY GROUPING SETS ((), (region), (region, country), (region, country, state), (segment), (region, segment))
)
-- market penetration: active customers over the region's addressable market where the deployment
-- gives one (a region row; market.py), else over the group's customer base
SELECT
    g.*,
    m.addressable_customers AS addressable_market,
    round(g.active_customers::numeric / nullif(coalesce(m.addressable_customers, g.customers), 0), 4)
        AS market_penetration,
    CASE WHEN m.addressable_customers IS NULL THEN 'customer_base' ELSE 'addressable_market' END AS penetration_base
FROM geography AS g
LEFT JOIN {market_size} AS m ON g.grouping_level = 'region' AND m.region = g.region
UNION ALL
SELECT
    concat_ws('+',
        CASE WHEN grouping(region) = 0 THEN 'region' END,
        CASE WHEN grouping(segment) = 0 THEN 'segment' END,
        'product_category'
    ),
    region, NULL, NULL, segment, product_category,
    sum(customers)::bigint,
    sum(active_customers)::bigint,
    sum(transactions)::bigint,
    sum(revenue),
    NULL::numeric,
    NULL::numeric,
    NULL::numeric,
    NULL::bigint,
    NULL::numeric,
    NULL::text
FROM by_category
GROUP BY GROUPING SETS ((product_category), (region, product_category), (segment, product_category),
                        (region, segment, product_category))
