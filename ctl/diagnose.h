/*
 * diagnose.h: what cmd_diagnose.c (the evidence, the output) shares with
 * diagnose_decide.c (state and class -> path, reasons, risks, next).
 */

#ifndef MIGCTL_DIAGNOSE_H
#define MIGCTL_DIAGNOSE_H

#include <stddef.h>
#include <jansson.h>


/* the database state, from the inspect verdict (README: recovery path) */
#define ST_UNCHANGED    0       /* not applied, nothing left behind */
#define ST_PARTIAL      1       /* part done, or cannot prove otherwise */
#define ST_APPLIED      2       /* recorded and in place */
#define ST_RECORDED     3       /* recorded, schema does not match */
#define ST_PRESENT      4       /* every object in place, no record */


typedef struct {
    const char  *app;
    const char  *migration;
    const char  *sqlfile;

    json_t      *insp;          /* migctl_inspect_run(), or NULL */
    json_t      *migs;          /* migctl_migrations_run() */
    json_t      *cls;           /* migctl_classify_text(), or NULL */
    json_t      *holders;       /* sessions holding the tables, or NULL */
    char        *tbtext;        /* the traceback as given, or NULL */
    int          nosql;         /* no --sql: Django could not load the
                                   migration graph, nothing ran */
    const char  *manage;        /* how to run manage.py, or NULL */
    json_t      *drift;         /* the earlier migration at fault, or
                                   NULL: {"app", "name", "status",
                                   "object", "repair"} */
    json_t      *verify;        /* migctl_verify_check(), or NULL */
    const char  *prev_manage;   /* the previous release's, or NULL */
    json_t      *doc;           /* migctl_verify_django() of manage, or
                                   NULL: read once, for the squashes'
                                   replaces lists and for drift */
    json_t      *prev_doc;      /* the same of prev_manage */
    char         doc_error[1024]; /* why doc is NULL with manage */

    const char  *verdict;
    const char  *klass;         /* "none" without --traceback */
    const char  *sqlstate;
    int          state;
    int          atomic;
    int          rollback;      /* 1 safe, 0 unsafe, -1 unknown */
    long         done;
    long         not_done;
    long         invalid;
    long         unverified;

    const char  *path;
    const char  *given;         /* --migration as typed, when a prefix */
    char         name[256];     /* the full name a prefix stands for */
    json_t      *reasons;
    json_t      *risks;
    json_t      *next;
} dg_t;


/*
 * diagnose_decide.c: migctl_diagnose_derive() reads the verdict, counts,
 * class and rollback_safe of the evidence into d; migctl_diagnose_decide()
 * sets d->path and fills d->reasons, d->risks and d->next (arrays the
 * caller made); quote_ident: "schema"."name" for SQL in a shell word.
 */
void migctl_diagnose_derive(dg_t *d);
void migctl_diagnose_decide(dg_t *d);
void migctl_diagnose_quote_ident(char *buf, size_t len, const char *schema,
    const char *name);


static inline const char *
str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

#endif /* MIGCTL_DIAGNOSE_H */
