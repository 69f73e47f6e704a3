-- int_customer_sessions: the period's product sessions per customer.
SELECT
    customer_id,
    count(*) AS login_count,
    -- a negative duration is a recording error: the session counts, its minutes do not
    coalesce(sum(duration_minutes) FILTER (WHERE duration_minutes >= 0), 0) AS session_minutes,
    count(DISTINCT feature) AS features_used,
    max(session_start) AS last_session
FROM {vld_customer_activity}
GROUP BY customer_id
