BEGIN;
--
-- Remove field legacy from customer
--
ALTER TABLE "shop_customer" DROP COLUMN "legacy" CASCADE;
--
-- Add field email to customer
--
ALTER TABLE "shop_customer" ADD COLUMN "email" varchar(254) DEFAULT '' NOT NULL UNIQUE;
ALTER TABLE "shop_customer" ALTER COLUMN "email" DROP DEFAULT;
--
-- Add field score to customer
--
ALTER TABLE "shop_customer" ADD COLUMN "score" integer NULL;
--
-- Alter field name on customer
--
ALTER TABLE "shop_customer" ALTER COLUMN "name" TYPE varchar(200);
CREATE INDEX "shop_customer_name_e6c6b028" ON "shop_customer" ("name");
CREATE INDEX "shop_customer_name_e6c6b028_like" ON "shop_customer" ("name" varchar_pattern_ops);
--
-- Create model Order
--
CREATE TABLE "shop_order" ("id" bigserial NOT NULL PRIMARY KEY, "total" numeric(10, 2) NOT NULL, "customer_id" bigint NOT NULL);
--
-- Create constraint order_total_positive on model order
--
ALTER TABLE "shop_order" ADD CONSTRAINT "order_total_positive" CHECK ("total" >= 0);
CREATE INDEX "shop_customer_email_d3fdf104_like" ON "shop_customer" ("email" varchar_pattern_ops);
ALTER TABLE "shop_order" ADD CONSTRAINT "shop_order_customer_id_f638df20_fk_shop_customer_id" FOREIGN KEY ("customer_id") REFERENCES "shop_customer" ("id") DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX "shop_order_customer_id_f638df20" ON "shop_order" ("customer_id");
COMMIT;
