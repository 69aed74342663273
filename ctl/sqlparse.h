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
    int          stmt;         /* 1-based statement number */
    int          line;         /* 1-based line of its first token */
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
} migctl_sql_check_t;

/* something the catalog cannot confirm: RunPython, DML, DO blocks... */
typedef struct {
    int          stmt;         /* 0 for an operation without SQL */
    int          line;
    int          op;
    char        *what;         /* "RunPython", "InsertStmt", ... */
    char        *sql;          /* first 200 bytes, or NULL */
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
} migctl_sql_plan_t;


/*
 * Parses text (NUL-terminated).  Returns 0, or -1 with a one-line reason
 * in err: libpg_query's message with line, column and position, "no SQL
 * statement" for an empty file, or out of memory.  The plan is zeroed
 * first; migctl_sql_free() it in both cases.
 */
int migctl_sql_parse(const char *text, migctl_sql_plan_t *plan, char *err,
    size_t errlen);

void migctl_sql_free(migctl_sql_plan_t *plan);

#endif /* MIGCTL_SQLPARSE_H */
