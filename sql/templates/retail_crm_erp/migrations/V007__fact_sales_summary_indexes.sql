-- {{ client }}: a batch's summary update reads the lines of the customers and months it
-- touched through an index, not the whole fact table.
--
-- V002 dropped the customer index because no query read it: the reporting views were
-- then materialized views, recomputed from the whole table after every batch. Since V005
-- they are summary tables each batch updates for the customers and months it touched,
-- and both steps found those lines by reading the whole fact table, every day: the
-- bench's next day read 4.3M fact rows at 2.0M lines and 5.1M at 2.46M, so a day cost
-- more with each day of history. With these two indexes it reads 0.57M and 0.88M (its
-- customers' lines, which grow with their own history). The load pays for them: about
-- 2 microseconds a line and index (the bench's first day of 2M lines: its fact step
-- 19.4 s instead of 11.6 s; docs/benchmarks.md, session 18). The month is the one
-- views/mv_monthly_sales_by_product_line.sql groups by (a date taken as a timestamp: the
-- same month in every time zone, and so it can be indexed).
CREATE INDEX IF NOT EXISTS fact_sales_customer_idx ON {{ gold }}.fact_sales (customer_key);
CREATE INDEX IF NOT EXISTS fact_sales_month_idx
    ON {{ gold }}.fact_sales ((date_trunc('month', order_date::timestamp)::date));
