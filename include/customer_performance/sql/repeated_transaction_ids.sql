-- repeated_transaction_ids: the transaction_ids staged more than once (an update of a
-- transaction arrives as a second version of it). Read from the staged table itself, quarantined
-- versions included, so a superset of the ids repeated in int_transactions: few, and all that
-- int_transactions_latest has to look at. Grouped sorted, in byte order: a hash aggregate of ten
-- million ids spills to disk and takes twice as long (see the gate's grouping rules).
SELECT transaction_id
FROM (SELECT transaction_id COLLATE "C" AS transaction_id FROM {flt_transactions} ORDER BY 1) AS sorted
GROUP BY transaction_id
HAVING count(*) > 1
