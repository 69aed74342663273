/*
 * sqlparse.c: TAP unit test of ctl/sqlparse.c: sqlmigrate output into
 * checks (final-state rules, renames, typmods), comments, errors.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sqlparse.h"


#define OK(cond, ...)    ok_(!!(cond), __VA_ARGS__)


static int  tests, failed;


static void ok_(int pass, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const migctl_sql_check_t *live(const migctl_sql_plan_t *p,
    const char *action, const char *name);
static size_t nlive(const migctl_sql_plan_t *p);
static void test_django(void);
static void test_final_state(void);
static void test_types(void);
static void test_unverified(void);
static void test_other_objects(void);
static void test_errors(void);
static void test_weak(void);
static void test_history(void);


int
main(void)
{
    test_django();
    test_final_state();
    test_types();
    test_unverified();
    test_other_objects();
    test_errors();
    test_weak();
    test_history();

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}


static void
test_django(void)
{
    char                       err[512];
    migctl_sql_plan_t          p;
    const migctl_sql_check_t  *c;

    OK(migctl_sql_parse(
        "BEGIN;\n"
        "--\n"
        "-- Add field email to customer\n"
        "--\n"
        "ALTER TABLE \"shop_customer\" ADD COLUMN \"email\" varchar(254)"
        " DEFAULT '' NOT NULL UNIQUE;\n"
        "ALTER TABLE \"shop_customer\" ALTER COLUMN \"email\""
        " DROP DEFAULT;\n"
        "--\n"
        "-- Create model Order\n"
        "--\n"
        "CREATE TABLE \"s\".\"shop_order\" (\"id\" bigserial NOT NULL"
        " PRIMARY KEY, \"total\" numeric(10, 2) NOT NULL,"
        " CONSTRAINT \"pos\" CHECK (\"total\" > 0));\n"
        "CREATE UNIQUE INDEX CONCURRENTLY \"o_idx\" ON \"s\".\"shop_order\""
        " (\"total\");\n"
        "COMMIT;\n", &p, err, sizeof(err)) == 0,
       "django: parses");

    OK(p.atomic, "django: BEGIN seen");
    OK(p.nstmts == 6, "django: 6 statements (got %d)", p.nstmts);
    OK(nlive(&p) == 7, "django: 7 live checks (got %zu)", nlive(&p));

    c = live(&p, "add_column", "email");
    OK(c && c->line == 5 && c->stmt == 2, "add_column: line 5, stmt 2");
    OK(c && c->op >= 0 && strcmp(p.ops[c->op],
                                 "Add field email to customer") == 0,
       "add_column: operation from the comment");
    OK(c && c->schema == NULL && strcmp(c->table, "shop_customer") == 0,
       "add_column: unqualified table");

    c = live(&p, "drop_default", "email");
    OK(c && c->aspect == MIGCTL_SQL_DEFAULT && c->expect == 0,
       "drop_default: no default expected");

    c = live(&p, "create_table", "shop_order");
    OK(c && c->kind == MIGCTL_SQL_TABLE && c->schema
       && strcmp(c->schema, "s") == 0, "create_table: schema-qualified");

    c = live(&p, "create_table", "pos");
    OK(c && c->kind == MIGCTL_SQL_CONSTRAINT && c->contype == 'c',
       "create_table: named table constraint checked");

    c = live(&p, "create_index", "o_idx");
    OK(c && c->unique && c->schema && strcmp(c->schema, "s") == 0,
       "create_index: unique, in its table's schema");

    migctl_sql_free(&p);
}


static void
test_final_state(void)
{
    char                       err[512];
    migctl_sql_plan_t          p;
    const migctl_sql_check_t  *c;

    OK(migctl_sql_parse(
        "ALTER TABLE t ADD COLUMN a int;\n"
        "ALTER TABLE t ALTER COLUMN a SET DEFAULT 1;\n"
        "ALTER TABLE t ALTER COLUMN a DROP DEFAULT;\n"
        "ALTER TABLE t ADD COLUMN b int;\n"
        "ALTER TABLE t DROP COLUMN b;\n"
        "ALTER TABLE t RENAME COLUMN a TO c;\n"
        "CREATE TABLE u (x int);\n"
        "DROP TABLE u;\n"
        "ALTER TABLE t RENAME TO v;\n", &p, err, sizeof(err)) == 0,
       "final state: parses");

    OK(live(&p, "set_default", "a") == NULL
       && live(&p, "set_default", "c") == NULL,
       "SET DEFAULT replaced by DROP DEFAULT");
    c = live(&p, "drop_default", "c");
    OK(c != NULL && strcmp(c->table, "v") == 0,
       "DROP DEFAULT follows the column and table renames");
    OK(live(&p, "add_column", "b") == NULL, "ADD then DROP: add forgotten");
    OK(live(&p, "drop_column", "b") != NULL, "ADD then DROP: absent checked");
    OK(live(&p, "create_table", "x") == NULL
       && live(&p, "create_table", "u") == NULL,
       "CREATE then DROP TABLE: the table and its columns forgotten");
    c = live(&p, "drop_table", "u");
    OK(c && c->expect == 0, "DROP TABLE: absent checked");
    c = live(&p, "rename_table", "v");
    OK(c && c->expect == 1, "RENAME TABLE: new name present");
    OK(live(&p, "rename_table", "t") == NULL,
       "RENAME TABLE: no check that the old name is gone");

    migctl_sql_free(&p);
}


static void
test_types(void)
{
    char                       err[512];
    migctl_sql_plan_t          p;
    const migctl_sql_check_t  *c;

    OK(migctl_sql_parse(
        "ALTER TABLE t ALTER COLUMN a TYPE varchar(200)"
        " USING a::varchar(200);\n"
        "ALTER TABLE t ALTER COLUMN b TYPE numeric(10, 2);\n"
        "ALTER TABLE t ALTER COLUMN c TYPE integer[];\n"
        "ALTER TABLE t ALTER COLUMN d TYPE timestamp(3) with time zone;\n"
        "ALTER TABLE t ALTER COLUMN e TYPE my.enum;\n",
        &p, err, sizeof(err)) == 0, "types: parses");

    c = live(&p, "alter_column_type", "a");
    OK(c && strcmp(c->type, "\"pg_catalog\".\"varchar\"") == 0
       && c->typmod == 204, "varchar(200): typmod 204");
    c = live(&p, "alter_column_type", "b");
    OK(c && c->typmod == ((10 << 16) | 2) + 4, "numeric(10,2) typmod");
    c = live(&p, "alter_column_type", "c");
    OK(c && strcmp(c->type, "\"pg_catalog\".\"int4\"[]") == 0
       && c->typmod == -1, "integer[]");
    c = live(&p, "alter_column_type", "d");
    OK(c && strcmp(c->type, "\"pg_catalog\".\"timestamptz\"") == 0
       && c->typmod == 3, "timestamptz(3)");
    c = live(&p, "alter_column_type", "e");
    OK(c && strcmp(c->type, "\"my\".\"enum\"") == 0, "schema-qualified type");

    migctl_sql_free(&p);

    OK(migctl_sql_parse(
        "CREATE TABLE t (id bigserial PRIMARY KEY, n serial, s text);\n"
        "ALTER TABLE t ADD COLUMN e varchar(254) NOT NULL;\n",
        &p, err, sizeof(err)) == 0, "column types: parses");
    c = live(&p, "create_table", "id");
    OK(c && c->type && strcmp(c->type, "\"int8\"") == 0,
       "bigserial is int8 in the catalog");
    c = live(&p, "create_table", "n");
    OK(c && c->type && strcmp(c->type, "\"int4\"") == 0,
       "serial is int4 in the catalog");
    c = live(&p, "add_column", "e");
    OK(c && c->type && c->typmod == 258, "ADD COLUMN carries its type");

    migctl_sql_free(&p);
}


static void
test_unverified(void)
{
    char               err[512];
    migctl_sql_plan_t  p;

    /* non-atomic: RunPython last, after the last statement */
    OK(migctl_sql_parse(
        "--\n"
        "-- Concurrently create index i\n"
        "--\n"
        "CREATE INDEX CONCURRENTLY \"i\" ON \"t\" (\"a\");\n"
        "--\n"
        "-- MIGRATION NOW PERFORMS OPERATION THAT CANNOT BE WRITTEN AS SQL:\n"
        "-- Raw Python operation\n"
        "--\n", &p, err, sizeof(err)) == 0, "trailing RunPython: parses");
    OK(!p.atomic, "trailing RunPython: not atomic");
    OK(p.nunver == 1 && strcmp(p.unver[0].what, "RunPython") == 0
       && p.unver[0].stmt == 0 && p.unver[0].line == 7,
       "trailing RunPython: unverified, line 7");
    migctl_sql_free(&p);

    /* only RunPython: no statement, still something to report */
    OK(migctl_sql_parse(
        "BEGIN;\n--\n"
        "-- MIGRATION NOW PERFORMS OPERATION THAT CANNOT BE WRITTEN AS SQL:\n"
        "-- Raw Python operation\n--\nCOMMIT;\n", &p, err, sizeof(err))
       == 0, "RunPython only: parses");
    OK(p.nunver == 1 && nlive(&p) == 0, "RunPython only: one unverified");
    migctl_sql_free(&p);

    OK(migctl_sql_parse(
        "--\n-- Raw SQL operation\n--\n"
        "INSERT INTO t VALUES (1);\n"
        "DO $$ BEGIN NULL; END $$;\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
        "--\n-- Alter field x on t\n--\n"
        "UPDATE t SET x = 0 WHERE x IS NULL;\n"
        "ALTER TABLE t ALTER COLUMN x SET NOT NULL;\n"
        "SET CONSTRAINTS \"fk\" IMMEDIATE;\n"
        "ALTER TABLE t ALTER COLUMN id ADD GENERATED BY DEFAULT AS"
        " IDENTITY;\n",
        &p, err, sizeof(err)) == 0, "RunSQL: parses");
    OK(p.nunver == 4, "RunSQL: 4 unverified (got %zu)", p.nunver);
    OK(p.nunver == 4 && strcmp(p.unver[3].what,
                               "ALTER TABLE AT_AddIdentity") == 0,
       "RunSQL: ALTER TABLE subcommand named (%s)",
       p.nunver == 4 ? p.unver[3].what : "");
    OK(p.nunver >= 3 && strcmp(p.unver[0].what, "INSERT") == 0
       && strcmp(p.unver[1].what, "DO") == 0
       && strcmp(p.unver[2].what, "CREATE FUNCTION") == 0,
       "RunSQL: INSERT, DO, CREATE FUNCTION");
    OK(p.nunver >= 1 && p.unver[0].sql
       && strcmp(p.unver[0].sql, "INSERT INTO t VALUES (1)") == 0,
       "RunSQL: the statement text is kept");
    OK(live(&p, "set_not_null", "x") != NULL,
       "AlterField backfill UPDATE is covered by SET NOT NULL");
    migctl_sql_free(&p);
}


static void
test_other_objects(void)
{
    char                       err[512];
    migctl_sql_plan_t          p;
    const migctl_sql_check_t  *c;

    OK(migctl_sql_parse(
        "CREATE EXTENSION IF NOT EXISTS \"hstore\";\n"
        "DROP EXTENSION citext, unaccent;\n"
        "CREATE SEQUENCE s.seq1;\n"
        "DROP SEQUENCE seq2;\n"
        "CREATE OR REPLACE VIEW v1 AS SELECT 1;\n"
        "DROP VIEW v2;\n"
        "CREATE TRIGGER trg BEFORE INSERT ON s.t FOR EACH ROW"
        " EXECUTE FUNCTION f();\n"
        "DROP TRIGGER old ON t2;\n"
        "DROP TRIGGER trg ON s.t;\n"
        "DROP FUNCTION f();\n"
        "DROP TABLE t3;\n", &p, err, sizeof(err)) == 0,
       "other objects: parses");

    c = live(&p, "create_extension", "hstore");
    OK(c && c->kind == MIGCTL_SQL_EXTENSION && c->expect == 1,
       "CREATE EXTENSION");
    OK(live(&p, "drop_extension", "citext") != NULL
       && live(&p, "drop_extension", "unaccent") != NULL,
       "DROP EXTENSION a, b");
    c = live(&p, "create_sequence", "seq1");
    OK(c && c->kind == MIGCTL_SQL_SEQUENCE && c->schema
       && strcmp(c->schema, "s") == 0, "CREATE SEQUENCE s.seq1");
    OK(live(&p, "drop_sequence", "seq2") != NULL, "DROP SEQUENCE");
    c = live(&p, "create_view", "v1");
    OK(c && c->kind == MIGCTL_SQL_VIEW, "CREATE OR REPLACE VIEW");
    OK(live(&p, "drop_view", "v2") != NULL, "DROP VIEW");
    OK(live(&p, "create_trigger", "trg") == NULL,
       "CREATE then DROP TRIGGER: create forgotten");
    c = live(&p, "drop_trigger", "trg");
    OK(c && c->schema && strcmp(c->schema, "s") == 0
       && strcmp(c->table, "t") == 0 && c->expect == 0,
       "DROP TRIGGER trg ON s.t");
    c = live(&p, "drop_trigger", "old");
    OK(c && c->schema == NULL && strcmp(c->table, "t2") == 0,
       "DROP TRIGGER old ON t2");
    OK(p.nunver == 1 && strcmp(p.unver[0].what, "DROP FUNCTION") == 0,
       "DROP FUNCTION unverified, named (%s)",
       p.nunver ? p.unver[0].what : "");

    migctl_sql_free(&p);
}


static void
test_errors(void)
{
    char               err[512];
    migctl_sql_plan_t  p;

    OK(migctl_sql_parse("", &p, err, sizeof(err)) == -1
       && strcmp(err, "no SQL statement in it") == 0, "empty: error");
    migctl_sql_free(&p);

    OK(migctl_sql_parse("  \n-- just a comment\n", &p, err, sizeof(err))
       == -1, "comment only: error");
    migctl_sql_free(&p);

    /*
     * one statement that does not parse: listed with its line and
     * message, the rest still read (issue 7: no longer a whole-file error)
     */
    OK(migctl_sql_parse("SELECT 1;\nALTER TABLE;\n"
                        "ALTER TABLE \"t\" ADD COLUMN \"c\" int NULL;\n",
                        &p, err, sizeof(err)) == 0,
       "one bad statement: parses the rest");
    OK(p.nbad == 1 && p.nstmts == 3, "one bad statement: 1 of 3 (%d of %d)",
       p.nbad, p.nstmts);
    OK(live(&p, "add_column", "c") != NULL,
       "one bad statement: the next one is checked");
    OK(p.nunver == 2 && p.unver[1].line == 2 && p.unver[1].stmt == 2
       && strcmp(p.unver[1].what, "unparsable statement") == 0,
       "one bad statement: unverified, line 2");
    OK(p.unver[1].error
       && strcmp(p.unver[1].error, "syntax error at or near \";\" at line "
                 "2, column 12 (position 22)") == 0,
       "one bad statement: message with line, column, position (%s)",
       p.unver[1].error ? p.unver[1].error : "-");
    migctl_sql_free(&p);

    /* nothing parses: the file is not SQL at all */
    OK(migctl_sql_parse("ALTER TABLE;\nfoo bar;\n", &p, err, sizeof(err))
       == -1, "garbage: error");
    OK(strcmp(err, "syntax error at or near \";\" at line 1, column 12 "
                   "(position 12)") == 0, "garbage: message (%s)", err);
    migctl_sql_free(&p);

    OK(migctl_sql_parse("SELECT 'é';\nSELECT é é é;", &p, err, sizeof(err))
       == 0 && p.nbad == 1 && p.unver[1].error,
       "garbage after UTF-8: one bad statement");
    OK(p.nbad == 1 && strstr(p.unver[1].error, "line 2, column 12") != NULL,
       "garbage after UTF-8: column in characters (%s)",
       p.nbad == 1 ? p.unver[1].error : "-");
    migctl_sql_free(&p);

    /* a quote left open: the scanner cannot split it */
    OK(migctl_sql_parse("SELECT 1;\nSELECT 'x;\n", &p, err, sizeof(err))
       == -1, "unterminated quote: error");
    OK(strstr(err, "unterminated quoted string") != NULL,
       "unterminated quote: message (%s)", err);
    migctl_sql_free(&p);
}


/* Django 3.2 AlterField null -> not null with a default, and IF EXISTS */
static void
test_weak(void)
{
    char                       err[512], key[64];
    migctl_sql_plan_t          p;
    const migctl_sql_check_t  *c;

    OK(migctl_sql_parse(
        "BEGIN;\n"
        "ALTER TABLE \"a_t\" ALTER COLUMN \"n\" SET DEFAULT 0;\n"
        "UPDATE \"a_t\" SET \"n\" = 0 WHERE \"n\" IS NULL;\n"
        "ALTER TABLE \"a_t\" ALTER COLUMN \"n\" SET NOT NULL;\n"
        "ALTER TABLE \"a_t\" ALTER COLUMN \"n\" DROP DEFAULT;\n"
        "ALTER TABLE \"a_t\" ALTER COLUMN \"m\" DROP NOT NULL;\n"
        "ALTER TABLE \"a_t\" ALTER COLUMN \"d\" SET DEFAULT 'x';\n"
        "ALTER TABLE \"a_t\" DROP CONSTRAINT IF EXISTS \"k\";\n"
        "ALTER TABLE \"a_t\" DROP CONSTRAINT \"k2\";\n"
        "DROP INDEX IF EXISTS \"i\";\n"
        "COMMIT;\n", &p, err, sizeof(err)) == 0, "weak: parses");

    c = live(&p, "drop_default", "n");
    OK(c && c->weak, "weak: drop default");
    c = live(&p, "set_not_null", "n");
    OK(c && !c->weak, "strong: set not null");
    c = live(&p, "drop_not_null", "m");
    OK(c && c->weak, "weak: drop not null");
    c = live(&p, "set_default", "d");
    OK(c && !c->weak && c->defkey && strcmp(c->defkey, "x") == 0,
       "set default: value kept (%s)", c && c->defkey ? c->defkey : "-");
    c = live(&p, "drop_constraint", "k");
    OK(c && c->weak, "weak: drop constraint if exists");
    c = live(&p, "drop_constraint", "k2");
    OK(c && !c->weak, "strong: drop constraint");
    c = live(&p, "drop_index", "i");
    OK(c && c->weak, "weak: drop index if exists");
    migctl_sql_free(&p);

    OK(migctl_sql_expr_key("'x'::character varying", key, sizeof(key)) == 0
       && strcmp(key, "x") == 0, "key: cast stripped (%s)", key);
    OK(migctl_sql_expr_key("'-1'::integer", key, sizeof(key)) == 0
       && strcmp(key, "-1") == 0, "key: negative number (%s)", key);
    OK(migctl_sql_expr_key("-1", key, sizeof(key)) == 0
       && strcmp(key, "-1") == 0, "key: negative literal (%s)", key);
    OK(migctl_sql_expr_key("true", key, sizeof(key)) == 0
       && strcmp(key, "true") == 0, "key: boolean (%s)", key);
    OK(migctl_sql_expr_key("now()", key, sizeof(key)) == 0
       && strcmp(key, "now()") == 0, "key: function (%s)", key);
    OK(migctl_sql_expr_key("a + 1", key, sizeof(key)) == -1,
       "key: an expression is not compared");
    OK(migctl_sql_expr_key("1; DROP TABLE x", key, sizeof(key)) == -1,
       "key: two statements are not an expression");
}


/* migctl_sql_parse_add(): a history of migrations makes one final state */
static void
test_history(void)
{
    char                       err[512];
    migctl_sql_plan_t          p;
    const migctl_sql_check_t  *c;

    memset(&p, 0, sizeof(p));

    OK(migctl_sql_parse_add("BEGIN;\nCREATE TABLE \"h_t\" (\"id\" int);\n"
                            "COMMIT;\n", 0, &p, err, sizeof(err)) == 0,
       "history: 0001 parses");
    OK(migctl_sql_parse_add("ALTER TABLE \"h_t\" ADD COLUMN \"a\" int;\n"
                            "ALTER TABLE \"h_t\" ADD COLUMN \"b\" int;\n",
                            1, &p, err, sizeof(err)) == 0,
       "history: 0002 parses");
    OK(migctl_sql_parse_add("ALTER TABLE \"h_t\" DROP COLUMN \"a\";\n"
                            "ALTER TABLE \"h_t\" RENAME TO \"h_u\";\n",
                            2, &p, err, sizeof(err)) == 0,
       "history: 0003 parses");
    OK(migctl_sql_parse_add("--\n-- Change Meta options on t\n--\n", 3, &p,
                            err, sizeof(err)) == -1
       && strcmp(err, "no SQL statement in it") == 0,
       "history: a migration without SQL says so");

    c = live(&p, "drop_column", "a");
    OK(c && c->tag == 2 && c->line == 1 && c->stmt == 1,
       "history: a dropped column is 0003's (tag %d)", c ? c->tag : -1);
    OK(live(&p, "add_column", "a") == NULL,
       "history: 0002's column a is no longer checked");
    c = live(&p, "add_column", "b");
    OK(c && c->tag == 1 && c->table && strcmp(c->table, "h_u") == 0,
       "history: 0002's column b follows 0003's rename (%s)",
       c && c->table ? c->table : "-");
    c = live(&p, "rename_table", "h_u");
    OK(c && c->tag == 2 && live(&p, "create_table", "h_u") == NULL,
       "history: the table is checked once, as 0003 leaves it");
    OK(p.nstmts == 7, "history: 7 statements (%d)", p.nstmts);
    migctl_sql_free(&p);
}

static const migctl_sql_check_t *
live(const migctl_sql_plan_t *p, const char *action, const char *name)
{
    size_t  i;

    for (i = 0; i < p->nchecks; i++) {
        if (!p->checks[i].dead && strcmp(p->checks[i].action, action) == 0
            && strcmp(p->checks[i].name, name) == 0)
        {
            return &p->checks[i];
        }
    }

    return NULL;
}


static size_t
nlive(const migctl_sql_plan_t *p)
{
    size_t  i, n;

    n = 0;
    for (i = 0; i < p->nchecks; i++) {
        n += !p->checks[i].dead;
    }

    return n;
}


static void
ok_(int pass, const char *fmt, ...)
{
    va_list  ap;

    tests++;
    if (!pass) {
        failed++;
    }

    printf("%s %d - ", pass ? "ok" : "not ok", tests);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}
