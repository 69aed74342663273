--
-- Concurrently create index order_total_idx on field(s) total of model order
--
CREATE INDEX CONCURRENTLY "order_total_idx" ON "shop_order" ("total");
--
-- MIGRATION NOW PERFORMS OPERATION THAT CANNOT BE WRITTEN AS SQL:
-- Raw Python operation
--
