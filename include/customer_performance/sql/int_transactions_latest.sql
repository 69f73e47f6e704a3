-- int_transactions_latest: each transaction_id once in int_transactions, in its latest version
-- (by updated_at; ties by amount, status, currency and customer, all descending: the lifetime
-- summary at the source ranks versions alike, extract/lifetime.py VERSION_ORDER). Only the
-- versions of the repeated ids are taken out, ranked and the latest put back, so the ten million
-- single-version rows are never sorted. (A missing transaction_id, which the gate rejects, counts
-- as one id, as DISTINCT ON would count it.)
--   version_conflict   the versions disagree on what was sold: amount, currency, status or
--                      customer (the window shares the DISTINCT ON's sort)
WITH versions AS (
    DELETE FROM {int_transactions} AS t
    WHERE t.transaction_id IN (SELECT transaction_id FROM {repeated_transaction_ids}) OR t.transaction_id IS NULL
    RETURNING t.*
),
latest AS (
    INSERT INTO {int_transactions}
    SELECT DISTINCT ON (transaction_id)
        {columns},
        (min(amount) OVER w IS DISTINCT FROM max(amount) OVER w
         OR min(currency) OVER w IS DISTINCT FROM max(currency) OVER w
         OR min(status) OVER w IS DISTINCT FROM max(status) OVER w
         OR min(customer_id) OVER w IS DISTINCT FROM max(customer_id) OVER w) AS version_conflict,
        fx_rate, amount_reporting, discount_reporting, tax_reporting, revenue_amount, is_sale, is_refund, quarantine_reason
    FROM versions
    WINDOW w AS (
        PARTITION BY transaction_id ORDER BY updated_at DESC NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    )
    ORDER BY
        transaction_id, updated_at DESC NULLS LAST, amount DESC NULLS LAST, status COLLATE "C" DESC NULLS LAST,
        currency COLLATE "C" DESC NULLS LAST, customer_id DESC NULLS LAST
    RETURNING transaction_id, version_conflict AND quarantine_reason IS NULL AS counted_conflict
)
-- rows taken out, rows put back, and the conflicts that stay (an unconvertible row is quarantined
-- by calculate): their number and the first few ids
SELECT
    (SELECT count(*) FROM versions),
    (SELECT count(*) FROM latest),
    (SELECT count(*) FROM latest WHERE counted_conflict),
    (SELECT (array_agg(transaction_id ORDER BY transaction_id))[1:5] FROM latest WHERE counted_conflict)
