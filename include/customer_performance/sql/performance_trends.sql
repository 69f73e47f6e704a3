-- performance_trends: daily and ISO-weekly figures within the period, overall (scope 'all') and
-- per region (scope 'region'): revenue, transactions, active customers (bought that day or
-- week), new customers (registered), CRM interactions and average satisfaction. Every day and
-- week of the period has a row, zero when nothing happened. Weeks start on Monday and hold only
-- the period's days. Purchases by customers unknown to the customer database are not counted
-- (as in customer_metrics).
-- Sums are taken per day and region first (a few hundred groups), then rolled up to the buckets.
-- Active customers are distinct per bucket, so they come from one bitmask per customer of the
-- days it bought on (bit d = period_start + d; a period is at most a month), counted per week and
-- pattern of days, then tested against each bucket's mask: a tiny aggregate per customer instead
-- of a group per customer and day.
WITH buckets AS (
    SELECT d::date AS day, d::date - %(period_start)s::date AS bit, b.grain, b.bucket_start
    FROM generate_series(%(period_start)s::timestamp, %(period_end)s::timestamp - interval '1 day', interval '1 day') AS d
    CROSS JOIN LATERAL (
        VALUES ('day', d::date), ('week', d::date - (extract(isodow FROM d)::int - 1))  -- noqa: CP01
    ) AS b (grain, bucket_start)
),
bucket_masks AS (
    SELECT grain, bucket_start, bit_or(1::bigint << bit) AS mask FROM buckets GROUP BY grain, bucket_start
),
daily_sales AS (
    SELECT
        (t.order_date AT TIME ZONE 'UTC')::date AS day,
        m.region,
        count(*) FILTER (WHERE t.is_sale) AS transactions,
        coalesce(sum(t.revenue_amount), 0) AS revenue
    FROM {int_transactions} AS t
    JOIN {customer_metrics} AS m USING (customer_id)
    GROUP BY 1, 2
),
sales AS (
    SELECT b.grain, b.bucket_start, s.region, grouping(s.region) = 1 AS overall,
           sum(s.transactions)::bigint AS transactions, sum(s.revenue) AS revenue
    FROM daily_sales AS s
    JOIN buckets AS b USING (day)
    GROUP BY GROUPING SETS ((b.grain, b.bucket_start), (b.grain, b.bucket_start, s.region))
),
buying_days AS MATERIALIZED (
    -- materialised: inlined, its join is run again for each week it is matched with (five
    -- times a month: 7.5 s of 22 s at a million customers)
    SELECT m.region, d.days
    FROM (
        SELECT customer_id, bit_or(1::bigint << ((order_date AT TIME ZONE 'UTC')::date - %(period_start)s::date)) AS days
        FROM {int_transactions}
        WHERE is_sale
        GROUP BY customer_id
    ) AS d
    JOIN {customer_metrics} AS m USING (customer_id)
),
week_patterns AS (
    -- customers per region, week and set of buying days within that week (at most 128 sets)
    SELECT d.region, d.days & w.mask AS pattern, count(*) AS customers
    FROM buying_days AS d
    JOIN bucket_masks AS w ON w.grain = 'week' AND d.days & w.mask <> 0
    GROUP BY 1, 2
),
active AS (
    -- a pattern lies within one week: it meets that week's mask and the masks of its days only
    SELECT b.grain, b.bucket_start, p.region, grouping(p.region) = 1 AS overall,
           sum(p.customers)::bigint AS active_customers
    FROM week_patterns AS p
    JOIN bucket_masks AS b ON p.pattern & b.mask <> 0
    GROUP BY GROUPING SETS ((b.grain, b.bucket_start), (b.grain, b.bucket_start, p.region))
),
daily_crm AS (
    SELECT
        (i.interaction_date AT TIME ZONE 'UTC')::date AS day,
        m.region,
        count(*) AS interactions,
        sum(i.satisfaction_score) FILTER (WHERE i.satisfaction_score BETWEEN %(satisfaction_min)s AND %(satisfaction_max)s)
            AS satisfaction_sum,
        count(i.satisfaction_score)
            FILTER (WHERE i.satisfaction_score BETWEEN %(satisfaction_min)s AND %(satisfaction_max)s) AS satisfaction_n
    FROM {vld_interactions} AS i
    JOIN {customer_metrics} AS m USING (customer_id)
    GROUP BY 1, 2
),
crm AS (
    SELECT b.grain, b.bucket_start, c.region, grouping(c.region) = 1 AS overall,
           sum(c.interactions)::bigint AS interactions,
           round(sum(c.satisfaction_sum)::numeric / nullif(sum(c.satisfaction_n), 0), 2) AS avg_satisfaction
    FROM daily_crm AS c
    JOIN buckets AS b USING (day)
    GROUP BY GROUPING SETS ((b.grain, b.bucket_start), (b.grain, b.bucket_start, c.region))
),
signups AS (
    SELECT b.grain, b.bucket_start, m.region, grouping(m.region) = 1 AS overall, count(*) AS new_customers
    FROM {customer_metrics} AS m
    JOIN buckets AS b ON b.day = m.registration_date
    GROUP BY GROUPING SETS ((b.grain, b.bucket_start), (b.grain, b.bucket_start, m.region))
),
scaffold AS (
    SELECT DISTINCT b.grain, b.bucket_start, r.region, r.overall
    FROM buckets AS b
    CROSS JOIN (
        SELECT NULL::text AS region, TRUE AS overall
        UNION ALL
        SELECT DISTINCT region, FALSE FROM {customer_metrics}
    ) AS r
)
SELECT
    s.grain, s.bucket_start,
    CASE WHEN s.overall THEN 'all' ELSE 'region' END AS scope,
    s.region,
    coalesce(sa.transactions, 0) AS transactions,
    coalesce(sa.revenue, 0) AS revenue,
    coalesce(a.active_customers, 0) AS active_customers,
    coalesce(su.new_customers, 0) AS new_customers,
    coalesce(c.interactions, 0) AS interactions,
    c.avg_satisfaction
FROM scaffold AS s
LEFT JOIN sales AS sa
    ON (sa.grain, sa.bucket_start, sa.overall) = (s.grain, s.bucket_start, s.overall)
    AND sa.region IS NOT DISTINCT FROM s.region
LEFT JOIN active AS a
    ON (a.grain, a.bucket_start, a.overall) = (s.grain, s.bucket_start, s.overall)
    AND a.region IS NOT DISTINCT FROM s.region
LEFT JOIN crm AS c
    ON (c.grain, c.bucket_start, c.overall) = (s.grain, s.bucket_start, s.overall)
    AND c.region IS NOT DISTINCT FROM s.region
LEFT JOIN signups AS su
    ON (su.grain, su.bucket_start, su.overall) = (s.grain, s.bucket_start, s.overall)
    AND su.region IS NOT DISTINCT FROM s.region
