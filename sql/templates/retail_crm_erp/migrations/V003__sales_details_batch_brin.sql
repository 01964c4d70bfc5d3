-- {{ client }}: make writing a batch into silver.crm_sales_details cheaper.
--
-- The table's only index was a B-tree on dwh_batch_id. Every inserted sales line paid a
-- descent of that tree: measured on a 2M-line batch (docs/benchmarks.md) it was about
-- 2.7 s of a 9 s insert. The batch's rows are appended together, so the table's blocks
-- are already grouped by batch, which is what a BRIN index summarises: the lowest and
-- highest batch id of each range of 128 blocks. It costs ~0.5 s on the same insert, is
-- a few kB instead of ~25 MB, and still lets "WHERE dwh_batch_id = <batch>" (the step's
-- delete of a re-run batch, gold.fact_sales reading the batch) read only the ranges that
-- can hold the batch. Results are exact either way (BRIN only chooses the blocks to
-- read, every row is re-checked). A batch re-run after newer ones may land in space
-- freed by vacuum and widen a range; that costs reading a few more blocks, never a
-- wrong row.
-- autosummarize: a range filled by a load is summarised by autovacuum rather than left
-- unsummarised (an unsummarised range is read by every batch lookup).

DROP INDEX IF EXISTS {{ silver }}.crm_sales_details_batch_idx;

CREATE INDEX IF NOT EXISTS crm_sales_details_batch_brin
    ON {{ silver }}.crm_sales_details USING brin (dwh_batch_id)
    WITH (autosummarize = on);
