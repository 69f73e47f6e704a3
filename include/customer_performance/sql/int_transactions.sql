-- int_transactions: the period's transactions with each transaction_id once, in its latest
-- version (a later update of the same id replaces the earlier one). Read by customer_metrics and
-- performance_trends, so the deduplication runs once per run.
SELECT DISTINCT ON (transaction_id) *
FROM {transactions}
ORDER BY transaction_id, updated_at DESC NULLS LAST
