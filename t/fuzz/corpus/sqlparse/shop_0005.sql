BEGIN;
--
-- Rename model Order to Purchase
--
ALTER TABLE "shop_order" RENAME TO "shop_purchase";
--
-- Remove constraint order_total_positive from model purchase
--
ALTER TABLE "shop_purchase" DROP CONSTRAINT "order_total_positive";
--
-- Alter field total on purchase
--
ALTER TABLE "shop_purchase" ALTER COLUMN "total" SET DEFAULT 0;
ALTER TABLE "shop_purchase" ALTER COLUMN "total" DROP NOT NULL;
--
-- Alter field name on customer
--
DROP INDEX IF EXISTS "shop_customer_name_e6c6b028_like";
--
-- Delete model Legacy
--
DROP TABLE "shop_legacy" CASCADE;
--
-- Alter unique_together for customer (1 constraint(s))
--
ALTER TABLE "shop_customer" ADD CONSTRAINT "shop_customer_name_email_uniq" UNIQUE ("name", "email");
--
-- Rename field points on customer to loyalty
--
ALTER TABLE "shop_customer" RENAME COLUMN "points" TO "loyalty";
COMMIT;
