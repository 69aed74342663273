BEGIN;
--
-- Creates extension pg_trgm
--
CREATE EXTENSION IF NOT EXISTS "pg_trgm";
--
-- Raw SQL operation
--
CREATE SEQUENCE invoice_no_seq START 1000;
CREATE VIEW shop_big_customers AS SELECT id, name FROM shop_customer WHERE loyalty > 100;
CREATE FUNCTION shop_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.loyalty := coalesce(NEW.loyalty, 0); RETURN NEW; END $$;
CREATE TRIGGER shop_customer_touch BEFORE INSERT ON shop_customer FOR EACH ROW EXECUTE FUNCTION shop_touch();
COMMIT;
