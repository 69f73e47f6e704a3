-- int_customer_crm: the period's CRM interactions per customer. Satisfaction off the scale is
-- left out of the average; resolution hours count for resolved and escalated interactions.
SELECT
    customer_id,
    count(*) AS interaction_count,
    count(*) FILTER (WHERE interaction_type = 'call') AS calls,
    count(*) FILTER (WHERE interaction_type = 'email') AS emails,
    count(*) FILTER (WHERE interaction_type = 'chat') AS chats,
    count(*) FILTER (WHERE interaction_type = 'ticket') AS ticket_count,
    avg(satisfaction_score)
        FILTER (WHERE satisfaction_score BETWEEN %(satisfaction_min)s AND %(satisfaction_max)s) AS avg_satisfaction,
    avg(resolution_hours) FILTER (WHERE resolution_status IN ('resolved', 'escalated')) AS avg_resolution_hours,
    (count(*) FILTER (WHERE resolution_status = 'resolved'))::numeric / count(*) AS resolution_rate,
    (count(*) FILTER (WHERE resolution_status = 'escalated'))::numeric / count(*) AS escalation_rate
FROM {vld_interactions}
GROUP BY customer_id
