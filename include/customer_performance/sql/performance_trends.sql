-- performance_trends: daily and ISO-weekly revenue, transactions and active customers within the
-- period. One pass groups the transactions by (day, customer); days and weeks are built from it,
-- so active customers are counted exactly without sorting every transaction twice. Weeks start
-- on Monday and hold only the days inside the period.
WITH daily AS (
    SELECT
        (order_date AT TIME ZONE 'UTC')::date AS day,
        customer_id,
        count(*) FILTER (WHERE status = 'completed') AS transactions,
        coalesce(sum(amount) FILTER (WHERE status = 'completed'), 0)
            - coalesce(sum(amount) FILTER (WHERE status = 'refunded'), 0) AS revenue
    FROM {transactions}
    GROUP BY 1, 2
)
SELECT 'day' AS grain, day AS bucket_start, sum(transactions)::bigint AS transactions, sum(revenue) AS revenue,
       count(*) FILTER (WHERE transactions > 0) AS active_customers
FROM daily
GROUP BY day
UNION ALL
SELECT 'week', week, sum(transactions)::bigint, sum(revenue), count(DISTINCT customer_id) FILTER (WHERE transactions > 0)
FROM (SELECT *, day - (extract(isodow FROM day)::int - 1) AS week FROM daily) AS d
GROUP BY week
