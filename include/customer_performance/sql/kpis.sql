-- kpis: one row per run, the executive summary of the seed's customer health dashboard
-- (customer overview, support performance, satisfaction) plus revenue, segments and health.
-- Support figures are over the period's tickets (interaction_type 'ticket'). Security operations
-- are the interactions of the security department (incidents): critical ones by priority, false
-- positives by resolution status. NPS: of the satisfaction answers on the scale, the percentage of
-- promoters (9-10) minus that of detractors (up to 6). MRR is the month's revenue (this package
-- sells no subscriptions: the month's net revenue is what recurs), MRR at risk its revenue at risk.
WITH crm AS (
    -- one pass over the interactions of known customers
    SELECT
        count(*) FILTER (WHERE interaction_type = %(type_ticket)s) AS tickets,
        count(*) FILTER (WHERE interaction_type = %(type_ticket)s AND resolution_status = %(resolution_resolved)s) AS resolved,
        count(*) FILTER (WHERE interaction_type = %(type_ticket)s AND resolution_status = %(resolution_escalated)s) AS escalated,
        avg(resolution_hours)
            FILTER (WHERE interaction_type = %(type_ticket)s AND resolution_status IN (%(resolution_resolved)s, %(resolution_escalated)s))
            AS avg_resolution_hours,
        avg(satisfaction_score)
            FILTER (WHERE satisfaction_score BETWEEN %(satisfaction_min)s AND %(satisfaction_max)s) AS avg_satisfaction,
        count(*) FILTER (WHERE satisfaction_score BETWEEN %(satisfaction_min)s AND %(satisfaction_max)s) AS answers,
        count(*) FILTER (WHERE satisfaction_score BETWEEN 9 AND %(satisfaction_max)s) AS promoters,
        count(*) FILTER (WHERE satisfaction_score BETWEEN %(satisfaction_min)s AND 6) AS detractors,
        count(*) FILTER (WHERE department = %(department_security)s) AS incidents,
        count(*) FILTER (WHERE department = %(department_security)s AND priority = %(priority_critical)s) AS critical,
        count(*) FILTER (WHERE department = %(department_security)s AND resolution_status = %(resolution_false_positive)s)
            AS false_positives
    FROM {vld_interactions}
    WHERE customer_id IN (SELECT customer_id FROM {customer_metrics})
)
SELECT
    count(*) AS customers,
    count(*) FILTER (WHERE transaction_count > 0) AS active_customers,
    count(*) FILTER (WHERE segment = 'new') AS new_customers,
    count(*) FILTER (WHERE churn_probability >= %(high_risk_churn)s) AS high_risk_customers,
    round((count(*) FILTER (WHERE churn_probability >= %(high_risk_churn)s))::numeric
          / nullif(count(*), 0), 4) AS high_risk_share,
    coalesce(sum(transaction_count), 0)::bigint AS transactions,
    coalesce(sum(revenue), 0) AS revenue,
    coalesce(sum(refunds), 0) AS refunds,
    coalesce(sum(revenue_at_risk), 0) AS revenue_at_risk,
    round(coalesce(sum(revenue_at_risk), 0) / nullif(sum(greatest(revenue, 0)), 0), 4) AS revenue_at_risk_share,
    round(sum(revenue) FILTER (WHERE is_top_20pct) / nullif(sum(revenue) FILTER (WHERE revenue > 0), 0), 4)
        AS top20_revenue_share,
    coalesce(sum(clv_12m), 0) AS clv_12m,
    coalesce(sum(expected_loss), 0) AS expected_loss,
    round(coalesce(sum(expected_loss), 0) / nullif(sum(value_if_kept), 0), 4) AS expected_loss_share,
    count(*) FILTER (WHERE churn_list = 'save') AS save_list_customers,
    coalesce(sum(expected_loss) FILTER (WHERE churn_list = 'save'), 0) AS save_list_expected_loss,
    count(*) FILTER (WHERE churn_list = 'win-back') AS win_back_customers,
    coalesce(sum(value_if_kept) FILTER (WHERE churn_list = 'win-back'), 0) AS win_back_value,
    coalesce(sum(interaction_count), 0)::bigint AS interactions,
    (SELECT tickets FROM crm) AS tickets,
    (SELECT resolved FROM crm) AS tickets_resolved,
    round((SELECT resolved FROM crm)::numeric / nullif((SELECT tickets FROM crm), 0), 4) AS resolved_share,
    round((SELECT escalated FROM crm)::numeric / nullif((SELECT tickets FROM crm), 0), 4) AS escalated_share,
    round((SELECT avg_resolution_hours FROM crm), 2) AS avg_resolution_hours,
    round((SELECT avg_satisfaction FROM crm), 2) AS avg_satisfaction,
    (SELECT answers FROM crm) AS satisfaction_answers,
    (SELECT promoters FROM crm) AS promoters,
    (SELECT detractors FROM crm) AS detractors,
    round(100 * ((SELECT promoters FROM crm) - (SELECT detractors FROM crm))::numeric
          / nullif((SELECT answers FROM crm), 0), 1) AS nps,
    (SELECT incidents FROM crm) AS security_incidents,
    (SELECT critical FROM crm) AS critical_incidents,
    round((SELECT critical FROM crm)::numeric / nullif((SELECT incidents FROM crm), 0), 4) AS critical_incident_share,
    (SELECT false_positives FROM crm) AS false_positives,
    round((SELECT false_positives FROM crm)::numeric / nullif((SELECT incidents FROM crm), 0), 4) AS false_positive_share,
    coalesce(sum(revenue), 0) AS mrr,
    coalesce(sum(revenue_at_risk), 0) AS mrr_at_risk,
    round((count(*) FILTER (WHERE churn_probability < %(renewal_likely_churn)s))::numeric
          / nullif(count(churn_probability), 0), 4) AS renewal_likely_share,
    round(avg(engagement_score), 1) AS avg_engagement_score,
    round(avg(health_score), 1) AS avg_health_score,
    count(*) FILTER (WHERE health_band = 'green') AS health_green,
    count(*) FILTER (WHERE health_band = 'yellow') AS health_yellow,
    count(*) FILTER (WHERE health_band = 'red') AS health_red,
    count(*) FILTER (WHERE segment = 'VIP') AS segment_vip,
    count(*) FILTER (WHERE segment = 'regular') AS segment_regular,
    count(*) FILTER (WHERE segment = 'at-risk') AS segment_at_risk,
    (
        SELECT region FROM {customer_metrics} WHERE region IS NOT NULL
        GROUP BY region ORDER BY sum(revenue) DESC NULLS LAST, region LIMIT 1
    ) AS top_region
FROM {customer_metrics}
