BEGIN;
--
-- Create model Tag
--
CREATE TABLE "kinds_tag" ("id" serial NOT NULL PRIMARY KEY, "name" varchar(50) NOT NULL UNIQUE);
--
-- Create model Thing
--
CREATE TABLE "kinds_thing" ("id" bigserial NOT NULL PRIMARY KEY, "small" smallint NOT NULL, "pos" integer NOT NULL CHECK ("pos" >= 0), "dec" numeric(8, 3) NOT NULL, "fl" double precision NOT NULL, "flag" boolean NOT NULL, "at" timestamp with time zone NOT NULL, "day" date NULL, "tm" time NULL, "dur" interval NULL, "uid" uuid NOT NULL, "data" jsonb NOT NULL, "blob" bytea NULL, "ip" inet NULL, "txt" text NOT NULL, "url" varchar(200) NOT NULL, "slug" varchar(50) NOT NULL, "arr" integer[] NOT NULL, "tag_id" integer NOT NULL);
CREATE TABLE "kinds_thing_tags" ("id" bigserial NOT NULL PRIMARY KEY, "thing_id" bigint NOT NULL, "tag_id" integer NOT NULL);
--
-- Create index thing_day_flag on field(s) day, flag of model thing
--
CREATE INDEX "thing_day_flag" ON "kinds_thing" ("day", "flag");
--
-- Create constraint thing_slug_flag_uniq on model thing
--
CREATE UNIQUE INDEX "thing_slug_flag_uniq" ON "kinds_thing" ("slug") WHERE "flag";
CREATE INDEX "kinds_tag_name_920324f3_like" ON "kinds_tag" ("name" varchar_pattern_ops);
ALTER TABLE "kinds_thing" ADD CONSTRAINT "kinds_thing_tag_id_90c75d2a_fk_kinds_tag_id" FOREIGN KEY ("tag_id") REFERENCES "kinds_tag" ("id") DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX "kinds_thing_slug_f064d00f" ON "kinds_thing" ("slug");
CREATE INDEX "kinds_thing_slug_f064d00f_like" ON "kinds_thing" ("slug" varchar_pattern_ops);
CREATE INDEX "kinds_thing_tag_id_90c75d2a" ON "kinds_thing" ("tag_id");
ALTER TABLE "kinds_thing_tags" ADD CONSTRAINT "kinds_thing_tags_thing_id_tag_id_00e9585e_uniq" UNIQUE ("thing_id", "tag_id");
ALTER TABLE "kinds_thing_tags" ADD CONSTRAINT "kinds_thing_tags_thing_id_085788b8_fk_kinds_thing_id" FOREIGN KEY ("thing_id") REFERENCES "kinds_thing" ("id") DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "kinds_thing_tags" ADD CONSTRAINT "kinds_thing_tags_tag_id_9735d8fd_fk_kinds_tag_id" FOREIGN KEY ("tag_id") REFERENCES "kinds_tag" ("id") DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX "kinds_thing_tags_thing_id_085788b8" ON "kinds_thing_tags" ("thing_id");
CREATE INDEX "kinds_thing_tags_tag_id_9735d8fd" ON "kinds_thing_tags" ("tag_id");
COMMIT;
