-- performance_trends: daily and ISO-weekly revenue, transactions and active customers within the
-- period. Weekly buckets start on Monday and are clipped to the period by the input rows.
WITH latest AS (
    SELECT DISTINCT ON (transaction_id) *
    FROM {transactions}
    ORDER BY transaction_id, updated_at DESC NULLS LAST
)
SELECT
    grain,
    bucket_start,
    count(*) FILTER (WHERE status = 'completed') AS transactions,
    coalesce(sum(amount) FILTER (WHERE status = 'completed'), 0)
        - coalesce(sum(amount) FILTER (WHERE status = 'refunded'), 0) AS revenue,
    count(DISTINCT customer_id) FILTER (WHERE status = 'completed') AS active_customers
FROM latest
CROSS JOIN LATERAL (
    VALUES ('day', date_trunc('day', order_date)::date),
           ('week', date_trunc('week', order_date)::date)
) AS b (grain, bucket_start)
GROUP BY grain, bucket_start
