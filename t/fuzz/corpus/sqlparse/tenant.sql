BEGIN;
--
-- Create model Account
--
CREATE TABLE "tenant"."billing_account" ("id" bigserial NOT NULL PRIMARY KEY, "balance" numeric(12, 2) NOT NULL);
CREATE INDEX "billing_account_balance_idx" ON "tenant"."billing_account" ("balance");
--
-- Alter field owner on invoice
--
ALTER TABLE "billing_invoice" ALTER COLUMN "owner" TYPE varchar(64) USING "owner"::varchar(64);
COMMIT;
