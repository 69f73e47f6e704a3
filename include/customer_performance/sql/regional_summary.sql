-- regional_summary: the period over grouping sets of geography (region > country > state),
-- segment and product category. grouping_level names the grouping ('total', 'region',
-- 'region+segment', 'country', 'state', 'segment+product_category', ...); a NULL in a grouped
-- column is a real NULL (e.g. customers without a region), not "all".
-- The fact has one row per customer and product category bought (customers without purchases
-- have one row with a NULL category), so rows are counted without DISTINCT: per category a
-- customer is one row; otherwise only the customer's first row counts for customer measures.
WITH by_category AS (
    SELECT
        customer_id,
        product_category,
        count(*) FILTER (WHERE status = 'completed') AS transactions,
        coalesce(sum(amount_reporting) FILTER (WHERE status = 'completed'), 0)
            - coalesce(sum(amount_reporting) FILTER (WHERE status = 'refunded'), 0) AS revenue
    FROM {transactions}
    GROUP BY customer_id, product_category
),
fact AS (
    SELECT
        m.customer_id, m.region, m.country, m.state, m.segment, c.product_category,
        coalesce(c.transactions, 0) AS transactions,
        coalesce(c.revenue, 0) AS revenue,
        m.transaction_count > 0 AS customer_active,
        row_number() OVER (PARTITION BY m.customer_id ORDER BY c.product_category) = 1 AS first_row,
        m.revenue_at_risk,
        m.health_score,
        m.churn_probability
    FROM {metrics} AS m
    LEFT JOIN by_category AS c USING (customer_id)
)
SELECT
    coalesce(nullif(concat_ws('+',
        CASE WHEN grouping(state) = 0 THEN 'state' WHEN grouping(country) = 0 THEN 'country'
             WHEN grouping(region) = 0 THEN 'region' END,
        CASE WHEN grouping(segment) = 0 THEN 'segment' END,
        CASE WHEN grouping(product_category) = 0 THEN 'product_category' END
    ), ''), 'total') AS grouping_level,
    region, country, state, segment, product_category,
    CASE WHEN grouping(product_category) = 0 THEN count(*) ELSE count(*) FILTER (WHERE first_row) END AS customers,
    CASE WHEN grouping(product_category) = 0 THEN count(*) FILTER (WHERE transactions > 0)
         ELSE count(*) FILTER (WHERE first_row AND customer_active) END AS active_customers,
    sum(transactions)::bigint AS transactions,
    sum(revenue) AS revenue,
    -- customer-level measures are not split by category
    CASE WHEN grouping(product_category) = 1 THEN sum(revenue_at_risk) FILTER (WHERE first_row) END
        AS revenue_at_risk,
    CASE WHEN grouping(product_category) = 1 THEN round(avg(health_score) FILTER (WHERE first_row), 1) END
        AS avg_health_score,
    CASE WHEN grouping(product_category) = 1 THEN round(avg(churn_probability) FILTER (WHERE first_row), 4) END
        AS avg_churn_probability
FROM fact
GROUP BY GROUPING SETS (
    (), (region), (region, country), (region, country, state),
    (segment), (region, segment), (product_category), (region, product_category),
    (segment, product_category), (region, segment, product_category)
)
