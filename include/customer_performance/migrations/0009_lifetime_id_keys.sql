-- The lifetime state keeps, per row, the greatest transaction id key sold before its date
-- (extract/lifetime.py): a period sale can repeat an earlier id only if its key is not greater.
-- Snapshots built before have no keys and would hide such repeats, so they go: the next run
-- builds its snapshot again in full (the registry emptied, the partitions are pruned as orphans).
ALTER TABLE {schema}.customer_lifetime ADD COLUMN id_key_max text COLLATE "C";
TRUNCATE {schema}.customer_lifetime;
DELETE FROM {schema}.lifetime_snapshots;
