/*
 * sqlparse.c: `manage.py sqlmigrate` output through libpg_query's typed
 * parse tree (protobuf-c) into the checks and the unverified list of inspect.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "sqlparse.h"
#include "sqlnode.h"


#define SQL_SNIPPET_MAX  200

/* Django's marker for an operation with no SQL form (RunPython) */
#define DJANGO_NO_SQL    "MIGRATION NOW PERFORMS OPERATION THAT CANNOT BE " \
                         "WRITTEN AS SQL"


typedef struct {
    migctl_sql_plan_t  *plan;
    const char         *text;
    int                 tag;
    size_t              start;        /* the statement being read */
    size_t              end;
    int                 stmt;
    int                 line;
    int                 op;
    int                 oom;
    size_t              line_off;     /* line_of() cache: offset ... */
    int                 line_no;      /* ... and its line */
} sql_walk_t;


static int one_statement(sql_walk_t *w, size_t from, size_t to, char *msg,
    size_t msglen);
static void error_at(sql_walk_t *w, size_t base, const char *message,
    int pos, char *err, size_t errlen);
static int scan_comments(sql_walk_t *w, size_t from, size_t to,
    size_t *first);
static int line_of(sql_walk_t *w, size_t off);
static void statement(sql_walk_t *w, PgQuery__Node *n, size_t start,
    size_t end);
static void create_table(sql_walk_t *w, PgQuery__CreateStmt *cs);
static void alter_table(sql_walk_t *w, PgQuery__AlterTableStmt *as,
    size_t start, size_t end);
static void column_constraints(sql_walk_t *w, PgQuery__RangeVar *rv,
    PgQuery__ColumnDef *cd);
static void table_constraint(sql_walk_t *w, PgQuery__RangeVar *rv,
    PgQuery__Constraint *c, const char *action);
static void create_index(sql_walk_t *w, PgQuery__IndexStmt *is);
static void drop(sql_walk_t *w, PgQuery__DropStmt *ds, size_t start,
    size_t end);
static void rename_stmt(sql_walk_t *w, PgQuery__RenameStmt *rs, size_t start,
    size_t end);
static migctl_sql_check_t *add_check(sql_walk_t *w, const char *action,
    int kind, int aspect, int expect, const char *schema, const char *table,
    const char *name);
static void forget(sql_walk_t *w, int kind, const char *schema,
    const char *table, const char *name);
static void rename_refs(sql_walk_t *w, int kind, const char *schema,
    const char *table, const char *from, const char *to);
static void add_unverified(sql_walk_t *w, const char *what, size_t start,
    size_t end);
static void set_type(sql_walk_t *w, migctl_sql_check_t *c,
    PgQuery__TypeName *tn);
static void relation(sql_walk_t *w, const char *action, int kind,
    PgQuery__RangeVar *rv, size_t start, size_t end);
static const char *node_str(PgQuery__Node *n);
static const char *str(const char *s);
static int same(const char *a, const char *b);
static char *dup(sql_walk_t *w, const char *s);
static void *grow(void *p, size_t *alloc, size_t n, size_t size);


int
migctl_sql_parse(const char *text, migctl_sql_plan_t *plan, char *err,
    size_t errlen)
{
    memset(plan, 0, sizeof(*plan));

    return migctl_sql_parse_add(text, 0, plan, err, errlen);
}


int
migctl_sql_parse_add(const char *text, int tag, migctl_sql_plan_t *plan,
    char *err, size_t errlen)
{
    int                  rc, k, nst, nbad;
    char                 msg[512];
    size_t               len, start, end, prev, first, nunver;
    sql_walk_t           w;
    PgQuerySplitResult   sp;

    memset(&w, 0, sizeof(w));
    w.plan = plan;
    w.text = text;
    w.tag = tag;
    w.op = -1;
    w.line_no = 1;
    rc = -1;
    msg[0] = '\0';
    nst = 0;
    nbad = plan->nbad;
    nunver = plan->nunver;

    /*
     * The scanner splits even text that does not parse: one bad statement
     * (a RunSQL typo) is listed and the others are still checked
     */
    sp = pg_query_split_with_scanner(text);

    if (sp.error) {
        error_at(&w, 0, sp.error->message, sp.error->cursorpos, err, errlen);
        goto done;
    }

    len = strlen(text);
    prev = 0;
    end = 0;

    for (k = 0; k < sp.n_stmts; k++) {
        start = sp.stmts[k]->stmt_location < 0
                ? 0 : (size_t) sp.stmts[k]->stmt_location;
        end = sp.stmts[k]->stmt_len <= 0
              ? len : start + (size_t) sp.stmts[k]->stmt_len;
        if (end > len) {
            end = len;
        }
        if (start < prev) {
            start = prev;
        }

        /* Django's "-- Add field x to y" comments lead the statement */
        if (scan_comments(&w, prev, end, &first) != 0) {
            goto oom;
        }

        prev = end;

        if (first >= end) {
            continue;                   /* comments and ";" only */
        }

        w.stmt = ++nst;
        plan->nstmts++;
        w.line = line_of(&w, first);
        w.start = first;
        w.end = end;

        if (one_statement(&w, first, end, plan->nbad > nbad ? NULL : msg,
                          sizeof(msg)) != 0)
        {
            goto oom;
        }

        if (w.oom) {
            goto oom;
        }
    }

    /* comments after the last statement: a non-atomic RunPython */
    w.stmt = 0;
    if (scan_comments(&w, prev, len, &first) != 0) {
        goto oom;
    }

    if (nst == 0 && plan->nunver == nunver) {
        snprintf(err, errlen, "no SQL statement in it");
        goto done;
    }

    /* nothing of it is SQL: the file is not sqlmigrate output */
    if (nst > 0 && plan->nbad - nbad == nst) {
        snprintf(err, errlen, "%s", msg);
        goto done;
    }

    if (w.oom) {
        goto oom;
    }

    rc = 0;
    goto done;

oom:

    snprintf(err, errlen, "out of memory");

done:

    pg_query_free_split_result(sp);

    return rc;
}


void
migctl_sql_free(migctl_sql_plan_t *plan)
{
    size_t  i;

    for (i = 0; i < plan->nchecks; i++) {
        free(plan->checks[i].schema);
        free(plan->checks[i].table);
        free(plan->checks[i].name);
        free(plan->checks[i].type);
        free(plan->checks[i].defkey);
    }

    for (i = 0; i < plan->nunver; i++) {
        free(plan->unver[i].what);
        free(plan->unver[i].sql);
        free(plan->unver[i].error);
    }

    for (i = 0; i < plan->nops; i++) {
        free(plan->ops[i]);
    }

    free(plan->checks);
    free(plan->unver);
    free(plan->ops);
    memset(plan, 0, sizeof(*plan));
}


int
migctl_sql_expr_key(const char *expr, char *buf, size_t len)
{
    int                          rc;
    char                        *sql;
    size_t                       n;
    PgQuery__Node               *st;
    PgQuery__ParseResult        *pr;
    PgQueryProtobufParseResult   res;

    n = strlen(expr);
    sql = malloc(n + 16);
    if (sql == NULL) {
        return -1;
    }

    /* the expression alone, as a one-column SELECT */
    memcpy(sql, "SELECT ", 7);
    memcpy(sql + 7, expr, n);
    sql[n + 7] = '\0';

    rc = -1;
    pr = NULL;
    res = pg_query_parse_protobuf(sql);

    if (res.error) {
        goto done;
    }

    pr = pg_query__parse_result__unpack(NULL, res.parse_tree.len,
                                        (const uint8_t *)
                                        res.parse_tree.data);
    if (pr == NULL || pr->n_stmts != 1 || pr->stmts[0]->stmt == NULL) {
        goto done;
    }

    st = pr->stmts[0]->stmt;
    if (st->node_case != PG_QUERY__NODE__NODE_SELECT_STMT
        || st->select_stmt->n_target_list != 1
        || st->select_stmt->n_from_clause != 0
        || st->select_stmt->target_list[0]->node_case
           != PG_QUERY__NODE__NODE_RES_TARGET
        || st->select_stmt->target_list[0]->res_target->val == NULL)
    {
        goto done;
    }

    rc = migctl_sql_node_key(st->select_stmt->target_list[0]->res_target->val,
                             buf, len) > 0 ? 0 : -1;

done:

    if (pr) {
        pg_query__parse_result__free_unpacked(pr, NULL);
    }
    pg_query_free_protobuf_parse_result(res);
    free(sql);

    return rc;
}


/*
 * Parses the statement in text[from, to) on its own: its checks go into
 * the plan; when it does not parse, it is listed as unverified with
 * libpg_query's message (the first such message, with line, column and
 * position in the file, also goes into msg when msg is not NULL).
 * Returns -1 only when out of memory.
 */
static int
one_statement(sql_walk_t *w, size_t from, size_t to, char *msg,
    size_t msglen)
{
    char                        *copy, buf[512];
    size_t                       i, n;
    PgQuery__ParseResult        *pr;
    PgQueryProtobufParseResult   res;

    /* with its ";": a cut statement reads "syntax error at end of input" */
    n = to - from + (w->text[to] == ';');
    copy = malloc(n + 1);
    if (copy == NULL) {
        return -1;
    }
    memcpy(copy, w->text + from, n);
    copy[n] = '\0';

    res = pg_query_parse_protobuf(copy);
    pr = NULL;

    if (res.error) {
        error_at(w, from, res.error->message, res.error->cursorpos, buf,
                 sizeof(buf));
        if (msg) {
            snprintf(msg, msglen, "%s", buf);
        }
        w->plan->nbad++;
        add_unverified(w, "unparsable statement", from, to);
        if (!w->oom) {
            w->plan->unver[w->plan->nunver - 1].error = dup(w, buf);
        }
        goto done;
    }

    pr = pg_query__parse_result__unpack(NULL, res.parse_tree.len,
                                        (const uint8_t *)
                                        res.parse_tree.data);
    if (pr == NULL) {
        w->oom = 1;
        goto done;
    }

    for (i = 0; i < pr->n_stmts; i++) {
        if (pr->stmts[i]->stmt != NULL) {
            statement(w, pr->stmts[i]->stmt, from, to);
        }
    }

done:

    if (pr) {
        pg_query__parse_result__free_unpacked(pr, NULL);
    }
    pg_query_free_protobuf_parse_result(res);
    free(copy);

    return w->oom ? -1 : 0;
}


/*
 * libpg_query's message with line, column and position in the file: pos
 * counts UTF-8 characters from 1 in the text that starts at byte base.
 */
static void
error_at(sql_walk_t *w, size_t base, const char *message, int pos,
    char *err, size_t errlen)
{
    int          chars, at;
    size_t       off, k, col;
    const char  *text;

    text = w->text;

    if (pos <= 0) {
        snprintf(err, errlen, "%s", message);
        return;
    }

    chars = 0;
    for (off = base; text[off]; off++) {
        if (((unsigned char) text[off] & 0xc0) != 0x80 && ++chars == pos) {
            break;
        }
    }

    /* the position in the whole file, as a whole-file parse gives it */
    at = pos;
    for (k = 0; k < base; k++) {
        if (((unsigned char) text[k] & 0xc0) != 0x80) {
            at++;
        }
    }

    col = 1;
    for (k = off; k > 0 && text[k - 1] != '\n'; k--) {
        if (((unsigned char) text[k - 1] & 0xc0) != 0x80) {
            col++;
        }
    }

    /* line_of() only walks forward from its cache: count from 0 here */
    chars = 1;
    for (k = 0; k < off && text[k]; k++) {
        if (text[k] == '\n') {
            chars++;
        }
    }

    snprintf(err, errlen, "%s at line %d, column %zu (position %d)",
             message, chars, col, at);
}


/*
 * Walks whitespace and comments in [from, to): every "-- text" line that
 * is not Django's frame ("--" alone, the no-SQL marker) names the current
 * operation; a marker line makes the next operation an unverified one.
 * *first is the offset of the first token after them.
 */
static int
scan_comments(sql_walk_t *w, size_t from, size_t to, size_t *first)
{
    int                 no_sql;
    size_t              p, e, n;
    char               *s, **ops;
    const char         *t;
    migctl_sql_plan_t  *plan;

    plan = w->plan;
    t = w->text;
    p = from;
    no_sql = 0;

    while (p < to) {
        if (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' || t[p] == '\r'
            || t[p] == ';')
        {
            p++;
            continue;
        }

        if (t[p] == '/' && p + 1 < to && t[p + 1] == '*') {
            e = p + 2;
            while (e + 1 < to && !(t[e] == '*' && t[e + 1] == '/')) {
                e++;
            }
            p = e + 2 < to ? e + 2 : to;
            continue;
        }

        if (!(t[p] == '-' && p + 1 < to && t[p + 1] == '-')) {
            break;
        }

        e = p;
        while (e < to && t[e] != '\n') {
            e++;
        }

        /* the comment's text, trimmed */
        p += 2;
        while (p < e && (t[p] == ' ' || t[p] == '\t')) {
            p++;
        }
        n = e - p;
        while (n > 0 && (t[p + n - 1] == ' ' || t[p + n - 1] == '\r')) {
            n--;
        }

        if (n == 0) {
            p = e;
            continue;
        }

        if (n >= sizeof(DJANGO_NO_SQL) - 1
            && memcmp(t + p, DJANGO_NO_SQL, sizeof(DJANGO_NO_SQL) - 1) == 0)
        {
            no_sql = 1;
            p = e;
            continue;
        }

        s = malloc(n + 1);
        ops = grow(plan->ops, &plan->aops, plan->nops + 1, sizeof(char *));
        if (s == NULL || ops == NULL) {
            free(s);
            return -1;
        }
        plan->ops = ops;
        memcpy(s, t + p, n);
        s[n] = '\0';
        plan->ops[plan->nops] = s;
        w->op = (int) plan->nops++;

        if (no_sql) {
            int  save = w->stmt;

            /* RunPython and any other operation without SQL */
            w->stmt = 0;
            w->line = line_of(w, p);
            add_unverified(w, strcmp(s, "Raw Python operation") == 0
                              ? "RunPython" : "operation without SQL",
                           0, 0);
            w->stmt = save;
            no_sql = 0;
            if (w->oom) {
                return -1;
            }
        }

        p = e;
    }

    *first = p;

    return 0;
}


/* offsets only grow while we walk: count from the last one, not from 0 */
static int
line_of(sql_walk_t *w, size_t off)
{
    size_t  i;

    if (off < w->line_off) {
        w->line_off = 0;
        w->line_no = 1;
    }

    for (i = w->line_off; i < off && w->text[i]; i++) {
        if (w->text[i] == '\n') {
            w->line_no++;
        }
    }

    w->line_off = i;

    return w->line_no;
}


static void
statement(sql_walk_t *w, PgQuery__Node *n, size_t start, size_t end)
{
    switch (n->node_case) {

    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
        if (n->transaction_stmt->kind
            == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN
            || n->transaction_stmt->kind
               == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START)
        {
            w->plan->atomic = 1;
        }
        return;

    /* session settings: SET CONSTRAINTS ... IMMEDIATE, SET x = y */
    case PG_QUERY__NODE__NODE_CONSTRAINTS_SET_STMT:
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
        return;

    case PG_QUERY__NODE__NODE_CREATE_STMT:
        create_table(w, n->create_stmt);
        return;

    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
        alter_table(w, n->alter_table_stmt, start, end);
        return;

    case PG_QUERY__NODE__NODE_INDEX_STMT:
        create_index(w, n->index_stmt);
        return;

    case PG_QUERY__NODE__NODE_DROP_STMT:
        drop(w, n->drop_stmt, start, end);
        return;

    case PG_QUERY__NODE__NODE_RENAME_STMT:
        rename_stmt(w, n->rename_stmt, start, end);
        return;

    /* RunSQL and contrib.postgres operations */
    case PG_QUERY__NODE__NODE_CREATE_EXTENSION_STMT:
        add_check(w, "create_extension", MIGCTL_SQL_EXTENSION,
                  MIGCTL_SQL_PRESENCE, 1, NULL, NULL,
                  n->create_extension_stmt->extname);
        return;

    case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT:
        relation(w, "create_sequence", MIGCTL_SQL_SEQUENCE,
                 n->create_seq_stmt->sequence, start, end);
        return;

    case PG_QUERY__NODE__NODE_VIEW_STMT:
        relation(w, "create_view", MIGCTL_SQL_VIEW, n->view_stmt->view,
                 start, end);
        return;

    case PG_QUERY__NODE__NODE_CREATE_TRIG_STMT:
        if (n->create_trig_stmt->relation == NULL) {
            break;
        }
        add_check(w, "create_trigger", MIGCTL_SQL_TRIGGER,
                  MIGCTL_SQL_PRESENCE, 1,
                  str(n->create_trig_stmt->relation->schemaname),
                  n->create_trig_stmt->relation->relname,
                  n->create_trig_stmt->trigname);
        return;

    /*
     * Django's own backfill in AlterField (null -> not null): the SET NOT
     * NULL that follows it is checked, and cannot hold without it
     */
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
        if (w->op >= 0
            && strncmp(w->plan->ops[w->op], "Alter field ", 12) == 0)
        {
            return;
        }
        break;

    default:
        break;
    }

    add_unverified(w, migctl_sql_node_name(n), start, end);
}


static void
create_table(sql_walk_t *w, PgQuery__CreateStmt *cs)
{
    size_t               i;
    PgQuery__Node       *e;
    PgQuery__RangeVar   *rv;
    migctl_sql_check_t  *c;

    rv = cs->relation;
    if (rv == NULL) {
        return;
    }

    /* a table created anew replaces whatever was said of the old one */
    forget(w, MIGCTL_SQL_TABLE, str(rv->schemaname), NULL, rv->relname);
    add_check(w, "create_table", MIGCTL_SQL_TABLE, MIGCTL_SQL_PRESENCE, 1,
              str(rv->schemaname), NULL, rv->relname);

    for (i = 0; i < cs->n_table_elts; i++) {
        e = cs->table_elts[i];

        if (e->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF) {
            c = add_check(w, "create_table", MIGCTL_SQL_COLUMN,
                          MIGCTL_SQL_PRESENCE, 1, str(rv->schemaname),
                          rv->relname, e->column_def->colname);
            if (c) {
                set_type(w, c, e->column_def->type_name);
            }
            column_constraints(w, rv, e->column_def);

        } else if (e->node_case == PG_QUERY__NODE__NODE_CONSTRAINT) {
            table_constraint(w, rv, e->constraint, "create_table");
        }
    }
}


static void
alter_table(sql_walk_t *w, PgQuery__AlterTableStmt *as, size_t start,
    size_t end)
{
    size_t                   i;
    char                     key[256];
    const char              *schema, *table, *col;
    PgQuery__Node           *n;
    PgQuery__AlterTableCmd  *cmd;
    migctl_sql_check_t      *c;

    if (as->relation == NULL
        || (as->objtype != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE
            && as->objtype != PG_QUERY__OBJECT_TYPE__OBJECT_TYPE_UNDEFINED))
    {
        add_unverified(w, "ALTER", start, end);
        return;
    }

    schema = str(as->relation->schemaname);
    table = as->relation->relname;

    for (i = 0; i < as->n_cmds; i++) {
        n = as->cmds[i];
        if (n->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD) {
            continue;
        }
        cmd = n->alter_table_cmd;
        col = str(cmd->name);

        switch (cmd->subtype) {

        case PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn:
            if (cmd->def == NULL
                || cmd->def->node_case != PG_QUERY__NODE__NODE_COLUMN_DEF)
            {
                break;
            }
            forget(w, MIGCTL_SQL_COLUMN, schema, table,
                   cmd->def->column_def->colname);
            c = add_check(w, "add_column", MIGCTL_SQL_COLUMN,
                          MIGCTL_SQL_PRESENCE, 1, schema, table,
                          cmd->def->column_def->colname);
            if (c) {
                /* a same-named column of another type is not this one */
                set_type(w, c, cmd->def->column_def->type_name);
            }
            column_constraints(w, as->relation, cmd->def->column_def);
            break;

        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn:
            forget(w, MIGCTL_SQL_COLUMN, schema, table, col);
            c = add_check(w, "drop_column", MIGCTL_SQL_COLUMN,
                          MIGCTL_SQL_PRESENCE, 0, schema, table, col);
            if (c) {
                c->weak = cmd->missing_ok;
            }
            break;

        case PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType:
            c = add_check(w, "alter_column_type", MIGCTL_SQL_COLUMN,
                          MIGCTL_SQL_TYPE, 1, schema, table, col);
            if (c && cmd->def
                && cmd->def->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF)
            {
                set_type(w, c, cmd->def->column_def->type_name);
            }
            break;

        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull:
            add_check(w, "set_not_null", MIGCTL_SQL_COLUMN,
                      MIGCTL_SQL_NOTNULL, 1, schema, table, col);
            break;

        /*
         * "nullable" and "no default" hold as well before a migration
         * that never ran (Django's AlterField drops a default that it
         * set a statement earlier): weak, no proof of progress alone
         */
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropNotNull:
            c = add_check(w, "drop_not_null", MIGCTL_SQL_COLUMN,
                          MIGCTL_SQL_NOTNULL, 0, schema, table, col);
            if (c) {
                c->weak = 1;
            }
            break;

        case PG_QUERY__ALTER_TABLE_TYPE__AT_ColumnDefault:
            c = add_check(w, cmd->def ? "set_default" : "drop_default",
                          MIGCTL_SQL_COLUMN, MIGCTL_SQL_DEFAULT,
                          cmd->def ? 1 : 0, schema, table, col);
            if (c == NULL) {
                break;
            }
            if (cmd->def == NULL) {
                c->weak = 1;

            } else if (migctl_sql_node_key(cmd->def, key, sizeof(key)) > 0) {
                c->defkey = dup(w, key);
            }
            break;

        case PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint:
            if (cmd->def
                && cmd->def->node_case == PG_QUERY__NODE__NODE_CONSTRAINT)
            {
                table_constraint(w, as->relation, cmd->def->constraint,
                                 "add_constraint");
            }
            break;

        case PG_QUERY__ALTER_TABLE_TYPE__AT_ValidateConstraint:
            c = add_check(w, "validate_constraint", MIGCTL_SQL_CONSTRAINT,
                          MIGCTL_SQL_PRESENCE, 1, schema, table, col);
            if (c) {
                c->validated = 1;
            }
            break;

        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropConstraint:
            forget(w, MIGCTL_SQL_CONSTRAINT, schema, table, col);
            c = add_check(w, "drop_constraint", MIGCTL_SQL_CONSTRAINT,
                          MIGCTL_SQL_PRESENCE, 0, schema, table, col);
            if (c) {
                c->weak = cmd->missing_ok;
            }
            break;

        default:
            add_unverified(w, migctl_sql_alter_name(cmd->subtype), start,
                           end);
            break;
        }
    }
}


/* named column constraints: "x" int CONSTRAINT "u" UNIQUE */
static void
column_constraints(sql_walk_t *w, PgQuery__RangeVar *rv,
    PgQuery__ColumnDef *cd)
{
    size_t  i;

    for (i = 0; i < cd->n_constraints; i++) {
        if (cd->constraints[i]->node_case
            == PG_QUERY__NODE__NODE_CONSTRAINT
            && migctl_sql_contype(cd->constraints[i]->constraint->contype) != 0
            && str(cd->constraints[i]->constraint->conname) != NULL)
        {
            table_constraint(w, rv, cd->constraints[i]->constraint,
                             "add_constraint");
        }
    }
}


static void
table_constraint(sql_walk_t *w, PgQuery__RangeVar *rv, PgQuery__Constraint *c,
    const char *action)
{
    char                 ct;
    migctl_sql_check_t  *k;

    ct = migctl_sql_contype(c->contype);
    if (ct == 0) {
        return;
    }

    if (str(c->conname) == NULL) {
        /* unnamed: the catalog name is the server's choice */
        if (strcmp(action, "add_constraint") == 0) {
            add_unverified(w, "unnamed constraint", 0, 0);
        }
        return;
    }

    forget(w, MIGCTL_SQL_CONSTRAINT, str(rv->schemaname), rv->relname,
           c->conname);
    k = add_check(w, action, MIGCTL_SQL_CONSTRAINT, MIGCTL_SQL_PRESENCE, 1,
                  str(rv->schemaname), rv->relname, c->conname);
    if (k) {
        k->contype = ct;
        k->validated = !c->skip_validation;
    }
}


static void
create_index(sql_walk_t *w, PgQuery__IndexStmt *is)
{
    const char          *schema;
    migctl_sql_check_t  *c;

    if (is->relation == NULL || str(is->idxname) == NULL) {
        add_unverified(w, "unnamed index", 0, 0);
        return;
    }

    /* an index lives in its table's schema */
    schema = str(is->relation->schemaname);

    forget(w, MIGCTL_SQL_INDEX, schema, NULL, is->idxname);
    c = add_check(w, "create_index", MIGCTL_SQL_INDEX, MIGCTL_SQL_PRESENCE,
                  1, schema, is->relation->relname, is->idxname);
    if (c) {
        c->unique = is->unique;
    }
}


static void
drop(sql_walk_t *w, PgQuery__DropStmt *ds, size_t start, size_t end)
{
    int                  kind;
    size_t               i;
    const char          *schema, *name, *action;
    PgQuery__List       *l;
    PgQuery__Node       *o;
    migctl_sql_check_t  *c;

    switch (ds->remove_type) {

    case PG_QUERY__OBJECT_TYPE__OBJECT_TABLE:
        kind = MIGCTL_SQL_TABLE;
        action = "drop_table";
        break;

    case PG_QUERY__OBJECT_TYPE__OBJECT_INDEX:
        kind = MIGCTL_SQL_INDEX;
        action = "drop_index";
        break;

    case PG_QUERY__OBJECT_TYPE__OBJECT_SEQUENCE:
        kind = MIGCTL_SQL_SEQUENCE;
        action = "drop_sequence";
        break;

    case PG_QUERY__OBJECT_TYPE__OBJECT_VIEW:
        kind = MIGCTL_SQL_VIEW;
        action = "drop_view";
        break;

    case PG_QUERY__OBJECT_TYPE__OBJECT_EXTENSION:
        /* objects are plain names here, not lists */
        for (i = 0; i < ds->n_objects; i++) {
            if (ds->objects[i]->node_case == PG_QUERY__NODE__NODE_STRING) {
                c = add_check(w, "drop_extension", MIGCTL_SQL_EXTENSION,
                              MIGCTL_SQL_PRESENCE, 0, NULL, NULL,
                              ds->objects[i]->string->sval);
                if (c) {
                    c->weak = ds->missing_ok;
                }
            }
        }
        return;

    case PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER:
        /* one object: [schema,] table, trigger */
        for (i = 0; i < ds->n_objects; i++) {
            o = ds->objects[i];
            if (o->node_case != PG_QUERY__NODE__NODE_LIST
                || o->list->n_items < 2 || o->list->n_items > 3)
            {
                add_unverified(w, "DROP TRIGGER", start, end);
                continue;
            }
            l = o->list;
            c = add_check(w, "drop_trigger", MIGCTL_SQL_TRIGGER,
                          MIGCTL_SQL_PRESENCE, 0,
                          l->n_items == 3 ? node_str(l->items[0]) : NULL,
                          node_str(l->items[l->n_items - 2]),
                          node_str(l->items[l->n_items - 1]));
            if (c) {
                c->weak = ds->missing_ok;
            }
        }
        return;

    default:
        add_unverified(w, migctl_sql_object_name("DROP", ds->remove_type),
                       start, end);
        return;
    }

    for (i = 0; i < ds->n_objects; i++) {
        o = ds->objects[i];
        if (o->node_case != PG_QUERY__NODE__NODE_LIST) {
            continue;
        }
        l = o->list;
        if (l->n_items == 0 || l->n_items > 2
            || l->items[l->n_items - 1]->node_case
               != PG_QUERY__NODE__NODE_STRING)
        {
            add_unverified(w, "DROP", start, end);
            continue;
        }

        name = l->items[l->n_items - 1]->string->sval;
        schema = l->n_items == 2
                 && l->items[0]->node_case == PG_QUERY__NODE__NODE_STRING
                 ? l->items[0]->string->sval : NULL;

        /* dropping a table drops its columns, indexes and constraints */
        forget(w, kind, schema, NULL, name);
        c = add_check(w, action, kind, MIGCTL_SQL_PRESENCE, 0, schema,
                      NULL, name);
        if (c) {
            c->weak = ds->missing_ok;
        }
    }
}


static void
rename_stmt(sql_walk_t *w, PgQuery__RenameStmt *rs, size_t start, size_t end)
{
    const char  *schema, *table;

    if (rs->relation == NULL || str(rs->newname) == NULL) {
        add_unverified(w, "RENAME", start, end);
        return;
    }

    schema = str(rs->relation->schemaname);
    table = rs->relation->relname;

    switch (rs->rename_type) {

    case PG_QUERY__OBJECT_TYPE__OBJECT_TABLE:
        rename_refs(w, MIGCTL_SQL_TABLE, schema, NULL, table, rs->newname);
        add_check(w, "rename_table", MIGCTL_SQL_TABLE, MIGCTL_SQL_PRESENCE,
                  1, schema, NULL, rs->newname);
        return;

    case PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN:
        if (str(rs->subname) == NULL) {
            break;
        }
        /*
         * only the new name: "old name absent" holds as well before a
         * migration that never ran, and would read as progress
         */
        rename_refs(w, MIGCTL_SQL_COLUMN, schema, table, rs->subname,
                    rs->newname);
        add_check(w, "rename_column", MIGCTL_SQL_COLUMN, MIGCTL_SQL_PRESENCE,
                  1, schema, table, rs->newname);
        return;

    case PG_QUERY__OBJECT_TYPE__OBJECT_INDEX:
        rename_refs(w, MIGCTL_SQL_INDEX, schema, NULL, table, rs->newname);
        add_check(w, "rename_index", MIGCTL_SQL_INDEX, MIGCTL_SQL_PRESENCE,
                  1, schema, NULL, rs->newname);
        return;

    case PG_QUERY__OBJECT_TYPE__OBJECT_TABCONSTRAINT:
        if (str(rs->subname) == NULL) {
            break;
        }
        rename_refs(w, MIGCTL_SQL_CONSTRAINT, schema, table, rs->subname,
                    rs->newname);
        add_check(w, "rename_constraint", MIGCTL_SQL_CONSTRAINT,
                  MIGCTL_SQL_PRESENCE, 1, schema, table, rs->newname);
        return;

    default:
        break;
    }

    add_unverified(w, "RENAME", start, end);
}


/* CREATE SEQUENCE, CREATE [OR REPLACE] VIEW: a relation by name */
static void
relation(sql_walk_t *w, const char *action, int kind, PgQuery__RangeVar *rv,
    size_t start, size_t end)
{
    if (rv == NULL || str(rv->relname) == NULL) {
        add_unverified(w, action, start, end);
        return;
    }

    add_check(w, action, kind, MIGCTL_SQL_PRESENCE, 1, str(rv->schemaname),
              NULL, rv->relname);
}


static const char *
node_str(PgQuery__Node *n)
{
    return n->node_case == PG_QUERY__NODE__NODE_STRING ? n->string->sval
                                                       : NULL;
}


/*
 * Appends a check; an earlier live check of the same object and property
 * is marked dead, so only the final expectation is verified.
 */
static migctl_sql_check_t *
add_check(sql_walk_t *w, const char *action, int kind, int aspect,
    int expect, const char *schema, const char *table, const char *name)
{
    size_t               i;
    migctl_sql_plan_t   *plan;
    migctl_sql_check_t  *c, *checks;

    plan = w->plan;

    if (name == NULL || *name == '\0') {
        return NULL;
    }

    for (i = 0; i < plan->nchecks; i++) {
        c = &plan->checks[i];
        if (!c->dead && c->kind == kind && c->aspect == aspect
            && same(c->schema, schema) && same(c->name, name)
            && (kind == MIGCTL_SQL_TABLE || kind == MIGCTL_SQL_INDEX
                || same(c->table, table)))
        {
            c->dead = 1;
        }
    }

    checks = grow(plan->checks, &plan->achecks, plan->nchecks + 1,
                  sizeof(migctl_sql_check_t));
    if (checks == NULL) {
        w->oom = 1;
        return NULL;
    }
    plan->checks = checks;

    c = &plan->checks[plan->nchecks];
    memset(c, 0, sizeof(*c));
    c->tag = w->tag;
    c->stmt = w->stmt;
    c->start = w->start;
    c->end = w->end;
    c->line = w->line;
    c->op = w->op;
    c->action = action;
    c->kind = kind;
    c->aspect = aspect;
    c->expect = expect;
    c->typmod = -1;
    c->schema = dup(w, schema);
    c->table = dup(w, table);
    c->name = dup(w, name);

    if (w->oom) {
        free(c->schema);
        free(c->table);
        free(c->name);
        return NULL;
    }

    plan->nchecks++;

    return c;
}


/*
 * Marks dead every earlier check on an object that is dropped or created
 * anew: for a table, also everything on its columns, indexes and
 * constraints; for a column, every property of it.
 */
static void
forget(sql_walk_t *w, int kind, const char *schema, const char *table,
    const char *name)
{
    size_t               i;
    migctl_sql_check_t  *c;

    for (i = 0; i < w->plan->nchecks; i++) {
        c = &w->plan->checks[i];

        if (c->dead || !same(c->schema, schema)) {
            continue;
        }

        if (kind == MIGCTL_SQL_TABLE) {
            if ((c->kind == MIGCTL_SQL_TABLE && same(c->name, name))
                || (c->kind != MIGCTL_SQL_TABLE && same(c->table, name)))
            {
                c->dead = 1;
            }

        } else if (c->kind == kind && same(c->name, name)
                   && (kind == MIGCTL_SQL_INDEX || same(c->table, table)))
        {
            c->dead = 1;
        }
    }
}


/* earlier checks follow a rename: they now speak of the new name */
static void
rename_refs(sql_walk_t *w, int kind, const char *schema, const char *table,
    const char *from, const char *to)
{
    size_t               i;
    char               **field;
    migctl_sql_check_t  *c;

    for (i = 0; i < w->plan->nchecks; i++) {
        c = &w->plan->checks[i];

        if (c->dead || !same(c->schema, schema)) {
            continue;
        }

        field = NULL;

        if (kind == MIGCTL_SQL_TABLE) {
            if (c->kind == MIGCTL_SQL_TABLE && same(c->name, from)) {
                field = &c->name;

            } else if (c->kind != MIGCTL_SQL_TABLE && same(c->table, from)) {
                field = &c->table;
            }

        } else if (c->kind == kind && same(c->name, from)
                   && (kind == MIGCTL_SQL_INDEX || same(c->table, table)))
        {
            field = &c->name;
        }

        if (field) {
            char  *s = dup(w, to);

            if (s == NULL) {
                return;
            }
            free(*field);
            *field = s;
        }
    }
}


static void
add_unverified(sql_walk_t *w, const char *what, size_t start, size_t end)
{
    size_t                    n;
    migctl_sql_plan_t        *plan;
    migctl_sql_unverified_t  *u, *unver;

    plan = w->plan;

    unver = grow(plan->unver, &plan->aunver, plan->nunver + 1,
                 sizeof(migctl_sql_unverified_t));
    if (unver == NULL) {
        w->oom = 1;
        return;
    }
    plan->unver = unver;

    u = &plan->unver[plan->nunver];
    memset(u, 0, sizeof(*u));
    u->tag = w->tag;
    u->stmt = w->stmt;
    u->line = w->line;
    u->op = w->op;
    u->what = dup(w, what);

    if (end > start) {
        n = end - start;
        if (n > SQL_SNIPPET_MAX) {
            n = SQL_SNIPPET_MAX;
        }
        u->sql = malloc(n + 1);
        if (u->sql == NULL) {
            w->oom = 1;

        } else {
            memcpy(u->sql, w->text + start, n);
            u->sql[n] = '\0';
        }
    }

    if (w->oom) {
        free(u->what);
        free(u->sql);
        return;
    }

    plan->nunver++;
}


/*
 * The expected type as text the server's to_regtype() reads, and the
 * typmod for the types whose modifiers we know how to encode (the rest
 * are compared by base type only).
 */
static void
set_type(sql_walk_t *w, migctl_sql_check_t *c, PgQuery__TypeName *tn)
{
    int          m[2], nm, tm;
    char         buf[512];
    size_t       i, len;
    const char  *base;

    if (tn == NULL || tn->n_names == 0) {
        return;
    }

    len = 0;
    buf[0] = '\0';
    base = "";

    for (i = 0; i < tn->n_names; i++) {
        if (tn->names[i]->node_case != PG_QUERY__NODE__NODE_STRING) {
            return;
        }
        base = tn->names[i]->string->sval;

        /* the serial pseudo-types are their integer type in the catalog */
        if (tn->n_names == 1) {
            if (strcmp(base, "serial") == 0 || strcmp(base, "serial4") == 0) {
                base = "int4";
            } else if (strcmp(base, "bigserial") == 0
                       || strcmp(base, "serial8") == 0)
            {
                base = "int8";
            } else if (strcmp(base, "smallserial") == 0
                       || strcmp(base, "serial2") == 0)
            {
                base = "int2";
            }
        }

        len += snprintf(buf + len, sizeof(buf) - len, "%s\"%s\"",
                        i ? "." : "", base);
        if (len >= sizeof(buf) - 8) {
            return;
        }
    }

    if (tn->n_array_bounds > 0) {
        len += snprintf(buf + len, sizeof(buf) - len, "[]");
    }

    nm = 0;
    for (i = 0; i < tn->n_typmods && nm < 2; i++) {
        PgQuery__Node  *t = tn->typmods[i];

        if (t->node_case != PG_QUERY__NODE__NODE_A_CONST
            || t->a_const->val_case != PG_QUERY__A__CONST__VAL_IVAL)
        {
            nm = -1;
            break;
        }
        m[nm++] = t->a_const->ival->ival;
    }

    tm = -1;

    /* typmods the server would refuse stay unknown (no overflow either) */
    if (nm >= 1 && (m[0] < 0 || m[0] > 10485760)) {
        nm = -1;
    }

    if (nm == 1 && tn->n_typmods == 1
        && (strcmp(base, "varchar") == 0 || strcmp(base, "bpchar") == 0))
    {
        tm = m[0] + 4;                       /* VARHDRSZ */

    } else if (nm >= 1 && strcmp(base, "numeric") == 0) {
        tm = (int) (((unsigned) m[0] << 16)
                    | (nm == 2 ? ((unsigned) m[1] & 0xffff) : 0)) + 4;

    } else if (nm == 1
               && (strcmp(base, "timestamp") == 0
                   || strcmp(base, "timestamptz") == 0
                   || strcmp(base, "time") == 0
                   || strcmp(base, "timetz") == 0
                   || strcmp(base, "bit") == 0
                   || strcmp(base, "varbit") == 0))
    {
        tm = m[0];
    }

    c->type = dup(w, buf);
    c->typmod = tm;
}


/* protobuf-c gives "" for an absent string */
static const char *
str(const char *s)
{
    return s && *s ? s : NULL;
}


static int
same(const char *a, const char *b)
{
    a = str(a);
    b = str(b);

    if (a == NULL || b == NULL) {
        return a == b;
    }

    return strcmp(a, b) == 0;
}


static char *
dup(sql_walk_t *w, const char *s)
{
    char  *d;

    s = str(s);
    if (s == NULL) {
        return NULL;
    }

    d = strdup(s);
    if (d == NULL) {
        w->oom = 1;
    }

    return d;
}


static void *
grow(void *p, size_t *alloc, size_t n, size_t size)
{
    size_t   a;
    void    *np;

    if (n <= *alloc) {
        return p;
    }

    a = *alloc ? *alloc * 2 : 16;
    while (a < n) {
        a *= 2;
    }

    np = realloc(p, a * size);
    if (np == NULL) {
        return NULL;
    }

    *alloc = a;

    return np;
}
