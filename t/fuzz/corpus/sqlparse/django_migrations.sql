-- django_migrations as Django 3.2 creates it
CREATE TABLE "django_migrations" ("id" bigserial NOT NULL PRIMARY KEY,
    "app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL,
    "applied" timestamp with time zone NOT NULL);
