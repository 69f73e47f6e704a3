-- int_customers: the customers known by the end of the period, each once: a customer listed twice
-- at the source keeps its latest version (by updated_at).
SELECT DISTINCT ON (customer_id) *
FROM {vld_customers}
WHERE customer_id IS NOT NULL
ORDER BY customer_id, updated_at DESC NULLS LAST
