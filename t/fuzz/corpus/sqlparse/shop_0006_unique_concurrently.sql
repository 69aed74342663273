--
-- Concurrently create index shop_customer_name_uniq on field(s) name of model customer
--
CREATE UNIQUE INDEX CONCURRENTLY "shop_customer_name_uniq" ON "shop_customer" ("name");
