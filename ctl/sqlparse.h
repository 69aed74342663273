/*
 * sqlparse.h: reads `manage.py sqlmigrate` output with libpg_query into
 * the list of catalog checks that `inspect` runs, plus what it cannot check.
 */

#ifndef MIGCTL_SQLPARSE_H
#define MIGCTL_SQLPARSE_H

#include <stddef.h>


/* what a check looks at */
#define MIGCTL_SQL_TABLE        1
#define MIGCTL_SQL_COLUMN       2
#define MIGCTL_SQL_INDEX        3
#define MIGCTL_SQL_CONSTRAINT   4
#define MIGCTL_SQL_SEQUENCE     5
#define MIGCTL_SQL_VIEW         6
#define MIGCTL_SQL_EXTENSION    7
#define MIGCTL_SQL_TRIGGER      8   /* by name on its table */

/* which property of it */
#define MIGCTL_SQL_PRESENCE     1   /* expect: 1 present, 0 absent */
#define MIGCTL_SQL_TYPE         2   /* type, typmod */
#define MIGCTL_SQL_NOTNULL      3   /* expect: 1 not null, 0 nullable */
#define MIGCTL_SQL_DEFAULT      4   /* expect: 1 a default, 0 none */


/*
 * One expectation about the final state of one object.  A later
 * statement about the same object and property replaces an earlier one
 * (ADD COLUMN ... DEFAULT then DROP DEFAULT: only "no default" is
 * checked); a DROP removes every earlier check on what it drops.
 * Strings are malloc'ed and owned by the plan.
 */
typedef struct {
    int          tag;          /* migctl_sql_parse_add()'s: whose it is */
    int          stmt;         /* 1-based statement number */
    int          line;         /* 1-based line of its first token */
    size_t       start;        /* its statement: text[start, end) */
    size_t       end;
    int          op;           /* index into plan->ops, or -1 */
    const char  *action;       /* static: "add_column", ... */
    int          kind;         /* MIGCTL_SQL_TABLE ... */
    int          aspect;       /* MIGCTL_SQL_PRESENCE ... */
    int          expect;
    int          dead;         /* replaced by a later statement */
    char        *schema;       /* NULL: the search_path */
    char        *table;        /* the table of a column, constraint,
                                  index or trigger; else NULL */
    char        *name;         /* table, column, index or constraint */
    char        *type;         /* TYPE: "pg_catalog.varchar[]" form */
    int          typmod;       /* TYPE: -1 when not checked */
    int          unique;       /* INDEX: created UNIQUE */
    char         contype;      /* CONSTRAINT: 'u' 'f' 'c' 'p' 'x' or 0 */
    int          validated;    /* CONSTRAINT: must be validated */
    int          weak;         /* the end state may hold before the
                                  migration ran (DROP DEFAULT, DROP NOT
                                  NULL, DROP ... IF EXISTS): no proof
                                  that it ran */
    char        *defkey;       /* DEFAULT: the expected value as
                                  migctl_sql_expr_key() gives it, or
                                  NULL when it cannot be compared */
} migctl_sql_check_t;

/* something the catalog cannot confirm: RunPython, DML, DO blocks... */
typedef struct {
    int          tag;
    int          stmt;         /* 0 for an operation without SQL */
    int          line;
    int          op;
    char        *what;         /* "RunPython", "InsertStmt", ... */
    char        *sql;          /* first 200 bytes, or NULL */
    char        *error;        /* a statement that does not parse:
                                  libpg_query's message; else NULL */
} migctl_sql_unverified_t;

typedef struct {
    migctl_sql_check_t       *checks;
    size_t                    nchecks;
    size_t                    achecks;
    migctl_sql_unverified_t  *unver;
    size_t                    nunver;
    size_t                    aunver;
    char                    **ops;      /* "-- Add field x to y" texts */
    size_t                    nops;
    size_t                    aops;
    int                       nstmts;   /* statements parsed */
    int                       atomic;   /* BEGIN ... COMMIT seen */
    int                       nbad;     /* statements that do not parse
                                           (listed in unver) */
} migctl_sql_plan_t;


/*
 * Parses text (NUL-terminated), statement by statement (libpg_query's
 * scanner splits it): a statement that does not parse is listed as
 * unverified with its line and message, and the rest is checked.
 * Returns 0, or -1 with a one-line reason in err: libpg_query's message
 * with line, column and position when the text cannot be split or no
 * statement of it parses, "no SQL statement" for an empty file, or out
 * of memory.  The plan is zeroed first; migctl_sql_free() it in both
 * cases.
 */
int migctl_sql_parse(const char *text, migctl_sql_plan_t *plan, char *err,
    size_t errlen);

/*
 * The same for one more text, appended to a plan (not zeroed): its
 * statements replace what earlier texts said of the same objects, as
 * later statements of one file do, so the plan of a whole migration
 * history is the final state it leaves.  tag marks its checks and
 * unverified entries; stmt and line count in this text.  On -1 what it
 * added stays in the plan.
 */
int migctl_sql_parse_add(const char *text, int tag, migctl_sql_plan_t *plan,
    char *err, size_t errlen);

void migctl_sql_free(migctl_sql_plan_t *plan);

/*
 * The comparable form of a default expression, as the server prints it
 * (pg_get_expr) or as a migration writes it: casts stripped, a constant
 * by its value ("0", "abc", "true", "NULL"), a function call by its name
 * and arguments ("now()").  0, or -1 when it is something else (then
 * only the presence of a default is compared).
 */
int migctl_sql_expr_key(const char *expr, char *buf, size_t len);

#endif /* MIGCTL_SQLPARSE_H */
