-- int_customer_sales: the period's purchases per customer, from int_transactions (deduplicated,
-- converted, quarantined rows removed). Money in the reporting currency.
--   probable_duplicates  rows beyond the first with the same amount, currency and timestamp under
--                        another transaction_id: flagged, still counted in the sums
-- The DISTINCT count makes this a sorted aggregate: one sort by customer replaces a hash table
-- of a million sum states (which spills) and a second pass for the duplicates.
SELECT
    customer_id,
    count(*) FILTER (WHERE status = 'completed') AS transaction_count,
    sum(amount_reporting) FILTER (WHERE status = 'completed') AS gross_revenue,
    sum(amount_reporting) FILTER (WHERE status = 'refunded') AS refunds,
    sum(quantity) FILTER (WHERE status = 'completed') AS units,
    sum(discount_reporting) FILTER (WHERE status = 'completed') AS discounts,
    sum(tax_reporting) FILTER (WHERE status = 'completed') AS tax,
    min(order_date) FILTER (WHERE status = 'completed') AS first_purchase,
    max(order_date) FILTER (WHERE status = 'completed') AS last_purchase,
    count(*) - count(DISTINCT (amount, currency, order_date)) AS probable_duplicates  -- noqa: CP03, ST08, LT01, LT06
FROM {transactions}
GROUP BY customer_id
