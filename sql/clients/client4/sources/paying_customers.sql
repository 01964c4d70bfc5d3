-- A database source given by a query instead of a table (database.query in the client
-- config): one read-only SELECT, run as a subquery the extract filters by the window
-- and orders by (watermark, tiebreak). This one leaves out the shop's free plan.
SELECT customer_id, full_name, email, country, plan, deleted, updated_at
FROM shop.customers
WHERE plan <> 'free'
