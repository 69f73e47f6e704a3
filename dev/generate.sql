-- The synthetic sources, generated inside PostgreSQL (schema gen of the customer database) so
-- that millions of rows take seconds. Deterministic: setseed() plus serial plans. Parameters are
-- bound by dev/generate.py. Every defect is drawn from its own random() at the rate given in
-- DEFECT_RATES and recorded in a flag column, so what was planted can be counted exactly.
SET max_parallel_workers_per_gather = 0;
SELECT setseed(%(seed)s);
DROP SCHEMA IF EXISTS gen CASCADE;
CREATE SCHEMA gen;

-- customers: draws first, then the row built from them ---------------------------------------
CREATE TABLE gen.draw AS
SELECT id, random() AS r_name1, random() AS r_name2, random() AS r_new, random() AS r_reg,
       random() AS r_status, random() AS r_email, random() AS r_geo, random() AS r_geo_null,
       random() AS r_login, random() AS r_future, random() AS r_seg, random() AS r_hour,
       random() AS r_upd, random() AS r_dup, random() AS r_weight
FROM generate_series(1, %(customers)s) AS id;

CREATE TABLE gen.customers AS
SELECT d.id AS customer_id,
       f.first || ' ' || l.last AS name,
       CASE WHEN d.r_email < %(null_email)s THEN NULL
            WHEN d.r_email < %(null_email)s + %(bad_email)s THEN
                (ARRAY[lower(f.first || '.' || l.last || d.id || '@'),
                       lower(f.first || d.id || '.example.com'),
                       f.first || ' ' || l.last || '@example'])[1 + d.id %% 3]
            ELSE lower(f.first || '.' || l.last || d.id || '@example.com') END AS email,
       '+1-555-' || lpad((d.id %% 10000)::text, 4, '0') AS phone,
       reg.registration_date,
       CASE WHEN d.r_future < %(future_last_login)s
            THEN %(period_end)s::timestamp + interval '2 days' + d.r_login * interval '88 days'
            ELSE greatest(reg.registration_date::timestamp, %(period_start)s::timestamp - interval '60 days')
                 + d.r_login * (%(period_end)s::timestamp
                                - greatest(reg.registration_date::timestamp, %(period_start)s::timestamp - interval '60 days'))
       END AS last_login,
       CASE WHEN d.r_status < 0.85 THEN 'active' WHEN d.r_status < 0.95 THEN 'inactive' ELSE 'suspended' END AS status,
       CASE WHEN d.r_geo_null < %(null_region)s THEN NULL ELSE g.region END AS region,
       CASE WHEN d.r_geo_null < %(null_region)s THEN NULL ELSE g.country END AS country,
       CASE WHEN d.r_geo_null < %(null_region)s THEN NULL ELSE g.state END AS state,
       (ARRAY['enterprise', 'mid-market', 'smb', 'consumer'])[1 + floor(d.r_seg * 4)::int] AS segment,
       reg.registration_date + floor(d.r_hour * 24)::int * interval '1 hour' AS created_at,
       reg.registration_date + d.r_upd * (%(period_end)s::timestamp - reg.registration_date) AS updated_at,
       -- how much a customer buys, logs in and calls: Pareto-skewed for active customers
       CASE WHEN d.r_status < 0.85 THEN power(1 - d.r_weight, -1 / 1.6) ELSE 0.2 END AS weight,
       d.r_email < %(null_email)s AS is_null_email,
       d.r_email >= %(null_email)s AND d.r_email < %(null_email)s + %(bad_email)s AS is_bad_email,
       d.r_geo_null < %(null_region)s AS is_null_region,
       d.r_future < %(future_last_login)s AS is_future_last_login,
       d.r_dup < %(duplicate_customer)s AS is_duplicated
FROM gen.draw AS d
CROSS JOIN LATERAL (
    SELECT CASE WHEN d.r_new < 0.08
                THEN %(period_start)s::date + floor(d.r_reg * (%(period_end)s::date - %(period_start)s::date))::int
                ELSE %(period_start)s::date - 1095 + floor(d.r_reg * 1095)::int END AS registration_date
) AS reg
JOIN (SELECT ordinality AS i, first FROM unnest(%(first_names)s::text[]) WITH ORDINALITY AS t (first)) AS f
    ON f.i = 1 + floor(d.r_name1 * cardinality(%(first_names)s::text[]))
JOIN (SELECT ordinality AS i, last FROM unnest(%(last_names)s::text[]) WITH ORDINALITY AS t (last)) AS l
    ON l.i = 1 + floor(d.r_name2 * cardinality(%(last_names)s::text[]))
JOIN (
    SELECT ordinality AS i, split_part(x, '|', 1) AS region, split_part(x, '|', 2) AS country,
           split_part(x, '|', 3) AS state
    FROM unnest(%(geo)s::text[]) WITH ORDINALITY AS t (x)
) AS g ON g.i = width_bucket(d.r_geo, %(geo_thresholds)s::float8[]);
DROP TABLE gen.draw;

-- per customer, how many events of each kind: its weighted share of the mean, rounded up or down
-- at random so totals stay close to rate x customers while the Pareto weights give the skew ------
CREATE TABLE gen.counts AS
SELECT c.customer_id, c.weight / avg(c.weight) OVER () AS share, random() AS u_round,
       c.registration_date::timestamp AS registered
FROM gen.customers AS c;

-- transactions: the history months, then the report month ---------------------------------------
CREATE SEQUENCE gen.tx_seq;
CREATE TABLE gen.tx AS
WITH events AS (
    SELECT k.customer_id, w.lo, w.hi, w.in_month
    FROM gen.counts AS k
    CROSS JOIN LATERAL (VALUES
        -- nobody buys before registering: a history month must not hold sales of customers the
        -- customer database only knows from a later month
        (greatest(%(history_start)s::timestamp, k.registered), %(period_start)s::timestamp, false,
         %(tx_rate)s * 0.8 * %(history_months)s * k.share
             * greatest(0, extract(epoch FROM %(period_start)s::timestamp - greatest(%(history_start)s::timestamp, k.registered)))
             / nullif(extract(epoch FROM %(period_start)s::timestamp - %(history_start)s::timestamp), 0)),
        (%(period_start)s::timestamp, %(period_end)s::timestamp, true,
         %(tx_rate)s * k.share)
    ) AS w (lo, hi, in_month, mean)
    CROSS JOIN LATERAL generate_series(1, floor(w.mean + k.u_round)::int)
), drawn AS (
    SELECT nextval('gen.tx_seq') AS seq, e.*,
           random() AS r_when, random() AS r_amt1, random() AS r_amt2, random() AS r_cur, random() AS r_status,
           random() AS r_neg, random() AS r_zero, random() AS r_badcur, random() AS r_badcur_pick,
           random() AS r_orphan, random() AS r_upd, random() AS r_late, random() AS r_cat, random() AS r_qty,
           random() AS r_pay, random() AS r_disc, random() AS r_dupid, random() AS r_twin
    FROM events AS e
)
SELECT seq, customer_id, in_month,
       date_trunc('second', lo + r_when * (hi - lo)) AS order_date,
       round(least(5000, exp(3.9 + 0.8 * sqrt(-2 * ln(1 - r_amt1)) * cos(2 * pi() * r_amt2)))::numeric, 2) AS base_amount,
       CASE WHEN r_cur < 0.8 THEN 'USD' WHEN r_cur < 0.92 THEN 'EUR' ELSE 'GBP' END AS base_currency,
       CASE WHEN r_status < 0.9 THEN 'completed' WHEN r_status < 0.94 THEN 'refunded'
            WHEN r_status < 0.97 THEN 'pending' ELSE 'cancelled' END AS status,
       in_month AND r_neg < %(negative_amount)s AS is_negative,
       in_month AND r_neg >= %(negative_amount)s AND r_zero < %(zero_amount)s AS is_zero,
       in_month AND r_badcur < %(unknown_currency)s AS is_unknown_currency,
       (ARRAY['XXX', 'ZZZ', 'US$'])[1 + floor(r_badcur_pick * 3)::int] AS bad_currency,
       in_month AND r_orphan < %(unknown_customer)s AS is_unknown_customer,
       in_month AND r_late < %(late_arriving)s AS is_late,
       r_upd, r_late,
       (ARRAY['electronics', 'clothing', 'services', 'home', 'software', 'books'])[1 + floor(r_cat * 6)::int]
           AS product_category,
       1 + floor(r_qty * 5)::int AS quantity,
       (ARRAY['card', 'paypal', 'bank_transfer', 'invoice'])[1 + floor(r_pay * 4)::int] AS payment_method,
       (ARRAY[0, 0, 0.05, 0.1])[1 + floor(r_disc * 4)::int] AS discount_rate,
       in_month AND r_dupid < %(duplicate_id)s AS is_duplicate_id,
       in_month AND r_twin < %(probable_duplicate)s AS is_probable_duplicate
FROM drawn;

CREATE TABLE gen.transactions AS
WITH rows AS (
    SELECT seq, in_month,
           CASE WHEN is_unknown_customer THEN %(customers)s + 1000000 + seq ELSE customer_id END AS customer_id,
           order_date,
           CASE WHEN is_negative THEN -base_amount WHEN is_zero THEN 0 ELSE base_amount END AS amount,
           CASE WHEN is_unknown_currency THEN bad_currency ELSE base_currency END AS currency,
           product_category, quantity, payment_method, status, discount_rate, is_duplicate_id,
           is_probable_duplicate,
           CASE WHEN is_late THEN %(period_end)s::timestamp + r_late / %(late_arriving)s * interval '5 days'
                ELSE order_date + floor(r_upd * 121)::int * interval '1 minute' END AS updated_at
    FROM gen.tx
)
SELECT 'T' || lpad(seq::text, 10, '0') AS transaction_id, customer_id, order_date, amount, currency,
       product_category, quantity, payment_method, status, round(amount * discount_rate, 2) AS discount_applied,
       round(amount * 0.08, 2) AS tax_amount, updated_at, in_month, 'original' AS kind
FROM rows
UNION ALL  -- the same transaction_id again, a later version that settled
SELECT 'T' || lpad(seq::text, 10, '0'), customer_id, order_date, amount, currency, product_category, quantity,
       payment_method, 'completed', round(amount * discount_rate, 2), round(amount * 0.08, 2),
       updated_at + interval '1 hour', in_month, 'duplicate_id'
FROM rows WHERE is_duplicate_id
UNION ALL  -- a probable duplicate: same customer, amount, currency and time under a new id
SELECT 'P' || lpad(seq::text, 10, '0'), customer_id, order_date, amount, currency, product_category, quantity,
       payment_method, status, round(amount * discount_rate, 2), round(amount * 0.08, 2), updated_at, in_month,
       'probable_duplicate'
FROM rows WHERE is_probable_duplicate;

-- sessions: the history months and the report month ---------------------------------------------
CREATE SEQUENCE gen.session_seq;
CREATE TABLE gen.activity AS
WITH events AS (
    -- from the history's start, or the customer's registration when later
    SELECT k.customer_id, greatest(%(history_start)s::timestamp, k.registered) AS lo
    FROM gen.counts AS k
    CROSS JOIN LATERAL generate_series(1, floor(%(sessions_rate)s * (%(history_months)s + 1) * k.share
        * greatest(0, extract(epoch FROM %(period_end)s::timestamp - greatest(%(history_start)s::timestamp, k.registered)))
        / extract(epoch FROM %(period_end)s::timestamp - %(history_start)s::timestamp) + k.u_round)::int)
), drawn AS (
    SELECT nextval('gen.session_seq') AS session_id, customer_id, lo, random() AS r_when, random() AS r_min,
           random() AS r_neg, random() AS r_feature
    FROM events
)
SELECT session_id, customer_id, 'login' AS activity_type, session_start,
       CASE WHEN session_start >= %(period_start)s::timestamp AND r_neg < %(negative_duration)s
            THEN -1 ELSE 1 END * round((-18 * ln(1 - r_min))::numeric, 2) AS duration_minutes,
       (ARRAY['dashboard', 'reports', 'alerts', 'api', 'integrations', 'billing', 'search', 'export'])
           [1 + floor(r_feature * 8)::int] AS feature,
       session_start >= %(period_start)s::timestamp AS in_month,
       session_start >= %(period_start)s::timestamp AND r_neg < %(negative_duration)s AS is_negative_duration
FROM drawn
CROSS JOIN LATERAL (
    SELECT date_trunc('second', lo + r_when * (%(period_end)s::timestamp - lo)) AS session_start
) AS s;

-- CRM interactions: the history months and the report month -------------------------------------
CREATE SEQUENCE gen.interaction_seq;
CREATE TABLE gen.interactions AS
WITH events AS (
    -- from the history's start, or the customer's registration when later
    SELECT k.customer_id, greatest(%(history_start)s::timestamp, k.registered) AS lo
    FROM gen.counts AS k
    CROSS JOIN LATERAL generate_series(1, floor(%(interactions_rate)s * (%(history_months)s + 1) * k.share
        * greatest(0, extract(epoch FROM %(period_end)s::timestamp - greatest(%(history_start)s::timestamp, k.registered)))
        / extract(epoch FROM %(period_end)s::timestamp - %(history_start)s::timestamp) + k.u_round)::int)
), drawn AS (
    SELECT nextval('gen.interaction_seq') AS seq, customer_id, lo, random() AS r_when, random() AS r_kind,
           random() AS r_sat, random() AS r_sat_defect, random() AS r_sat_pick, random() AS r_res,
           random() AS r_hours, random() AS r_dur, random() AS r_agent, random() AS r_dept
    FROM events
)
SELECT 'I' || lpad(seq::text, 10, '0') AS interaction_id, customer_id,
       (ARRAY['call', 'email', 'chat', 'ticket'])[width_bucket(r_kind, ARRAY[0, 0.25, 0.55, 0.8]::float8[])]
           AS interaction_type,
       interaction_date,
       round((-12 * ln(1 - r_dur))::numeric, 2) AS duration_minutes,
       CASE WHEN in_month AND r_sat_defect < %(null_satisfaction)s THEN NULL
            WHEN in_month AND r_sat_defect < %(null_satisfaction)s + %(satisfaction_out_of_range)s
                THEN (ARRAY[0, 11, 42, -1])[1 + floor(r_sat_pick * 4)::int]
            ELSE width_bucket(r_sat, %(satisfaction_thresholds)s::float8[]) END AS satisfaction_score,
       resolution_status,
       CASE WHEN resolution_status = 'open' THEN NULL ELSE round((-16.7 * ln(1 - r_hours))::numeric, 2) END
           AS resolution_hours,
       'A' || lpad((1 + floor(r_agent * 60))::int::text, 3, '0') AS agent_id,
       (ARRAY['support', 'sales', 'success', 'billing'])[1 + floor(r_dept * 4)::int] AS department,
       in_month,
       in_month AND r_sat_defect < %(null_satisfaction)s AS is_null_satisfaction,
       in_month AND r_sat_defect >= %(null_satisfaction)s
           AND r_sat_defect < %(null_satisfaction)s + %(satisfaction_out_of_range)s AS is_satisfaction_out_of_range
FROM drawn
CROSS JOIN LATERAL (
    SELECT date_trunc('second', lo + r_when * (%(period_end)s::timestamp - lo)) AS interaction_date,
           CASE WHEN r_res < 0.75 THEN 'resolved' WHEN r_res < 0.85 THEN 'open' ELSE 'escalated' END
               AS resolution_status
) AS x
CROSS JOIN LATERAL (SELECT interaction_date >= %(period_start)s::timestamp AS in_month) AS m;
