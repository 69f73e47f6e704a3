-- unknown_transaction_customers: the customer ids of the staged transactions that the customer
-- database does not know, which the gate's customer_id.known rule of the transactions reads.
-- Every transaction's customer id is hashed against the customers' here, once, on the second
-- connection while the first stages the probable duplicates' keys; evaluated inside the flagging
-- pass instead, it was about a third of the pass's rule predicates (300k customers). The
-- vld_transactions view keeps the same set inline (quality/flagging.py, INLINE_KEYS), so that no
-- view depends on this table.
SELECT customer_id FROM {flt_transactions}
EXCEPT
SELECT customer_id FROM {flt_customers}
