-- repeated_transaction_ids: the transaction_ids staged more than once (an update of a
-- transaction arrives as a second version of it). Read from the staged table itself, quarantined
-- versions included, so a superset of the ids repeated in int_transactions: few, and all that
-- int_transactions_latest has to look at.
-- In two steps, as ten million ids sharing long prefixes ('T0000001234') sort slowly and hash
-- into more groups than memory holds: the ids' 64-bit hashes are sorted and the hashes seen more
-- than once name the candidates; only the candidates' rows are then grouped by the id itself
-- (in byte order), which keeps the answer exact when two ids share a hash. A missing id hashes
-- to 0, so missing ids stay candidates and group together, as GROUP BY groups them.
WITH repeated_hashes AS (
    SELECT h
    FROM (
        SELECT coalesce(hashtextextended(transaction_id COLLATE "C", 0), 0) AS h
        FROM {flt_transactions}
        ORDER BY 1
    ) AS sorted
    GROUP BY h
    HAVING count(*) > 1
)
SELECT transaction_id COLLATE "C" AS transaction_id
FROM {flt_transactions}
WHERE coalesce(hashtextextended(transaction_id COLLATE "C", 0), 0) IN (SELECT h FROM repeated_hashes)
GROUP BY 1
HAVING count(*) > 1
