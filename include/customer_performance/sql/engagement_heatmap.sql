-- engagement_heatmap: the period's sessions of known customers by weekday (ISO, 1 = Monday) and
-- hour of day, both in UTC. A negative duration is a recording error: the session counts, its
-- minutes do not (as in int_customer_sessions).
SELECT
    extract(ISODOW FROM session_start AT TIME ZONE 'UTC')::integer AS weekday,
    extract(HOUR FROM session_start AT TIME ZONE 'UTC')::integer AS hour,
    count(*) AS sessions,
    coalesce(sum(duration_minutes) FILTER (WHERE duration_minutes >= 0), 0) AS session_minutes
FROM {vld_customer_activity}
WHERE session_start IS NOT NULL AND customer_id IN (SELECT customer_id FROM {customer_metrics})
GROUP BY 1, 2
