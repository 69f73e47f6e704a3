-- int_customer_history: one row per customer with purchases up to the period end: the
-- all-currency counts (first and last purchase, purchases, distinct purchase days) and the
-- lifetime revenue converted at the last rate of the period (an approximation: historic sales are
-- not reconverted at their own dates). Amounts in currencies without a rate are left out of
-- lifetime_revenue and counted in lifetime_unconverted_purchases.
SELECT
    a.customer_id,
    a.first_purchase,
    a.last_purchase,
    a.purchases,
    a.purchase_days,
    coalesce(m.revenue, 0) AS lifetime_revenue,
    coalesce(m.unconverted, 0) AS lifetime_unconverted_purchases
FROM {history} AS a
LEFT JOIN (
    SELECT
        h.customer_id,
        sum(h.monetary * rep.units_per_eur / cur.units_per_eur) AS revenue,
        sum(h.purchases) FILTER (WHERE cur.currency IS NULL OR rep.currency IS NULL) AS unconverted
    FROM {history} AS h
    LEFT JOIN {rates} AS cur ON cur.currency = h.currency AND cur.day = %(rate_day)s
    LEFT JOIN {rates} AS rep ON rep.currency = %(reporting_currency)s AND rep.day = %(rate_day)s
    WHERE h.currency IS NOT NULL
    GROUP BY h.customer_id
) AS m USING (customer_id)
WHERE a.currency IS NULL
