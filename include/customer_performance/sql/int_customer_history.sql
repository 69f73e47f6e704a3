-- int_customer_history: one row per customer with purchases up to the period end: the
-- all-currency counts (first and last purchase, purchases, distinct purchase days) and the
-- lifetime revenue converted at the rate of the period's last day, or the last rate known however
-- old (a currency that has ceased, like HRK; an approximation: historic sales are not reconverted
-- at their own dates; the reporting currency at exactly 1). Amounts in currencies the rates table
-- has never held are left out of lifetime_revenue and counted in lifetime_unconverted_purchases.
SELECT
    a.customer_id,
    a.first_purchase,
    a.last_purchase,
    a.purchases,
    a.purchase_days,
    coalesce(m.revenue, 0) AS lifetime_revenue,
    coalesce(m.unconverted, 0) AS lifetime_unconverted_purchases
FROM {customer_history} AS a
LEFT JOIN (
    SELECT
        h.customer_id,
        sum(h.monetary * coalesce(r.fx_rate, r.last_fx_rate)) AS revenue,
        sum(h.purchases) FILTER (WHERE coalesce(r.fx_rate, r.last_fx_rate) IS NULL) AS unconverted
    FROM {customer_history} AS h
    LEFT JOIN {fx_rates} AS r ON r.currency = h.currency AND r.day = %(rate_day)s
    WHERE h.currency IS NOT NULL
    GROUP BY h.customer_id
) AS m USING (customer_id)
WHERE a.currency IS NULL
