-- probable_duplicate_keys: the (customer, amount, currency, timestamp) staged under more than one
-- transaction_id, which the gate's probable-duplicate rule flags. Read from the staged table
-- itself, quarantined rows included. Grouped sorted, in byte order: a hash aggregate of ten
-- million groups spills to disk and takes twice as long (see the gate's grouping rules).
SELECT
    customer_id,
    amount,
    currency,
    order_date
FROM (
    SELECT
        customer_id,
        amount,
        currency COLLATE "C" AS currency,
        order_date,
        transaction_id COLLATE "C" AS transaction_id
    FROM {flt_transactions}
    ORDER BY 1, 2, 3, 4
) AS sorted
GROUP BY customer_id, amount, currency, order_date
HAVING min(transaction_id) <> max(transaction_id)
