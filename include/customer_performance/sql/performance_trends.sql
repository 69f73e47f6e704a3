-- performance_trends: daily and ISO-weekly figures within the period, overall (scope 'all') and
-- per region (scope 'region'): revenue, transactions, active customers (bought that day or
-- week), new customers (registered), CRM interactions and average satisfaction. Every day and
-- week of the period has a row, zero when nothing happened. Weeks start on Monday and hold only
-- the period's days. Purchases by customers unknown to the customer database are not counted
-- (as in customer_metrics).
WITH buckets AS (
    SELECT d::date AS day, b.grain, b.bucket_start
    FROM generate_series(%(period_start)s::timestamp, %(period_end)s::timestamp - interval '1 day', interval '1 day') AS d
    CROSS JOIN LATERAL (
        VALUES ('day', d::date), ('week', d::date - (extract(isodow FROM d)::int - 1))
    ) AS b (grain, bucket_start)
),
daily AS (
    -- one pass over the transactions: per day and (known) customer
    SELECT
        (t.order_date AT TIME ZONE 'UTC')::date AS day,
        t.customer_id,
        m.region,
        count(*) FILTER (WHERE t.status = 'completed') AS transactions,
        coalesce(sum(t.amount_reporting) FILTER (WHERE t.status = 'completed'), 0)
            - coalesce(sum(t.amount_reporting) FILTER (WHERE t.status = 'refunded'), 0) AS revenue
    FROM {transactions} AS t
    JOIN {metrics} AS m USING (customer_id)
    GROUP BY 1, 2, 3
),
weekly AS (
    SELECT day - (extract(isodow FROM day)::int - 1) AS week, customer_id, region,
           sum(transactions) AS transactions, sum(revenue) AS revenue
    FROM daily
    GROUP BY 1, 2, 3
),
sales AS (
    -- each row of daily (weekly) is one customer in one day (week): active customers are rows
    SELECT 'day' AS grain, day AS bucket_start, region, grouping(region) = 1 AS overall,
           sum(transactions)::bigint AS transactions, sum(revenue) AS revenue,
           count(*) FILTER (WHERE transactions > 0) AS active_customers
    FROM daily
    GROUP BY GROUPING SETS ((day), (day, region))
    UNION ALL
    SELECT 'week', week, region, grouping(region) = 1,
           sum(transactions)::bigint, sum(revenue), count(*) FILTER (WHERE transactions > 0)
    FROM weekly
    GROUP BY GROUPING SETS ((week), (week, region))
),
crm AS (
    SELECT b.grain, b.bucket_start, m.region, grouping(m.region) = 1 AS overall,
           count(*) AS interactions,
           round(avg(i.satisfaction_score)
               FILTER (WHERE i.satisfaction_score BETWEEN %(satisfaction_min)s AND %(satisfaction_max)s), 2)
               AS avg_satisfaction
    FROM {interactions} AS i
    JOIN buckets AS b ON b.day = (i.interaction_date AT TIME ZONE 'UTC')::date
    JOIN {metrics} AS m USING (customer_id)
    GROUP BY GROUPING SETS ((b.grain, b.bucket_start), (b.grain, b.bucket_start, m.region))
),
signups AS (
    SELECT b.grain, b.bucket_start, m.region, grouping(m.region) = 1 AS overall, count(*) AS new_customers
    FROM {metrics} AS m
    JOIN buckets AS b ON b.day = m.registration_date
    GROUP BY GROUPING SETS ((b.grain, b.bucket_start), (b.grain, b.bucket_start, m.region))
),
scaffold AS (
    SELECT DISTINCT b.grain, b.bucket_start, r.region, r.overall
    FROM buckets AS b
    CROSS JOIN (
        SELECT NULL::text AS region, true AS overall
        UNION ALL
        SELECT DISTINCT region, false FROM {metrics}
    ) AS r
)
SELECT
    s.grain, s.bucket_start,
    CASE WHEN s.overall THEN 'all' ELSE 'region' END AS scope,
    s.region,
    coalesce(sa.transactions, 0) AS transactions,
    coalesce(sa.revenue, 0) AS revenue,
    coalesce(sa.active_customers, 0) AS active_customers,
    coalesce(su.new_customers, 0) AS new_customers,
    coalesce(c.interactions, 0) AS interactions,
    c.avg_satisfaction
FROM scaffold AS s
LEFT JOIN sales AS sa
    ON (sa.grain, sa.bucket_start, sa.overall) = (s.grain, s.bucket_start, s.overall)
    AND sa.region IS NOT DISTINCT FROM s.region
LEFT JOIN crm AS c
    ON (c.grain, c.bucket_start, c.overall) = (s.grain, s.bucket_start, s.overall)
    AND c.region IS NOT DISTINCT FROM s.region
LEFT JOIN signups AS su
    ON (su.grain, su.bucket_start, su.overall) = (s.grain, s.bucket_start, s.overall)
    AND su.region IS NOT DISTINCT FROM s.region
