-- {{ client }}: the helper functions now live once in the schema `shared` (tools migration
-- V009), which the steps call; the copies V001 made in this client's silver schema go.

DROP FUNCTION IF EXISTS {{ silver }}.clean_text(text);
DROP FUNCTION IF EXISTS {{ silver }}.yyyymmdd_to_date(bigint);
