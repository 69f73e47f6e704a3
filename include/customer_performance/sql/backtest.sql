-- backtest: the churn and health predictions published for earlier months, scored against what
-- the customers did since. For each horizon h (1 and 3 months), the predictions of month M - h
-- (as its month-close run published them) against the completed purchases of the months after it
-- through this month M. The months in between must be published too, else the horizon is skipped;
-- a month-to-date run scores nothing (its month is not over). Only what the earlier runs published
-- and this run observed is read: no prediction sees a day after its own month.
-- The churn probability is scored at the horizon that holds its event (%(event_horizon)s months,
-- aggregate.event_horizon), against exactly that event: no completed purchase in the
-- %(no_purchase_days)s days after the predicted month (each month's first purchase says whether
-- one fell inside; the event is observed through this month's end, which for predictions of a
-- January in a common year is 89 days). There, beside it, the same event is ranked by the
-- baselines a team would use without it (recency_auc: days since the last purchase, more is
-- riskier; health_auc: the health score, less is riskier; btyd_auc: the BTYD probability of the
-- same event) on the same customers, on all of them and on those active at the prediction
-- (churn_model.still_active: active_auc, active_recency_auc), with the save list's precision (its
-- share without a purchase). At the other horizon "churned" is no purchase in its months, for the
-- health bands and the expected purchases only. The expected purchases are also compared with those
-- made per frequency group (lifetime purchases at the prediction: 1, 2-3, 4-9, 10+), where a bias
-- of the BTYD model (light buyers, seasons) shows, and the CLV's part over the horizon (expected
-- purchases x the revenue per purchase day the CLV uses, clv_12m / expected_purchases_12m) with
-- the revenue made: the CLV's own 12 months are never scored, its rate and its value are.
WITH horizons AS (
    SELECT
        h AS horizon_months,
        (%(report_month)s::date - make_interval(months => h))::date AS predicted_month
    FROM unnest(%(backtest_horizons)s::int[]) AS h
    WHERE %(complete_month)s
),

covered AS (
    -- a horizon is scored when its predicted month and every month after it are published
    SELECT hz.horizon_months, hz.predicted_month
    FROM horizons AS hz
    LEFT JOIN (SELECT DISTINCT pub.report_month FROM {published} AS pub) AS p
        ON p.report_month >= hz.predicted_month AND p.report_month < %(report_month)s::date
    GROUP BY hz.horizon_months, hz.predicted_month
    HAVING count(p.report_month) = hz.horizon_months
),

predicted AS (
    SELECT
        c.horizon_months, c.predicted_month, p.customer_id, p.churn_probability, p.health_band,
        p.churn_method, p.days_since_last_purchase, p.health_score, p.churn_probability_btyd,
        -- the expected purchases are checked per frequency group too (lifetime purchases then)
        CASE
            WHEN p.lifetime_purchases <= 1 THEN '1'
            WHEN p.lifetime_purchases <= 3 THEN '2-3'
            WHEN p.lifetime_purchases <= 9 THEN '4-9'
            ELSE '10+'
        END AS frequency_group,
        coalesce(p.days_since_last_purchase
            <= greatest(%(active_gaps)s * coalesce(p.usual_gap_days, %(fallback_gap_days)s), %(active_days)s), FALSE)
        AND coalesce(p.days_since_last_login <= %(active_login_days)s, TRUE) AS active,
        p.churn_list = 'save' AS on_save_list,
        (c.predicted_month + interval '1 month') + make_interval(days => %(no_purchase_days)s) AS event_end,
        -- the horizons are 1 and 3 (metrics.BACKTEST_HORIZONS_MONTHS, checked by aggregate.py)
        CASE c.horizon_months WHEN 1 THEN p.expected_purchases_1m WHEN 3 THEN p.expected_purchases_3m END
            AS expected_purchases,
        CASE c.horizon_months WHEN 1 THEN p.expected_purchases_1m WHEN 3 THEN p.expected_purchases_3m END
        * coalesce(p.clv_12m / nullif(p.expected_purchases_12m, 0), 0) AS expected_revenue
    FROM covered AS c
    INNER JOIN {published} AS p ON p.report_month = c.predicted_month
    WHERE p.churn_probability IS NOT NULL
),

between_months AS (
    -- the purchases of the published months after the prediction and before this one
    SELECT
        c.horizon_months, p.customer_id, sum(p.transaction_count) AS purchases, sum(p.purchase_days) AS days,
        sum(p.revenue) AS revenue,
        bool_or(p.first_purchase < (c.predicted_month + interval '1 month') + make_interval(days => %(no_purchase_days)s))
            AS bought_in_event
    FROM covered AS c
    INNER JOIN {published} AS p ON p.report_month > c.predicted_month AND p.report_month < %(report_month)s::date
    GROUP BY c.horizon_months, p.customer_id
),

scored AS (
    SELECT
        pr.*,
        -- purchase days, the unit the model predicts in (transactions would count two on a day twice)
        coalesce(m.purchase_days, 0) + coalesce(b.days, 0) AS actual_purchases,
        coalesce(m.revenue, 0) + coalesce(b.revenue, 0) AS actual_revenue,
        CASE
            WHEN pr.horizon_months = %(event_horizon)s
                THEN NOT (coalesce(b.bought_in_event, FALSE) OR coalesce(m.first_purchase < pr.event_end, FALSE))
            ELSE coalesce(m.transaction_count, 0) + coalesce(b.purchases, 0) = 0
        END AS churned
    FROM predicted AS pr
    LEFT JOIN {customer_metrics} AS m ON m.customer_id = pr.customer_id
    LEFT JOIN between_months AS b ON b.horizon_months = pr.horizon_months AND b.customer_id = pr.customer_id
),

ranked AS (
    -- ROC AUC as the Mann-Whitney statistic: average ranks of the churned customers' predictions
    SELECT
        s.*,
        rank() OVER (PARTITION BY s.horizon_months ORDER BY s.churn_probability)
        + (count(*) OVER (PARTITION BY s.horizon_months, s.churn_probability) - 1) / 2.0 AS avg_rank,
        ntile(10) OVER (PARTITION BY s.horizon_months ORDER BY s.churn_probability, s.customer_id) AS decile,
        -- the baselines' ranks, among the customers that have the figure
        rank() OVER (
            PARTITION BY s.horizon_months, s.days_since_last_purchase IS NULL ORDER BY s.days_since_last_purchase
        ) + (count(*) OVER (PARTITION BY s.horizon_months, s.days_since_last_purchase) - 1) / 2.0 AS recency_rank,
        rank() OVER (PARTITION BY s.horizon_months, s.health_score IS NULL ORDER BY s.health_score DESC)
        + (count(*) OVER (PARTITION BY s.horizon_months, s.health_score) - 1) / 2.0 AS health_rank,
        rank() OVER (
            PARTITION BY s.horizon_months, s.churn_probability_btyd IS NULL ORDER BY s.churn_probability_btyd
        ) + (count(*) OVER (PARTITION BY s.horizon_months, s.churn_probability_btyd) - 1) / 2.0 AS btyd_rank,
        -- among the customers active at the prediction (ranks within them)
        rank() OVER (PARTITION BY s.horizon_months, s.active ORDER BY s.churn_probability)
        + (count(*) OVER (PARTITION BY s.horizon_months, s.active, s.churn_probability) - 1) / 2.0 AS active_rank,
        rank() OVER (
            PARTITION BY s.horizon_months, s.active, s.days_since_last_purchase IS NULL
            ORDER BY s.days_since_last_purchase
        ) + (count(*) OVER (PARTITION BY s.horizon_months, s.active, s.days_since_last_purchase) - 1) / 2.0
            AS active_recency_rank
    FROM scored AS s
),

grouped AS (
    -- one pass, three groupings: the horizon overall (with the AUC), its deciles of predicted
    -- churn (the calibration table) and its health bands
    SELECT
        horizon_months,
        predicted_month,
        CASE
            WHEN grouping(decile) = 0 THEN 'churn_decile'
            WHEN grouping(health_band) = 0 THEN 'health_band'
            WHEN grouping(frequency_group) = 0 THEN 'frequency_group'
            ELSE 'overall'
        END AS measure,
        coalesce(lpad(decile::text, 2, '0'), health_band, frequency_group, 'all') AS bucket,
        count(*) AS customers,
        count(*) FILTER (WHERE churned) AS churned,
        CASE WHEN grouping(decile) = 1 AND grouping(health_band) = 1 AND grouping(frequency_group) = 1 THEN
            (sum(avg_rank) FILTER (WHERE churned)
             - count(*) FILTER (WHERE churned) * (count(*) FILTER (WHERE churned) + 1) / 2.0)
            / nullif(count(*) FILTER (WHERE churned) * count(*) FILTER (WHERE NOT churned), 0)
        END AS auc,
        CASE WHEN grouping(decile) = 1 AND grouping(health_band) = 1 AND grouping(frequency_group) = 1 THEN
            (sum(recency_rank) FILTER (WHERE churned AND days_since_last_purchase IS NOT NULL)
             - count(*) FILTER (WHERE churned AND days_since_last_purchase IS NOT NULL)
             * (count(*) FILTER (WHERE churned AND days_since_last_purchase IS NOT NULL) + 1) / 2.0)
            / nullif(count(*) FILTER (WHERE churned AND days_since_last_purchase IS NOT NULL)
                     * count(*) FILTER (WHERE NOT churned AND days_since_last_purchase IS NOT NULL), 0)
        END AS recency_auc,
        CASE WHEN grouping(decile) = 1 AND grouping(health_band) = 1 AND grouping(frequency_group) = 1 THEN
            (sum(health_rank) FILTER (WHERE churned AND health_score IS NOT NULL)
             - count(*) FILTER (WHERE churned AND health_score IS NOT NULL)
             * (count(*) FILTER (WHERE churned AND health_score IS NOT NULL) + 1) / 2.0)
            / nullif(count(*) FILTER (WHERE churned AND health_score IS NOT NULL)
                     * count(*) FILTER (WHERE NOT churned AND health_score IS NOT NULL), 0)
        END AS health_auc,
        CASE WHEN grouping(decile) = 1 AND grouping(health_band) = 1 AND grouping(frequency_group) = 1 THEN
            (sum(btyd_rank) FILTER (WHERE churned AND churn_probability_btyd IS NOT NULL)
             - count(*) FILTER (WHERE churned AND churn_probability_btyd IS NOT NULL)
             * (count(*) FILTER (WHERE churned AND churn_probability_btyd IS NOT NULL) + 1) / 2.0)
            / nullif(count(*) FILTER (WHERE churned AND churn_probability_btyd IS NOT NULL)
                     * count(*) FILTER (WHERE NOT churned AND churn_probability_btyd IS NOT NULL), 0)
        END AS btyd_auc,
        CASE WHEN grouping(decile) = 1 AND grouping(health_band) = 1 AND grouping(frequency_group) = 1 THEN
            (sum(active_rank) FILTER (WHERE churned AND active)
             - count(*) FILTER (WHERE churned AND active) * (count(*) FILTER (WHERE churned AND active) + 1) / 2.0)
            / nullif(count(*) FILTER (WHERE churned AND active) * count(*) FILTER (WHERE NOT churned AND active), 0)
        END AS active_auc,
        CASE WHEN grouping(decile) = 1 AND grouping(health_band) = 1 AND grouping(frequency_group) = 1 THEN
            (sum(active_recency_rank) FILTER (WHERE churned AND active AND days_since_last_purchase IS NOT NULL)
             - count(*) FILTER (WHERE churned AND active AND days_since_last_purchase IS NOT NULL)
             * (count(*) FILTER (WHERE churned AND active AND days_since_last_purchase IS NOT NULL) + 1) / 2.0)
            / nullif(count(*) FILTER (WHERE churned AND active AND days_since_last_purchase IS NOT NULL)
                     * count(*) FILTER (WHERE NOT churned AND active AND days_since_last_purchase IS NOT NULL), 0)
        END AS active_recency_auc,
        count(*) FILTER (WHERE on_save_list) AS save_list,
        count(*) FILTER (WHERE on_save_list AND churned) AS save_list_churned,
        avg(churn_probability) AS mean_churn_probability,
        sum(expected_purchases) AS expected_purchases,
        sum(actual_purchases) AS actual_purchases,
        sum(expected_revenue) AS expected_revenue,
        sum(actual_revenue) AS actual_revenue,
        max(churn_method) AS churn_method
    FROM ranked
    GROUP BY GROUPING SETS (
        (horizon_months, predicted_month),
        (horizon_months, predicted_month, decile),
        (horizon_months, predicted_month, health_band),
        (horizon_months, predicted_month, frequency_group)
    )
    -- customers without a band count overall and in their decile, in no band
    HAVING grouping(health_band) = 1 OR health_band IS NOT NULL
)

-- the churn probability's figures at its event's horizon only
SELECT
    a.predicted_month,
    a.horizon_months,
    a.measure,
    a.bucket,
    a.customers,
    a.churned,
    round(a.churned::numeric / nullif(a.customers, 0), 4) AS observed_churn_rate,
    CASE WHEN a.horizon_months = %(event_horizon)s THEN round(a.mean_churn_probability, 4) END
        AS mean_churn_probability,
    CASE WHEN a.horizon_months = %(event_horizon)s THEN round(a.auc, 4) END AS auc,
    CASE WHEN a.measure = 'health_band' THEN
        round((a.churned::numeric / nullif(a.customers, 0)) / nullif(g.churned::numeric / nullif(g.customers, 0), 0), 2)
    END AS lift_over_green,
    round(a.expected_purchases, 1) AS expected_purchases,
    a.actual_purchases,
    round(a.expected_revenue, 2) AS expected_revenue,
    a.actual_revenue,
    a.churn_method,
    CASE WHEN a.horizon_months = %(event_horizon)s THEN round(a.recency_auc, 4) END AS recency_auc,
    CASE WHEN a.horizon_months = %(event_horizon)s THEN round(a.health_auc, 4) END AS health_auc,
    CASE WHEN a.horizon_months = %(event_horizon)s THEN round(a.btyd_auc, 4) END AS btyd_auc,
    CASE WHEN a.horizon_months = %(event_horizon)s THEN round(a.active_auc, 4) END AS active_auc,
    CASE WHEN a.horizon_months = %(event_horizon)s THEN round(a.active_recency_auc, 4) END AS active_recency_auc,
    CASE WHEN a.horizon_months = %(event_horizon)s AND a.measure = 'overall' THEN a.save_list END AS save_list,
    CASE WHEN a.horizon_months = %(event_horizon)s AND a.measure = 'overall' THEN
        round(a.save_list_churned::numeric / nullif(a.save_list, 0), 4)
    END AS save_precision
FROM grouped AS a
LEFT JOIN grouped AS g ON g.horizon_months = a.horizon_months AND g.measure = 'health_band' AND g.bucket = 'green'
-- the calibration table of the churn probability: at its event's horizon
WHERE a.measure <> 'churn_decile' OR a.horizon_months = %(event_horizon)s
ORDER BY a.horizon_months, a.measure, a.bucket
