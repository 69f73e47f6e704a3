-- kpis: one row per run, the executive summary of the period.
SELECT
    count(*) AS customers,
    count(*) FILTER (WHERE transaction_count > 0) AS active_customers,
    coalesce(sum(transaction_count), 0)::bigint AS transactions,
    coalesce(sum(revenue), 0) AS revenue,
    coalesce(sum(interaction_count), 0)::bigint AS interactions,
    coalesce(sum(ticket_count), 0)::bigint AS tickets,
    avg(avg_satisfaction) AS avg_satisfaction,
    (
        SELECT region FROM {metrics}
        WHERE region IS NOT NULL
        GROUP BY region ORDER BY sum(revenue) DESC NULLS LAST, region LIMIT 1
    ) AS top_region
FROM {metrics}
