-- customer_metrics: one row per customer known by the end of the period, with every metric of
-- the period. Weights and thresholds are bound parameters from metrics.py; the README's metrics
-- table explains each column and its edge cases. Money is in the reporting currency.
-- The per-customer aggregates of the period come from the run's int_customer_sales,
-- int_customer_sessions and int_customer_crm (computed side by side by calculate).
WITH source_present AS (
    -- a whole source empty for the period (an outage, not a quiet month) makes its parts NULL;
    -- asked of the per-customer tables, which have a row exactly when their source has one
    SELECT EXISTS (SELECT 1 FROM {int_customer_sessions}) AS activity, EXISTS (SELECT 1 FROM {int_customer_crm}) AS crm  -- noqa: CP03, LT01, LT06
),
base AS (
    SELECT
        c.customer_id, c.name, c.email, c.status, c.region, c.country, c.state,
        c.segment AS crm_segment, c.registration_date,
        c.registration_date >= %(period_start)s AS is_new,
        coalesce(s.transaction_count, 0) AS transaction_count,
        coalesce(s.purchase_days, 0) AS purchase_days,
        coalesce(s.revenue, 0) AS revenue,
        coalesce(s.gross_revenue, 0) AS gross_revenue,
        coalesce(s.refunds, 0) AS refunds,
        s.gross_revenue / nullif(s.transaction_count, 0) AS avg_order_value,
        coalesce(s.units, 0) AS units,
        coalesce(s.discounts, 0) AS discounts,
        coalesce(s.tax, 0) AS tax,
        s.first_purchase,
        s.last_purchase,
        coalesce(s.probable_duplicates, 0) AS probable_duplicates,
        h.first_purchase AS lifetime_first_purchase,
        coalesce(h.purchases, 0) AS lifetime_purchases,
        coalesce(h.lifetime_revenue, 0) AS lifetime_revenue,
        %(period_end)s::date - 1 - (h.last_purchase AT TIME ZONE 'UTC')::date AS days_since_last_purchase,
        CASE WHEN p.activity THEN coalesce(a.login_count, 0) END AS login_count,
        CASE WHEN p.activity THEN coalesce(a.session_minutes, 0) END AS session_minutes,
        CASE WHEN p.activity THEN coalesce(a.features_used, 0) END AS features_used,
        -- the latest sign of a login up to the period end; a last_login after it is ignored
        %(period_end)s::date - 1 - (greatest(
            a.last_session,
            CASE WHEN c.last_login < %(period_end)s::timestamptz THEN c.last_login END
        ) AT TIME ZONE 'UTC')::date AS days_since_last_login,
        CASE WHEN p.crm THEN coalesce(i.interaction_count, 0) END AS interaction_count,
        coalesce(i.calls, 0) AS calls,
        coalesce(i.emails, 0) AS emails,
        coalesce(i.chats, 0) AS chats,
        coalesce(i.ticket_count, 0) AS ticket_count,
        i.avg_satisfaction,
        i.avg_resolution_hours,
        i.resolution_rate,
        i.escalation_rate,
        ch.churn_probability,
        ch.churn_probability_btyd,
        ch.p_alive,
        ch.expected_purchases_12m,
        ch.expected_purchases_1m,
        ch.expected_purchases_3m,
        coalesce(ch.clv_12m, 0) AS clv_12m,
        coalesce(ch.value_if_kept, 0) AS value_if_kept,
        coalesce(ch.expected_loss, 0) AS expected_loss,
        ch.usual_gap_days,
        ch.churn_list,
        ch.list_rank,
        ch.churn_reason,
        ch.churn_method,
        prev.health_score AS previous_health_score
    FROM {int_customers} AS c  -- int_customers: each customer once, its latest version
    CROSS JOIN source_present AS p
    LEFT JOIN {int_customer_sales} AS s USING (customer_id)
    LEFT JOIN {int_customer_sessions} AS a USING (customer_id)
    LEFT JOIN {int_customer_crm} AS i USING (customer_id)
    LEFT JOIN {int_customer_history} AS h USING (customer_id)
    LEFT JOIN {churn} AS ch USING (customer_id)
    LEFT JOIN {previous} AS prev USING (customer_id)
),
-- Percentile ranks as percent_rank() over all customers (NULLs last) would give them, from the
-- distribution of each measure: (customers with a smaller value) / (customers - 1). A handful of
-- distinct values per measure instead of four sorts of a million rows.
n AS (SELECT count(*) AS customers, count(*) FILTER (WHERE revenue > 0) AS buyers FROM base),
logins AS (
    SELECT login_count AS v, sum(count(*)) OVER (ORDER BY login_count) - count(*) AS below
    FROM base GROUP BY login_count
),
features AS (
    SELECT features_used AS v, sum(count(*)) OVER (ORDER BY features_used) - count(*) AS below
    FROM base GROUP BY features_used
),
minutes AS (
    SELECT session_minutes AS v, sum(count(*)) OVER (ORDER BY session_minutes) - count(*) AS below
    FROM base GROUP BY session_minutes
),
contacts AS (
    SELECT interaction_count AS v, sum(count(*)) OVER (ORDER BY interaction_count) - count(*) AS below
    FROM base GROUP BY interaction_count
),
-- The top shares by revenue (ties broken by customer_id): the customer at the last rank inside
-- each share, found by a sort bounded to that many rows, rather than a rank for every customer.
-- Pareto: the top 20 percent of the customers who bought (revenue > 0), so that the share they hold
-- says something when most customers bought nothing; VIP: the top 5 percent of all customers.
-- No row when the share covers every customer.
cuts AS (
    SELECT s.share, c.revenue, c.customer_id
    FROM n
    CROSS JOIN (VALUES ('pareto', %(pareto_top_share)s, TRUE), ('vip', %(segment_vip_share)s, FALSE))
        AS s (share, fraction, of_buyers)
    CROSS JOIN LATERAL (
        SELECT revenue, customer_id FROM base
        ORDER BY revenue DESC, customer_id
        LIMIT 1 OFFSET greatest(ceil(s.fraction * CASE WHEN s.of_buyers THEN n.buyers ELSE n.customers END) - 1, 0)
    ) AS c
),
ranked AS (
    SELECT
        b.*,
        coalesce(l.below::float8 / nullif(n.customers - 1, 0), 0) AS pr_logins,
        coalesce(f.below::float8 / nullif(n.customers - 1, 0), 0) AS pr_features,
        coalesce(mi.below::float8 / nullif(n.customers - 1, 0), 0) AS pr_session_minutes,
        coalesce(c.below::float8 / nullif(n.customers - 1, 0), 0) AS pr_interactions,
        b.revenue > 0 AND (
            pc.customer_id IS NULL OR b.revenue > pc.revenue OR (b.revenue = pc.revenue AND b.customer_id <= pc.customer_id)
        ) AS is_top_20pct,
        b.revenue > 0 AND (
            vc.customer_id IS NULL OR b.revenue > vc.revenue OR (b.revenue = vc.revenue AND b.customer_id <= vc.customer_id)
        ) AS is_top_vip
    FROM base AS b
    CROSS JOIN n
    LEFT JOIN cuts AS pc ON pc.share = 'pareto'
    LEFT JOIN cuts AS vc ON vc.share = 'vip'
    LEFT JOIN logins AS l ON l.v = b.login_count
    LEFT JOIN features AS f ON f.v = b.features_used
    LEFT JOIN minutes AS mi ON mi.v = b.session_minutes
    LEFT JOIN contacts AS c ON c.v = b.interaction_count
),
scored AS (
    SELECT
        r.*,
        round((100 * (
            coalesce(%(engagement_w_logins)s * CASE WHEN login_count IS NOT NULL THEN pr_logins END, 0)
            + coalesce(%(engagement_w_features)s * CASE WHEN features_used IS NOT NULL THEN pr_features END, 0)
            + coalesce(%(engagement_w_session_minutes)s
                       * CASE WHEN session_minutes IS NOT NULL THEN pr_session_minutes END, 0)
            + coalesce(%(engagement_w_interactions)s * CASE WHEN interaction_count IS NOT NULL THEN pr_interactions END, 0)
        ) / nullif(
            CASE WHEN login_count IS NOT NULL THEN %(engagement_w_logins)s ELSE 0 END
            + CASE WHEN features_used IS NOT NULL THEN %(engagement_w_features)s ELSE 0 END
            + CASE WHEN session_minutes IS NOT NULL THEN %(engagement_w_session_minutes)s ELSE 0 END
            + CASE WHEN interaction_count IS NOT NULL THEN %(engagement_w_interactions)s ELSE 0 END,
            0
        ))::numeric, 1) AS engagement_score
    FROM ranked AS r
    -- OFFSET 0: computed once per row; inlined, each use of engagement_score would repeat it
    OFFSET 0  -- noqa: AM09
),
health AS (
    SELECT
        s.*,
        round(((
            coalesce(%(health_w_engagement)s * engagement_score, 0)
            + coalesce(%(health_w_retention)s * 100 * (1 - churn_probability), 0)
            + coalesce(%(health_w_satisfaction)s * 100 * (avg_satisfaction - %(satisfaction_min)s)
                       / (%(satisfaction_max)s - %(satisfaction_min)s), 0)
            + coalesce(%(health_w_support)s * 100 * (1 - escalation_rate), 0)
        ) / nullif(
            CASE WHEN engagement_score IS NOT NULL THEN %(health_w_engagement)s ELSE 0 END
            + CASE WHEN churn_probability IS NOT NULL THEN %(health_w_retention)s ELSE 0 END
            + CASE WHEN avg_satisfaction IS NOT NULL THEN %(health_w_satisfaction)s ELSE 0 END
            + CASE WHEN escalation_rate IS NOT NULL THEN %(health_w_support)s ELSE 0 END,
            0
        ))::numeric, 1) AS health_score
    FROM scored AS s
    -- likewise for health_score, used five times below
    OFFSET 0  -- noqa: AM09
)
SELECT
    customer_id, name, email, status, region, country, state, crm_segment, registration_date,
    transaction_count, purchase_days, revenue, gross_revenue, refunds, avg_order_value, units, discounts, tax,
    first_purchase, last_purchase, probable_duplicates, lifetime_first_purchase, lifetime_purchases,
    lifetime_revenue, days_since_last_purchase,
    login_count, session_minutes, features_used, days_since_last_login,
    interaction_count, calls, emails, chats, ticket_count, avg_satisfaction, avg_resolution_hours,
    resolution_rate, escalation_rate,
    engagement_score,
    CASE
        WHEN engagement_score >= %(activity_high_engagement)s AND transaction_count >= %(activity_high_min_purchases)s
            THEN 'high'
        WHEN coalesce(engagement_score, 0) < %(activity_low_engagement)s AND transaction_count = 0 THEN 'low'
        ELSE 'medium'
    END AS activity_level,
    churn_probability, churn_method, churn_probability_btyd, p_alive,
    expected_purchases_12m, expected_purchases_1m, expected_purchases_3m, clv_12m, value_if_kept,
    CASE
        WHEN is_new THEN 'new'
        WHEN lifetime_purchases > 0 AND churn_probability >= %(high_risk_churn)s THEN 'at-risk'
        WHEN is_top_vip THEN 'VIP'
        ELSE 'regular'
    END AS segment,
    health_score,
    CASE
        WHEN health_score >= %(health_green)s THEN 'green'
        WHEN health_score >= %(health_yellow)s THEN 'yellow'
        WHEN health_score IS NOT NULL THEN 'red'
    END AS health_band,
    previous_health_score,
    CASE
        WHEN previous_health_score IS NULL OR health_score IS NULL THEN NULL
        WHEN health_score - previous_health_score >= %(health_trend_delta)s THEN 'up'
        WHEN previous_health_score - health_score >= %(health_trend_delta)s THEN 'down'
        ELSE 'flat'
    END AS health_trend,
    round(greatest(revenue, 0) * coalesce(churn_probability, 0), 2) AS revenue_at_risk,
    -- value if kept x churn probability (churn_model.lists), the save and win-back lists and why
    expected_loss, usual_gap_days, churn_list, list_rank, churn_reason,
    -- the part of the health score that costs it the most points (weight x shortfall from 100;
    -- ties in the order engagement, retention, satisfaction, support), in words; NULL when no
    -- part falls short
    CASE WHEN w.worst > 0 THEN CASE w.worst
        WHEN w.engagement THEN CASE
            WHEN days_since_last_login IS NULL THEN 'no login on record'
            WHEN days_since_last_login >= 14 THEN format('no login in %%s days', days_since_last_login)
            ELSE format('engagement %%s/100', round(engagement_score))
        END
        -- the churn model's own reason (churn_model.py), never the score itself
        WHEN w.retention THEN churn_reason
        WHEN w.satisfaction THEN format('satisfaction %%s/10', round(avg_satisfaction, 1))
        WHEN w.support THEN format(
            '%%s of %%s contacts escalated', round(escalation_rate * interaction_count), interaction_count
        )
    END END AS risk_driver,
    is_top_20pct
FROM health
CROSS JOIN LATERAL (
    SELECT
        lost.*,
        greatest(lost.engagement, lost.retention, lost.satisfaction, lost.support) AS worst
    FROM (
        SELECT
            %(health_w_engagement)s * (100 - engagement_score) AS engagement,
            %(health_w_retention)s * 100 * churn_probability AS retention,
            %(health_w_satisfaction)s * 100 * (%(satisfaction_max)s - avg_satisfaction)
            / (%(satisfaction_max)s - %(satisfaction_min)s) AS satisfaction,
            %(health_w_support)s * 100 * escalation_rate AS support
    ) AS lost
) AS w
