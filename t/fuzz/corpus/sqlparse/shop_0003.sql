BEGIN;
--
-- MIGRATION NOW PERFORMS OPERATION THAT CANNOT BE WRITTEN AS SQL:
-- Raw Python operation
--
--
-- Raw SQL operation
--
UPDATE shop_customer SET score = 0 WHERE score IS NULL;
--
-- Rename field score on customer to points
--
ALTER TABLE "shop_customer" RENAME COLUMN "score" TO "points";
--
-- Alter field points on customer
--
ALTER TABLE "shop_customer" ALTER COLUMN "points" SET DEFAULT 0;
UPDATE "shop_customer" SET "points" = 0 WHERE "points" IS NULL;
ALTER TABLE "shop_customer" ALTER COLUMN "points" SET NOT NULL;
ALTER TABLE "shop_customer" ALTER COLUMN "points" DROP DEFAULT;
COMMIT;
