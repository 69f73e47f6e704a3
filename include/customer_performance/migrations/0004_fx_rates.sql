-- Exchange rates as reference data (fx.py): units of a currency per 1 EUR, one row per currency and
-- publication day, kept for every day ever seen. Seeded from the bundled ECB history, refreshed
-- from the rates source (connection fx_rates) by each run before it converts; a deployment may
-- also fill it itself (e.g. from its treasury) and leave fx_rates_conn_id empty.
CREATE TABLE {schema}.fx_rates (
    currency text NOT NULL CHECK (currency ~ '^[A-Z][A-Z][A-Z]$'),
    day date NOT NULL,
    units_per_eur numeric NOT NULL CHECK (units_per_eur > 0 AND units_per_eur < 'Infinity'),
    source text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (currency, day)
);
