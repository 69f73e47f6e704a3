-- int_customer_sales: the period's purchases per customer, from int_transactions (deduplicated,
-- converted, quarantined rows removed). Money in the reporting currency; revenue is the sum of
-- int_transactions.revenue_amount, as in every model that reports revenue.
--   probable_duplicates  rows beyond the first with the same amount, currency and timestamp under
--                        another transaction_id: flagged, still counted in the sums
-- The DISTINCT count makes this a sorted aggregate: one sort by customer replaces a hash table
-- of a million sum states (which spills) and a second pass for the duplicates.
SELECT
    customer_id,
    count(*) FILTER (WHERE is_sale) AS transaction_count,
    -- the days with a sale (UTC): what the churn model counts as purchases, and the back-test too
    count(DISTINCT (order_date AT TIME ZONE 'UTC')::date) FILTER (WHERE is_sale) AS purchase_days,  -- noqa: CP03, LT01, LT06
    sum(revenue_amount) AS revenue,
    sum(amount_reporting) FILTER (WHERE is_sale) AS gross_revenue,
    sum(amount_reporting) FILTER (WHERE is_refund) AS refunds,
    sum(quantity) FILTER (WHERE is_sale) AS units,
    sum(discount_reporting) FILTER (WHERE is_sale) AS discounts,
    sum(tax_reporting) FILTER (WHERE is_sale) AS tax,
    min(order_date) FILTER (WHERE is_sale) AS first_purchase,
    max(order_date) FILTER (WHERE is_sale) AS last_purchase,
    count(*) - count(DISTINCT (amount, currency, order_date)) AS probable_duplicates  -- noqa: CP03, ST08, LT01, LT06
FROM {int_transactions}
GROUP BY customer_id
