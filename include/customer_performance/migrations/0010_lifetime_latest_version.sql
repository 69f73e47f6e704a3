-- The lifetime summary counts a sale as the period does: the latest version of each transaction
-- id, a refund as minus its amount, and builds the all-currency row without the source's ROLLUP
-- (extract/lifetime.py, summary_query and totals_sql). Snapshots built before summed every
-- completed version and ignored refunds, so they go: the next run builds its snapshot again in
-- full (the registry emptied, the partitions are pruned as orphans).
TRUNCATE {schema}.customer_lifetime;
DELETE FROM {schema}.lifetime_snapshots;
