BEGIN;
--
-- Raw SQL operation
--
CREATE TABLE audit_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), what text);
CREATE INDEX audit_log_at ON audit_log (at);
ALTER TABLE audit_log ADD CONSTRAINT audit_log_what_nonempty CHECK (what <> '') NOT VALID;
INSERT INTO audit_log (what) VALUES ('migrated');
DO $$ BEGIN RAISE NOTICE 'hello'; END $$;
COMMIT;
