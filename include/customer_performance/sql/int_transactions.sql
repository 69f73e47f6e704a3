-- int_transactions: the period's transactions with amounts converted to the reporting currency
-- at the rate of the transaction's day (UTC), from the run's staged rates (fx.stage_rates: the
-- reporting currency at exactly 1, other currencies at the last rate published, if fresh). Every
-- staged version of a transaction_id arrives here; int_transactions_latest then keeps each
-- transaction_id once, in its latest version (a later update of the same id replaces the earlier
-- one). Read by customer_metrics, the trends and the regional summary, so this work happens once
-- per run. (Probable duplicates, a second row with the same customer, amount, currency and
-- timestamp under another transaction_id, are counted per customer by int_customer_sales.)
--   fx_rate            reporting-currency units per unit of the transaction's currency
--   amount_reporting   amount x fx_rate (the original amount and currency are kept beside it)
--   revenue_amount     what the transaction adds to revenue, the one definition every revenue
--                      figure sums: + amount_reporting for a sale (status completed), - for a
--                      refund (refunded), NULL otherwise (pending, cancelled: no revenue)
--   is_sale            status completed: the transactions, units, purchases and buyers count these
--   is_refund          status refunded: the refunds sum these
--   version_conflict   earlier versions of the transaction_id differed in amount, currency,
--                      status or customer (the latest version counts; calculate logs them)
--   quarantine_reason  why the row cannot be converted: a missing or unknown currency (the
--                      gate's warning rule already leaves those out: this is the backstop), or
--                      a known currency without a fresh rate, which fails calculate by name
--                      (fx.StaleRatesError); never counted as zero
SELECT
    l.*,
    FALSE AS version_conflict,  -- set by int_transactions_latest
    r.fx_rate,
    round(l.amount * r.fx_rate, 2) AS amount_reporting,
    round(coalesce(l.discount_applied, 0) * r.fx_rate, 2) AS discount_reporting,
    round(coalesce(l.tax_amount, 0) * r.fx_rate, 2) AS tax_reporting,
    CASE l.status WHEN %(status_sale)s THEN 1 WHEN %(status_refund)s THEN -1 END * round(l.amount * r.fx_rate, 2)
        AS revenue_amount,
    l.status = %(status_sale)s AS is_sale,
    l.status = %(status_refund)s AS is_refund,
    CASE
        WHEN r.fx_rate IS NOT NULL THEN NULL
        WHEN l.currency IS NULL THEN 'currency is missing'
        WHEN r.currency IS NULL THEN 'unknown currency ' || l.currency
        ELSE 'no fresh rate for ' || r.missing_rate || ' on ' || r.day
    END AS quarantine_reason
FROM {vld_transactions} AS l
LEFT JOIN {fx_rates} AS r ON r.currency = l.currency AND r.day = (l.order_date AT TIME ZONE 'UTC')::date
