-- probable_duplicate_keys: the (customer, amount, currency, timestamp) staged under more than one
-- transaction_id, which the gate's probable-duplicate rule flags. Read from the staged table
-- itself, quarantined rows included.
-- In two steps (as repeated_transaction_ids): the keys' 64-bit hashes (hash_record_extended: each
-- column by its type's hash, so amounts equal as numbers, 1.5 and 1.50, hash alike, and a NULL
-- hashes to 0) are sorted and those seen more than once name the candidates; only the candidates'
-- rows are grouped by the key itself, in byte order, which keeps the answer exact.
WITH repeated_hashes AS (
    SELECT h
    FROM (
        SELECT hash_record_extended(row(customer_id, amount, currency COLLATE "C", order_date), 0) AS h
        FROM {flt_transactions}
        ORDER BY 1
    ) AS sorted
    GROUP BY h
    HAVING count(*) > 1
)
SELECT
    customer_id,
    amount,
    currency COLLATE "C" AS currency,
    order_date
FROM {flt_transactions}
WHERE hash_record_extended(row(customer_id, amount, currency COLLATE "C", order_date), 0) IN (SELECT h FROM repeated_hashes)
GROUP BY 1, 2, 3, 4
HAVING min(transaction_id COLLATE "C") <> max(transaction_id COLLATE "C")
