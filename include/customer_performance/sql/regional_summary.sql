-- regional_summary: the period's customers and revenue over the geographic hierarchy.
-- grouping_level says which grouping a row is: total, region, country or state.
SELECT
    CASE
        WHEN grouping(region) = 1 THEN 'total'
        WHEN grouping(country) = 1 THEN 'region'
        WHEN grouping(state) = 1 THEN 'country'
        ELSE 'state'
    END AS grouping_level,
    region,
    country,
    state,
    count(*) AS customers,
    count(*) FILTER (WHERE transaction_count > 0) AS active_customers,
    sum(transaction_count) AS transactions,
    sum(revenue) AS revenue,
    sum(interaction_count) AS interactions,
    avg(avg_satisfaction) AS avg_satisfaction
FROM {metrics}
GROUP BY GROUPING SETS ((), (region), (region, country), (region, country, state))
