-- int_transactions: the period's transactions with amounts converted to the reporting currency
-- at the ECB rate of the transaction's day (UTC). Every staged version of a transaction_id
-- arrives here; int_transactions_latest then keeps each transaction_id once, in its latest
-- version (a later update of the same id replaces the earlier one). Read by customer_metrics,
-- the trends and the regional summary, so this work happens once per run. (Probable duplicates,
-- a second row with the same customer, amount, currency and timestamp under another
-- transaction_id, are counted per customer by int_customer_sales.)
--   fx_rate            reporting-currency units per unit of the transaction's currency
--   amount_reporting   amount x fx_rate (the original amount and currency are kept beside it)
--   version_conflict   earlier versions of the transaction_id differed in amount, currency,
--                      status or customer (the latest version counts; calculate logs them)
--   quarantine_reason  why the row cannot be converted (unknown currency, no rate): such rows
--                      are moved to quarantine_transactions by calculate, never counted as zero
WITH rates AS (
    -- the cross rate per currency and day, divided once per rate rather than once per row
    SELECT cur.currency, cur.day, rep.units_per_eur / cur.units_per_eur AS fx_rate
    FROM {rates} AS cur
    JOIN {rates} AS rep ON rep.currency = %(reporting_currency)s AND rep.day = cur.day
)
SELECT
    l.*,
    false AS version_conflict,  -- set by int_transactions_latest
    r.fx_rate,
    round(l.amount * r.fx_rate, 2) AS amount_reporting,
    round(coalesce(l.discount_applied, 0) * r.fx_rate, 2) AS discount_reporting,
    round(coalesce(l.tax_amount, 0) * r.fx_rate, 2) AS tax_reporting,
    CASE  -- the first branch settles nearly every row; the lookups below run only for failures
        WHEN r.fx_rate IS NOT NULL THEN NULL
        WHEN l.currency IS NULL THEN 'currency is missing'
        WHEN NOT EXISTS (SELECT 1 FROM {rates} AS k WHERE k.currency = l.currency)
            THEN 'unknown currency ' || l.currency
        WHEN NOT EXISTS (
            SELECT 1 FROM {rates} AS k WHERE k.currency = l.currency AND k.day = (l.order_date AT TIME ZONE 'UTC')::date
        )
            THEN 'no ECB rate for ' || l.currency || ' on ' || (l.order_date AT TIME ZONE 'UTC')::date
        ELSE 'no ECB rate for the reporting currency on ' || (l.order_date AT TIME ZONE 'UTC')::date
    END AS quarantine_reason
FROM {transactions} AS l
LEFT JOIN rates AS r ON r.currency = l.currency AND r.day = (l.order_date AT TIME ZONE 'UTC')::date
