-- regional_summary: the period over grouping sets of geography (region > country > state),
-- segment and product category. grouping_level names the grouping ('total', 'region',
-- 'region+segment', 'country', 'state', 'segment+product_category', ...); a NULL in a grouped
-- column is a real NULL (e.g. customers without a region), not "all".
-- Two parts, each a single pass:
-- * without product_category, every measure is a customer measure: one row per customer
--   (customer_metrics, whose transactions and revenue are the same deduplicated, converted
--   transactions);
-- * with product_category, a customer counts in each category it bought in (any status; active
--   when one purchase there settled), and customers without any transaction under a NULL
--   category; transactions and revenue are summed per category directly. Customer-level
--   measures (revenue at risk, health, churn) are not split by category: NULL there.
WITH categories AS (
    -- one row per customer and category bought in: a small state per group (no sums)
    SELECT customer_id, product_category, bool_or(is_sale) AS active
    FROM {int_transactions}
    GROUP BY customer_id, product_category
),
category_customers AS (
    SELECT m.region, m.segment, c.product_category, count(*) AS customers,
           count(*) FILTER (WHERE c.active) AS active_customers
    FROM {customer_metrics} AS m
    LEFT JOIN categories AS c USING (customer_id)
    GROUP BY 1, 2, 3
),
category_sales AS (
    SELECT m.region, m.segment, t.product_category,
           count(*) FILTER (WHERE t.is_sale) AS transactions,
           coalesce(sum(t.revenue_amount), 0) AS revenue
    FROM {int_transactions} AS t
    JOIN {customer_metrics} AS m USING (customer_id)
    GROUP BY 1, 2, 3
),
by_category AS (
    SELECT region, segment, product_category, customers, active_customers, 0 AS transactions, 0 AS revenue
    FROM category_customers
    UNION ALL
    SELECT region, segment, product_category, 0, 0, transactions, revenue
    FROM category_sales
)
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
    NULL::numeric
FROM by_category
GROUP BY GROUPING SETS ((product_category), (region, product_category), (segment, product_category),
                        (region, segment, product_category))
