-- The synthetic sources, generated inside PostgreSQL (schema gen of the customer database) so
-- that millions of rows take seconds. Deterministic: setseed() plus serial plans. Parameters are
-- bound by dev/generate.py. Every defect is drawn from its own random() at the rate given in
-- DEFECT_RATES and recorded in a flag column, so what was planted can be counted exactly.
--
-- Customers have lives, and not the churn model's own process (no BG/NBD: a model of that family
-- would be scored on its own assumptions): each is acquired in a monthly cohort of the cohort
-- window, buys first soon after, then at its latent rate (Poisson, seasonal: +35 %% in December,
-- -35 %% in June; rates heterogeneous: Pareto weights capped at 60, a few whales). It drops out at
-- the end of its latent lifetime (log-normal, counted from the first purchase), at any moment
-- rather than after a purchase. Over a lead of 0 to 120 days before that (its own), its purchases
-- slow to a quarter, its sessions thin out and shorten and its CRM contacts grow more frequent,
-- angrier and more escalated; a lead near 0 gives no warning. After dropping out it buys nothing and
-- is nearly silent (a rare visit or contact, however heavy a user it was), unless it comes back
-- (15 %%, 2 to 8 months later, then as before). gen.truth
-- keeps each customer's dropout and return (NULL when not by truth_end) and whether it made a
-- completed purchase in the 90 days after the month: dev/generate.py writes it to the table
-- ground_truth, which only tests, the benchmarks and the demo summary read, never the pipeline.
-- Every random() is drawn in a SELECT over rows in a fixed order (ORDER BY before the draw), so
-- the same seed gives the same rows whatever plan the server picks. The script runs in stages
-- (split at "-- @stage" lines) on one session, so the random sequence is the same as in one go:
-- between them dev/generate.py counts what a stage planted, moves its rows to their source and
-- drops the intermediate tables, so that the disk holds the sources and one stage's work, not
-- every table at once (millions of customers with years of history).
SET max_parallel_workers_per_gather = 0;
SELECT setseed(%(seed)s);
DROP SCHEMA IF EXISTS gen CASCADE;
CREATE SCHEMA gen;

-- a Poisson count of mean m from a uniform u and a standard normal z: the inverse CDF below 30,
-- the normal approximation above (where it is within a fraction of a percent)
CREATE FUNCTION gen.poisson(m float8, u float8, z float8) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN m <= 0 THEN 0
        WHEN m >= 30 THEN greatest(0, round(m + sqrt(m) * z))::bigint
        ELSE (SELECT coalesce(min(k), 100) FROM (
                  SELECT k, sum(exp(greatest(-m + k * ln(m) - lf, -700))) OVER (ORDER BY k) AS cdf
                  FROM (SELECT k, sum(ln(greatest(k, 1))) OVER (ORDER BY k) AS lf
                        FROM generate_series(0, 100) AS k) AS f
              ) AS c WHERE cdf >= u)
    END
$$;

-- customers: draws first, then the row built from them ---------------------------------------
CREATE TABLE gen.draw AS
SELECT id, random() AS r_name1, random() AS r_name2, random() AS r_reg,
       random() AS r_status, random() AS r_email, random() AS r_geo, random() AS r_geo_null,
       random() AS r_login, random() AS r_future, random() AS r_seg, random() AS r_hour,
       random() AS r_upd, random() AS r_dup, random() AS r_weight, random() AS r_life1, random() AS r_life2,
       random() AS r_never, random() AS r_n, random() AS r_first, random() AS r_before, random() AS r_before2,
       random() AS r_window, random() AS r_window2, random() AS r_sessions, random() AS r_contacts
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
       -- set from the sessions below; a planted defect puts it after the month
       CASE WHEN d.r_future < %(future_last_login)s
            THEN %(period_end)s::timestamp + interval '2 days' + d.r_login * interval '88 days' END AS last_login,
       CASE WHEN d.r_status < 0.85 THEN 'active' WHEN d.r_status < 0.95 THEN 'inactive' ELSE 'suspended' END AS status,
       CASE WHEN d.r_geo_null < %(null_region)s THEN NULL ELSE g.region END AS region,
       CASE WHEN d.r_geo_null < %(null_region)s THEN NULL ELSE g.country END AS country,
       CASE WHEN d.r_geo_null < %(null_region)s THEN NULL ELSE g.state END AS state,
       (ARRAY['enterprise', 'mid-market', 'smb', 'consumer'])[1 + floor(d.r_seg * 4)::int] AS segment,
       reg.registration_date + floor(d.r_hour * 24)::int * interval '1 hour' AS created_at,
       reg.registration_date + d.r_upd * (%(period_end)s::timestamp - reg.registration_date) AS updated_at,
       -- how much a customer buys, logs in and calls: Pareto-skewed (capped); the top 1 %% are whales
       least(power(1 - d.r_weight, -1 / 1.6), 60) AS weight,
       CASE WHEN d.r_weight > 0.99 THEN 3.0 ELSE 1.0 END AS basket,
       -- latent lifetime in months: log-normal around the median lifetime (Box-Muller)
       %(lifetime_months)s * exp(0.9 * sqrt(-2 * ln(1 - d.r_life1)) * cos(2 * pi() * d.r_life2)) AS lifetime_months,
       d.r_never >= %(never_buy)s AS buys,
       d.r_n, d.r_first, d.r_before, d.r_before2, d.r_window, d.r_sessions, d.r_contacts,
       -- standard normals for the Poisson counts of large means (Box-Muller)
       sqrt(-2 * ln(1 - d.r_before)) * cos(2 * pi() * d.r_before2) AS z_before,
       sqrt(-2 * ln(1 - d.r_window)) * cos(2 * pi() * d.r_window2) AS z_window,
       d.r_future < %(future_last_login)s AS is_future_last_login,
       d.r_email < %(null_email)s AS is_null_email,
       d.r_email >= %(null_email)s AND d.r_email < %(null_email)s + %(bad_email)s AS is_bad_email,
       d.r_geo_null < %(null_region)s AS is_null_region,
       d.r_dup < %(duplicate_customer)s AS is_duplicated
FROM gen.draw AS d
CROSS JOIN LATERAL (
    -- acquisition cohorts over the cohort window, the recent ones larger (a growing business)
    SELECT %(cohort_start)s::date
           + floor(power(d.r_reg, 0.75) * (%(period_end)s::date - %(cohort_start)s::date))::int AS registration_date
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

-- each customer's latent process: its purchase rate, its first purchase, the moment it drops out
-- (the end of its latent lifetime, counted from the first purchase: at any moment, not after a
-- purchase), how long before that its behaviour and buying fade (lead: 0 to 120 days; 0 gives no
-- warning), whether it comes back (15 %% of those who drop out, 2 to 8 months later, then live as
-- before) and the candidate purchases inside the history window (a Poisson count at the seasonal
-- peak rate, thinned below: only the window's rows reach the sources) ---------------------------
CREATE TABLE gen.life AS
WITH rates AS (
    SELECT c.customer_id, c.registration_date::timestamp AS registered, c.buys, c.basket, c.lifetime_months,
           c.weight / avg(c.weight) OVER () AS share,
           %(tx_rate)s * c.weight / avg(c.weight) OVER () AS rate_month,
           c.r_n AS u_lead, c.r_first, c.r_before AS u_back, c.r_before2 AS u_gap, c.r_window AS u_window,
           c.z_window, c.r_sessions AS u_sessions, c.r_contacts AS u_contacts
    FROM gen.customers AS c
), p AS (
    SELECT r.*, r.rate_month * 12 / 365.25 AS rate_day,
           r.registered + (-3 * ln(1 - r.r_first)) * interval '1 day' AS first_purchase
    FROM rates AS r
)
SELECT p.customer_id, p.registered, p.buys, p.basket, p.share, p.rate_month, p.rate_day, p.lifetime_months,
       p.u_sessions, p.u_contacts,
       CASE WHEN p.buys THEN p.first_purchase END AS first_purchase,
       CASE WHEN p.buys THEN p.first_purchase + p.lifetime_months * interval '30.4375 days' END AS dropout_at,
       120 * p.u_lead * interval '1 day' AS lead,
       CASE WHEN p.buys AND p.u_back < 0.15
            THEN p.first_purchase + p.lifetime_months * interval '30.4375 days' + (60 + 180 * p.u_gap) * interval '1 day'
       END AS back_at,
       w.window_start,
       CASE WHEN NOT p.buys OR p.first_purchase >= %(truth_end)s::timestamp THEN 0
            ELSE gen.poisson(1.35 * p.rate_day * extract(epoch FROM %(truth_end)s::timestamp - w.window_start) / 86400,
                             p.u_window, p.z_window)
       END::int AS candidates
FROM p
CROSS JOIN LATERAL (SELECT greatest(%(history_start)s::timestamp, p.first_purchase) AS window_start) AS w
ORDER BY p.customer_id;
ANALYZE gen.life;

-- the seasons: purchases run 35 %% above the year's average in mid-December, as far below in June
CREATE FUNCTION gen.season(at timestamp) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT 1 + 0.35 * cos(2 * pi() * (extract(doy FROM at) - 350) / 365.25)
$$;

-- the stage of life at any moment, as a share of the customer's usual: 1 while well, fading to
-- ``low`` over its lead before dropping out, ``gone`` after it, 1 again once it is back. Sessions and
-- contacts (low 0.15, gone 0.04: the rare visit of a lapsed customer) and purchases (low 0.25, gone
-- 0: none until it is back) follow it.
CREATE FUNCTION gen.stage(at timestamp, dropout timestamp, lead interval, back timestamp, low float8, gone float8)
RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN dropout IS NULL OR at < dropout - lead OR at >= back THEN 1.0
                WHEN at < dropout THEN low + (1 - low) * extract(epoch FROM dropout - at) / extract(epoch FROM lead)
                ELSE gone END
$$;

-- the purchases inside the window, in order: the candidates kept at the seasonal rate times the
-- stage of buying, and the first purchase itself when it falls in the window
CREATE TABLE gen.purchases AS
WITH events AS (
    SELECT l.customer_id, l.window_start, l.dropout_at, l.lead, l.back_at, i
    FROM gen.life AS l
    CROSS JOIN LATERAL generate_series(1, l.candidates) AS i
    ORDER BY l.customer_id, i
), drawn AS (
    SELECT e.*, e.window_start + random() * (%(truth_end)s::timestamp - e.window_start) AS at, random() AS r_keep
    FROM events AS e
), kept AS (
    SELECT customer_id, at FROM drawn
    WHERE r_keep < gen.season(at) / 1.35 * gen.stage(at, dropout_at, lead, back_at, 0.25, 0.0)
    UNION ALL
    SELECT customer_id, first_purchase FROM gen.life
    WHERE first_purchase >= %(history_start)s::timestamp AND first_purchase < %(truth_end)s::timestamp
), ordered AS (
    SELECT customer_id, at, row_number() OVER (PARTITION BY customer_id ORDER BY at) AS n FROM kept
    ORDER BY customer_id, at
)
-- completed: whether a purchase after the month completes (90 %%, as gen.tx draws statuses)
SELECT customer_id, at, n, random() < 0.9 AS completed FROM ordered;
ANALYZE gen.purchases;

-- the ground truth: when each customer dropped out and came back (if by truth_end), and what it
-- bought after the month
CREATE TABLE gen.truth AS
SELECT l.customer_id, l.registered::date AS registration_date, l.first_purchase, l.rate_month AS purchase_rate_month,
       l.lifetime_months AS latent_lifetime_months, extract(epoch FROM l.lead) / 86400 AS lead_days,
       CASE WHEN l.dropout_at < %(truth_end)s::timestamp THEN l.dropout_at END AS dropout_at,
       CASE WHEN l.back_at < %(truth_end)s::timestamp THEN l.back_at END AS back_at,
       %(truth_end)s::timestamp AS known_through,
       -- the days it buys on in the 91 days after the month (completed orders: 90 %% of them);
       -- days, as the churn model counts purchases
       coalesce(f.purchase_days, 0) AS purchase_days_next_91d,
       -- the churn event: no completed purchase in the 90 days after the month
       coalesce(f.purchase_days_90, 0) = 0 AS no_purchase_next_90d
FROM gen.life AS l
LEFT JOIN (
    SELECT customer_id, count(DISTINCT at::date) FILTER (WHERE completed) AS purchase_days,
           count(*) FILTER (WHERE completed AND at < %(period_end)s::timestamp + interval '90 days') AS purchase_days_90
    FROM gen.purchases
    WHERE at >= %(period_end)s::timestamp AND at < %(period_end)s::timestamp + interval '91 days'
    GROUP BY customer_id
) AS f ON f.customer_id = l.customer_id;
CREATE UNIQUE INDEX ON gen.truth (customer_id);
ANALYZE gen.truth;
ANALYZE gen.customers;

-- purchases -> transactions: the history months, then the report month ------------------------
CREATE SEQUENCE gen.tx_seq;
CREATE TABLE gen.tx AS
WITH events AS (
    SELECT p.customer_id, p.at, l.basket, p.at >= %(period_start)s::timestamp AS in_month
    FROM gen.purchases AS p JOIN gen.life AS l USING (customer_id)
    WHERE p.at < %(period_end)s::timestamp
    ORDER BY p.customer_id, p.n
), drawn AS (
    SELECT nextval('gen.tx_seq') AS seq, e.*,
           random() AS r_amt1, random() AS r_amt2, random() AS r_cur, random() AS r_status,
           random() AS r_neg, random() AS r_zero, random() AS r_badcur, random() AS r_badcur_pick,
           random() AS r_orphan, random() AS r_upd, random() AS r_late, random() AS r_cat, random() AS r_qty,
           random() AS r_pay, random() AS r_disc, random() AS r_dupid, random() AS r_twin
    FROM events AS e
)
SELECT seq, customer_id, in_month,
       date_trunc('second', at) AS order_date,
       -- log-normal baskets, larger for whales and in November and December
       round(least(5000, basket * CASE WHEN extract(month FROM at) IN (11, 12) THEN 1.25 ELSE 1 END
                         * exp(3.9 + 0.8 * sqrt(-2 * ln(1 - r_amt1)) * cos(2 * pi() * r_amt2)))::numeric, 2)
           AS base_amount,
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
UNION ALL  -- a probable duplicate: same customer, amount, currency and time under a new id, issued
-- after the original's (order numbers grow with time, a customer's as everyone's)
SELECT 'T' || lpad(seq::text, 10, '0') || 'P', customer_id, order_date, amount, currency, product_category, quantity,
       payment_method, status, round(amount * discount_rate, 2), round(amount * 0.08, 2), updated_at, in_month,
       'probable_duplicate'
FROM rows WHERE is_probable_duplicate;

-- @stage activity (dev/generate.py moves the transactions to the sales database and drops them first)
-- sessions: candidates at the customer's full rate from the history's start (or its
-- registration), kept with the probability of its vitality at that moment: logins thin out, get
-- shorter and use fewer features over its lead before dropping out ------------------------------
CREATE SEQUENCE gen.session_seq;
CREATE TABLE gen.activity AS
WITH events AS (
    SELECT l.customer_id, greatest(%(history_start)s::timestamp, l.registered) AS lo, l.dropout_at, l.lead,
           l.back_at, l.share, CASE WHEN l.buys THEN 1.0 ELSE 0.3 END AS keen
    FROM gen.life AS l
    CROSS JOIN LATERAL generate_series(1, floor(%(sessions_rate)s * (0.5 + 0.5 * l.share)
        * extract(epoch FROM %(period_end)s::timestamp - greatest(%(history_start)s::timestamp, l.registered))
        / (30.4375 * 86400) + l.u_sessions)::int) AS i
    ORDER BY l.customer_id, i
), drawn AS (
    -- every draw a column of the row (a random() inside a LATERAL subquery may be evaluated once
    -- for many rows)
    SELECT customer_id, dropout_at, lead, back_at, share, keen, lo, random() AS r_when, random() AS r_keep, random() AS r_min,
           random() AS r_neg, random() AS r_feature, random() AS r_narrow
    FROM events
), timed AS (
    SELECT d.*, date_trunc('second', d.lo + d.r_when * (%(period_end)s::timestamp - d.lo)) AS session_start
    FROM drawn AS d
), staged AS (
    SELECT d.*, gen.stage(d.session_start, d.dropout_at, d.lead, d.back_at, 0.15, 0.04) AS vitality,
           d.dropout_at IS NOT NULL AND d.session_start >= d.dropout_at
               AND (d.back_at IS NULL OR d.session_start < d.back_at) AS lapsed
    FROM timed AS d
), kept AS (
    SELECT * FROM staged
    -- a lapsed customer's rare visit does not scale with how much it used the product before
    WHERE r_keep < vitality * keen / CASE WHEN lapsed THEN 0.5 + 0.5 * share ELSE 1 END
    ORDER BY customer_id, session_start
)
SELECT nextval('gen.session_seq') AS session_id, customer_id, 'login' AS activity_type, session_start,
       CASE WHEN session_start >= %(period_start)s::timestamp AND r_neg < %(negative_duration)s
            THEN -1 ELSE 1 END * round((-18 * (0.4 + 0.6 * vitality) * ln(1 - r_min))::numeric, 2) AS duration_minutes,
       CASE WHEN r_narrow > vitality THEN (ARRAY['dashboard', 'billing'])[1 + floor(r_feature * 2)::int]
            ELSE (ARRAY['dashboard', 'reports', 'alerts', 'api', 'integrations', 'billing', 'search', 'export'])
                 [1 + floor(r_feature * 8)::int] END AS feature,
       session_start >= %(period_start)s::timestamp AS in_month,
       session_start >= %(period_start)s::timestamp AND r_neg < %(negative_duration)s AS is_negative_duration
FROM kept;

-- the last login the customer database knows: the latest session up to the period end
UPDATE gen.customers AS c SET last_login = s.last_session
FROM (
    SELECT customer_id, max(session_start) AS last_session FROM gen.activity
    WHERE session_start < %(period_end)s::timestamp GROUP BY customer_id
) AS s
WHERE s.customer_id = c.customer_id AND NOT c.is_future_last_login;

-- @stage interactions (after the customer database took the sessions)
-- CRM interactions: candidates at 2.5 x the customer's rate, kept at 40 %% (1 in 2.5) while it is
-- well, all of them over its lead before dropping out (more contacts, lower scores, more
-- escalations), 4 %% after it until it is back --------------------------------------------------------------------
CREATE SEQUENCE gen.interaction_seq;
CREATE TABLE gen.interactions AS
WITH events AS (
    SELECT l.customer_id, greatest(%(history_start)s::timestamp, l.registered) AS lo, l.dropout_at, l.lead, l.back_at,
           l.share
    FROM gen.life AS l
    CROSS JOIN LATERAL generate_series(1, floor(2.5 * %(interactions_rate)s * (0.5 + 0.5 * l.share)
        * extract(epoch FROM %(period_end)s::timestamp - greatest(%(history_start)s::timestamp, l.registered))
        / (30.4375 * 86400) + l.u_contacts)::int) AS i
    ORDER BY l.customer_id, i
), drawn AS (
    SELECT customer_id, dropout_at, lead, back_at, share, lo, random() AS r_when, random() AS r_keep, random() AS r_kind,
           random() AS r_sat, random() AS r_sat_defect, random() AS r_sat_pick, random() AS r_res,
           random() AS r_hours, random() AS r_dur, random() AS r_agent, random() AS r_dept
    FROM events
), timed AS (
    SELECT d.*, date_trunc('second', d.lo + d.r_when * (%(period_end)s::timestamp - d.lo)) AS interaction_date
    FROM drawn AS d
), staged AS (
    SELECT t.*,
           t.dropout_at IS NOT NULL AND t.interaction_date >= t.dropout_at - t.lead
               AND t.interaction_date < t.dropout_at AS unhappy,
           t.dropout_at IS NOT NULL AND t.interaction_date >= t.dropout_at
               AND (t.back_at IS NULL OR t.interaction_date < t.back_at) AS lapsed
    FROM timed AS t
), kept AS (
    SELECT * FROM staged
    -- a lapsed customer's rare contact, as its rare visit, does not scale with its former weight
    WHERE r_keep < CASE WHEN unhappy THEN 1.0 WHEN lapsed THEN 0.04 / (0.5 + 0.5 * share) ELSE 0.4 END
    ORDER BY customer_id, interaction_date
), numbered AS (
    SELECT nextval('gen.interaction_seq') AS seq, kept.* FROM kept
)
SELECT 'I' || lpad(seq::text, 10, '0') AS interaction_id, customer_id,
       (ARRAY['call', 'email', 'chat', 'ticket'])[width_bucket(r_kind, ARRAY[0, 0.25, 0.55, 0.8]::float8[])]
           AS interaction_type,
       interaction_date,
       round((-12 * ln(1 - r_dur))::numeric, 2) AS duration_minutes,
       CASE WHEN in_month AND r_sat_defect < %(null_satisfaction)s THEN NULL
            WHEN in_month AND r_sat_defect < %(null_satisfaction)s + %(satisfaction_out_of_range)s
                THEN (ARRAY[0, 11, 42, -1])[1 + floor(r_sat_pick * 4)::int]
            -- an unhappy customer's score drawn from the lower end of the same distribution
            ELSE width_bucket(CASE WHEN unhappy THEN power(r_sat, 3) ELSE r_sat END,
                              %(satisfaction_thresholds)s::float8[]) END AS satisfaction_score,
       -- a fifth of the resolved security alerts were none
       CASE WHEN department = 'security' AND resolution_status = 'resolved' AND r_hours < 0.2 THEN 'false_positive'
            ELSE resolution_status END AS resolution_status,
       CASE WHEN resolution_status = 'open' THEN NULL ELSE round((-16.7 * ln(1 - r_hours))::numeric, 2) END
           AS resolution_hours,
       'A' || lpad((1 + floor(r_agent * 60))::int::text, 3, '0') AS agent_id,
       department,
       -- a security incident's priority, from the agent draw's fraction (no draw of its own)
       CASE WHEN department = 'security' THEN (ARRAY['critical', 'high', 'medium', 'low'])[
           width_bucket(r_agent * 60 - floor(r_agent * 60), ARRAY[0, 0.1, 0.3, 0.65]::float8[])] END AS priority,
       in_month,
       in_month AND r_sat_defect < %(null_satisfaction)s AS is_null_satisfaction,
       in_month AND r_sat_defect >= %(null_satisfaction)s
           AND r_sat_defect < %(null_satisfaction)s + %(satisfaction_out_of_range)s AS is_satisfaction_out_of_range
FROM numbered
CROSS JOIN LATERAL (
    SELECT CASE WHEN r_res < (CASE WHEN unhappy THEN 0.45 ELSE 0.75 END) THEN 'resolved'
                WHEN r_res < (CASE WHEN unhappy THEN 0.60 ELSE 0.85 END) THEN 'open'
                ELSE 'escalated' END AS resolution_status
) AS x
CROSS JOIN LATERAL (SELECT interaction_date >= %(period_start)s::timestamp AS in_month) AS m
CROSS JOIN LATERAL (
    SELECT (ARRAY['support', 'sales', 'success', 'billing', 'security'])[1 + floor(r_dept * 5)::int] AS department
) AS d;
