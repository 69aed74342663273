BEGIN;
--
-- Add field x to y
--
ALTER TABLE "shop_customer" ADD COLUMN "x" integer NULL;
ALTER TABLE "shop_customer" ALTER COLUMN "x" SET NOT NULL
COMMIT;
