-- backtest: the churn and health predictions published for earlier months, scored against what
-- the customers did since. For each horizon h (1 and 3 months), the predictions of month M - h
-- (as its month-close run published them) against the completed purchases of the months after it
-- through this month M: a customer "churned" when it made none. The months in between must be
-- published too, else the horizon is skipped; a month-to-date run scores nothing (its month is
-- not over). Only what the earlier runs published and this run observed is read: no prediction
-- sees a day after its own month. Beside the published churn probability, the same event is
-- ranked by the baselines a team would use without it (recency_auc: days since the last purchase,
-- more is riskier; health_auc: the health score, less is riskier), on the same customers.
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
        p.churn_method, p.days_since_last_purchase, p.health_score,
        -- the horizons are 1 and 3 (metrics.BACKTEST_HORIZONS_MONTHS, checked by aggregate.py)
        CASE c.horizon_months WHEN 1 THEN p.expected_purchases_1m WHEN 3 THEN p.expected_purchases_3m END
            AS expected_purchases
    FROM covered AS c
    INNER JOIN {published} AS p ON p.report_month = c.predicted_month
    WHERE p.churn_probability IS NOT NULL
),

between_months AS (
    -- the purchases of the published months after the prediction and before this one
    SELECT c.horizon_months, p.customer_id, sum(p.transaction_count) AS purchases, sum(p.purchase_days) AS days
    FROM covered AS c
    INNER JOIN {published} AS p ON p.report_month > c.predicted_month AND p.report_month < %(report_month)s::date
    GROUP BY c.horizon_months, p.customer_id
),

scored AS (
    SELECT
        pr.*,
        -- purchase days, the unit the model predicts in (transactions would count two on a day twice)
        coalesce(m.purchase_days, 0) + coalesce(b.days, 0) AS actual_purchases,
        coalesce(m.transaction_count, 0) + coalesce(b.purchases, 0) = 0 AS churned
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
        + (count(*) OVER (PARTITION BY s.horizon_months, s.health_score) - 1) / 2.0 AS health_rank
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
            ELSE 'overall'
        END AS measure,
        coalesce(lpad(decile::text, 2, '0'), health_band, 'all') AS bucket,
        count(*) AS customers,
        count(*) FILTER (WHERE churned) AS churned,
        CASE WHEN grouping(decile) = 1 AND grouping(health_band) = 1 THEN
            (sum(avg_rank) FILTER (WHERE churned)
             - count(*) FILTER (WHERE churned) * (count(*) FILTER (WHERE churned) + 1) / 2.0)
            / nullif(count(*) FILTER (WHERE churned) * count(*) FILTER (WHERE NOT churned), 0)
        END AS auc,
        CASE WHEN grouping(decile) = 1 AND grouping(health_band) = 1 THEN
            (sum(recency_rank) FILTER (WHERE churned AND days_since_last_purchase IS NOT NULL)
             - count(*) FILTER (WHERE churned AND days_since_last_purchase IS NOT NULL)
             * (count(*) FILTER (WHERE churned AND days_since_last_purchase IS NOT NULL) + 1) / 2.0)
            / nullif(count(*) FILTER (WHERE churned AND days_since_last_purchase IS NOT NULL)
                     * count(*) FILTER (WHERE NOT churned AND days_since_last_purchase IS NOT NULL), 0)
        END AS recency_auc,
        CASE WHEN grouping(decile) = 1 AND grouping(health_band) = 1 THEN
            (sum(health_rank) FILTER (WHERE churned AND health_score IS NOT NULL)
             - count(*) FILTER (WHERE churned AND health_score IS NOT NULL)
             * (count(*) FILTER (WHERE churned AND health_score IS NOT NULL) + 1) / 2.0)
            / nullif(count(*) FILTER (WHERE churned AND health_score IS NOT NULL)
                     * count(*) FILTER (WHERE NOT churned AND health_score IS NOT NULL), 0)
        END AS health_auc,
        avg(churn_probability) AS mean_churn_probability,
        sum(expected_purchases) AS expected_purchases,
        sum(actual_purchases) AS actual_purchases,
        max(churn_method) AS churn_method
    FROM ranked
    GROUP BY GROUPING SETS (
        (horizon_months, predicted_month),
        (horizon_months, predicted_month, decile),
        (horizon_months, predicted_month, health_band)
    )
    -- customers without a band count overall and in their decile, in no band
    HAVING grouping(health_band) = 1 OR health_band IS NOT NULL
)

SELECT
    a.predicted_month,
    a.horizon_months,
    a.measure,
    a.bucket,
    a.customers,
    a.churned,
    round(a.churned::numeric / nullif(a.customers, 0), 4) AS observed_churn_rate,
    round(a.mean_churn_probability, 4) AS mean_churn_probability,
    round(a.auc, 4) AS auc,
    CASE WHEN a.measure = 'health_band' THEN
        round((a.churned::numeric / nullif(a.customers, 0)) / nullif(g.churned::numeric / nullif(g.customers, 0), 0), 2)
    END AS lift_over_green,
    round(a.expected_purchases, 1) AS expected_purchases,
    a.actual_purchases,
    a.churn_method,
    round(a.recency_auc, 4) AS recency_auc,
    round(a.health_auc, 4) AS health_auc
FROM grouped AS a
LEFT JOIN grouped AS g ON g.horizon_months = a.horizon_months AND g.measure = 'health_band' AND g.bucket = 'green'
ORDER BY a.horizon_months, a.measure, a.bucket
