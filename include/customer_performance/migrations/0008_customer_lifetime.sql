-- The lifetime purchase state (extract/lifetime.py): per sales source, snapshots of the lifetime
-- summary up to a month start (as_of), each one partition of customer_lifetime. A nightly run
-- reads the snapshot at its period start, the period's rows and the customers changed since the
-- snapshot's watermark, instead of every purchase of the years behind it.
--   source     the sales database the snapshot summarises (host:port/database)
--   as_of      the snapshot covers the completed sales with order_date < as_of
--   watermark  the source's updated_at when the snapshot was read: a row updated after it (less
--              the look-back) makes its customer recomputed from the source
--   method     'full' (one GROUP BY over the source) or 'incremental' (the snapshot before, the
--              period and the changed customers)
CREATE TABLE {schema}.lifetime_snapshots (
    snapshot_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    as_of date NOT NULL,
    watermark timestamp NOT NULL,
    method text NOT NULL CHECK (method IN ('full', 'incremental')),
    customers bigint NOT NULL,
    rows bigint NOT NULL,
    built_at timestamptz NOT NULL DEFAULT now(),
    run_id text,
    UNIQUE (source, as_of)
);

-- One row per (customer, currency) and one per customer with currency NULL (all currencies), as
-- the staged customer_history.
CREATE TABLE {schema}.customer_lifetime (
    snapshot_id bigint NOT NULL,
    customer_id bigint NOT NULL,
    currency text,
    first_purchase timestamptz,
    last_purchase timestamptz,
    purchases bigint,
    purchase_days bigint,
    monetary numeric
) PARTITION BY LIST (snapshot_id);
