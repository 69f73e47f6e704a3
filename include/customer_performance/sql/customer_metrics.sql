-- customer_metrics: one row per customer known by the end of the period, with the period's
-- purchases, sessions and CRM interactions. Inputs are the filtered staged tables of this run.
-- Walking-skeleton metrics; amounts are in the transaction's own currency until conversion lands.
SELECT
    c.customer_id,
    c.name,
    c.email,
    c.status,
    c.region,
    c.country,
    c.state,
    c.segment AS crm_segment,
    c.registration_date,
    coalesce(s.transaction_count, 0) AS transaction_count,
    coalesce(s.gross_revenue, 0) - coalesce(s.refunds, 0) AS revenue,
    coalesce(s.refunds, 0) AS refunds,
    s.gross_revenue / nullif(s.transaction_count, 0) AS avg_order_value,
    coalesce(s.units, 0) AS units,
    s.first_purchase,
    s.last_purchase,
    coalesce(a.login_count, 0) AS login_count,
    coalesce(a.session_minutes, 0) AS session_minutes,
    coalesce(a.features_used, 0) AS features_used,
    coalesce(i.interaction_count, 0) AS interaction_count,
    coalesce(i.ticket_count, 0) AS ticket_count,
    i.avg_satisfaction
FROM (
    -- a customer appearing twice in the source keeps its latest version
    SELECT DISTINCT ON (customer_id) *
    FROM {customers}
    WHERE customer_id IS NOT NULL
    ORDER BY customer_id, updated_at DESC NULLS LAST
) AS c
LEFT JOIN (
    SELECT
        customer_id,
        count(*) FILTER (WHERE status = 'completed') AS transaction_count,
        sum(amount) FILTER (WHERE status = 'completed') AS gross_revenue,
        sum(amount) FILTER (WHERE status = 'refunded') AS refunds,
        sum(quantity) FILTER (WHERE status = 'completed') AS units,
        min(order_date) FILTER (WHERE status = 'completed') AS first_purchase,
        max(order_date) FILTER (WHERE status = 'completed') AS last_purchase
    FROM {transactions}  -- int_transactions: each transaction_id once, its latest version
    GROUP BY customer_id
) AS s USING (customer_id)
LEFT JOIN (
    SELECT
        customer_id,
        count(*) AS login_count,
        sum(duration_minutes) AS session_minutes,
        count(DISTINCT feature) AS features_used
    FROM {activity}
    GROUP BY customer_id
) AS a USING (customer_id)
LEFT JOIN (
    SELECT
        customer_id,
        count(*) AS interaction_count,
        count(*) FILTER (WHERE interaction_type = 'ticket') AS ticket_count,
        avg(satisfaction_score) AS avg_satisfaction
    FROM {interactions}
    GROUP BY customer_id
) AS i USING (customer_id)
