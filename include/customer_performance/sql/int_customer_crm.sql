-- int_customer_crm: the period's CRM interactions per customer. Satisfaction off the scale is
-- left out of the average; resolution hours count for resolved and escalated interactions.
SELECT
    customer_id,
    count(*) AS interaction_count,
    count(*) FILTER (WHERE interaction_type = %(type_call)s) AS calls,
    count(*) FILTER (WHERE interaction_type = %(type_email)s) AS emails,
    count(*) FILTER (WHERE interaction_type = %(type_chat)s) AS chats,
    count(*) FILTER (WHERE interaction_type = %(type_ticket)s) AS ticket_count,
    avg(satisfaction_score)
        FILTER (WHERE satisfaction_score BETWEEN %(satisfaction_min)s AND %(satisfaction_max)s) AS avg_satisfaction,
    avg(resolution_hours) FILTER (WHERE resolution_status IN (%(resolution_resolved)s, %(resolution_escalated)s)) AS avg_resolution_hours,
    (count(*) FILTER (WHERE resolution_status = %(resolution_resolved)s))::numeric / count(*) AS resolution_rate,
    (count(*) FILTER (WHERE resolution_status = %(resolution_escalated)s))::numeric / count(*) AS escalation_rate
FROM {vld_interactions}
GROUP BY customer_id
