-- interaction_summary: the period's CRM interactions of known customers over grouping sets of
-- type, department, priority and resolution status. grouping_level names the columns grouped
-- ('total', 'interaction_type+department', ...); a NULL in a grouped column is a real NULL.
-- Satisfaction off the scale is left out of the average; resolution hours count for resolved and
-- escalated interactions (as in int_customer_crm).
SELECT
    coalesce(nullif(concat_ws('+',
        CASE WHEN grouping(interaction_type) = 0 THEN 'interaction_type' END,
        CASE WHEN grouping(department) = 0 THEN 'department' END,
        CASE WHEN grouping(priority) = 0 THEN 'priority' END,
        CASE WHEN grouping(resolution_status) = 0 THEN 'resolution_status' END
    ), ''), 'total') AS grouping_level,
    interaction_type, department, priority, resolution_status,
    count(*) AS interactions,
    count(DISTINCT customer_id) AS customers,
    round(avg(satisfaction_score)
        FILTER (WHERE satisfaction_score BETWEEN %(satisfaction_min)s AND %(satisfaction_max)s), 2) AS avg_satisfaction,
    round((count(*) FILTER (WHERE resolution_status = %(resolution_resolved)s))::numeric / nullif(count(*), 0), 4)
        AS resolved_share,
    round((count(*) FILTER (WHERE resolution_status = %(resolution_escalated)s))::numeric / nullif(count(*), 0), 4)
        AS escalated_share,
    round(avg(resolution_hours)
        FILTER (WHERE resolution_status IN (%(resolution_resolved)s, %(resolution_escalated)s)), 2)
        AS avg_resolution_hours
FROM {vld_interactions}
WHERE customer_id IN (SELECT customer_id FROM {customer_metrics})
GROUP BY GROUPING SETS (
    (), (interaction_type), (department), (resolution_status), (interaction_type, department),
    (department, priority), (department, resolution_status)
)
