BEGIN;
--
-- Create model Customer
--
CREATE TABLE "shop_customer" ("id" bigserial NOT NULL PRIMARY KEY, "name" varchar(100) NOT NULL, "legacy" integer NULL);
COMMIT;
