/*
 * sqlnode.c: names and keys of libpg_query's parse-tree nodes for
 * sqlparse.c: a default's comparable key, a statement's or object's name.
 */

#include <stdio.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "sqlnode.h"


/*
 * A default's comparable form (migctl_sql_expr_key()): the length
 * written into buf, or -1.  Casts go: the server stores 'x' for a
 * varchar column as 'x'::character varying, and -1 as '-1'::integer.
 */
int
migctl_sql_node_key(PgQuery__Node *n, char *buf, size_t len)
{
    int           k, m;
    size_t        i, used;
    const char   *v;
    char          num[32];
    PgQuery__FuncCall  *f;

    while (n && n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST) {
        n = n->type_cast->arg;
    }

    if (n == NULL || len < 2) {
        return -1;
    }

    if (n->node_case == PG_QUERY__NODE__NODE_A_CONST) {
        v = NULL;

        if (n->a_const->isnull) {
            v = "NULL";

        } else {
            switch (n->a_const->val_case) {
            case PG_QUERY__A__CONST__VAL_IVAL:
                snprintf(num, sizeof(num), "%d", n->a_const->ival->ival);
                v = num;
                break;
            case PG_QUERY__A__CONST__VAL_FVAL:
                v = n->a_const->fval->fval;
                break;
            case PG_QUERY__A__CONST__VAL_BOOLVAL:
                v = n->a_const->boolval->boolval ? "true" : "false";
                break;
            case PG_QUERY__A__CONST__VAL_SVAL:
                v = n->a_const->sval->sval;
                break;
            case PG_QUERY__A__CONST__VAL_BSVAL:
                v = n->a_const->bsval->bsval;
                break;
            default:
                break;
            }
        }

        if (v == NULL) {
            return -1;
        }

        /* a boolean stored as 'true'::boolean, written as TRUE */
        if (strcmp(v, "t") == 0) {
            v = "true";
        } else if (strcmp(v, "f") == 0) {
            v = "false";
        }

        k = snprintf(buf, len, "%s", v);
        return k >= 0 && (size_t) k < len ? (k ? k : -1) : -1;
    }

    if (n->node_case != PG_QUERY__NODE__NODE_FUNC_CALL) {
        return -1;
    }

    f = n->func_call;
    if (f->n_funcname == 0
        || f->funcname[f->n_funcname - 1]->node_case
           != PG_QUERY__NODE__NODE_STRING)
    {
        return -1;
    }

    /* pg_catalog.now() and now() are one function */
    k = snprintf(buf, len, "%s(",
                 f->funcname[f->n_funcname - 1]->string->sval);
    if (k < 0 || (size_t) k >= len) {
        return -1;
    }
    used = (size_t) k;

    for (i = 0; i < f->n_args; i++) {
        if (i) {
            if (used + 1 >= len) {
                return -1;
            }
            buf[used++] = ',';
        }
        m = migctl_sql_node_key(f->args[i], buf + used, len - used);
        if (m < 0) {
            return -1;
        }
        used += (size_t) m;
    }

    if (used + 2 > len) {
        return -1;
    }
    buf[used++] = ')';
    buf[used] = '\0';

    return (int) used;
}


char
migctl_sql_contype(PgQuery__ConstrType t)
{
    switch (t) {
    case PG_QUERY__CONSTR_TYPE__CONSTR_CHECK:
        return 'c';
    case PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY:
        return 'p';
    case PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE:
        return 'u';
    case PG_QUERY__CONSTR_TYPE__CONSTR_EXCLUSION:
        return 'x';
    case PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN:
        return 'f';
    default:
        return 0;
    }
}


/* "DROP FUNCTION", ... for what we do not check */
const char *
migctl_sql_object_name(const char *verb, PgQuery__ObjectType t)
{
    static char                     buf[96];
    const char                     *name;
    const ProtobufCEnumValue       *v;

    v = protobuf_c_enum_descriptor_get_value(
                                     &pg_query__object_type__descriptor, t);
    name = v ? v->name : "OBJECT";
    if (strncmp(name, "OBJECT_", 7) == 0) {
        name += 7;
    }
    snprintf(buf, sizeof(buf), "%s %s", verb, name);

    return buf;
}


/* "ALTER TABLE AT_AddIdentity", ... for what we do not check */
const char *
migctl_sql_alter_name(PgQuery__AlterTableType t)
{
    static char                     buf[96];
    const ProtobufCEnumValue       *v;

    v = protobuf_c_enum_descriptor_get_value(
                              &pg_query__alter_table_type__descriptor, t);
    snprintf(buf, sizeof(buf), "ALTER TABLE %s", v ? v->name : "command");

    return buf;
}


/* "UPDATE", "CREATE FUNCTION", ... from the protobuf field name */
const char *
migctl_sql_node_name(PgQuery__Node *n)
{
    size_t                           i, len;
    const char                      *name;
    static char                      buf[64];
    const ProtobufCFieldDescriptor  *f;

    f = protobuf_c_message_descriptor_get_field(&pg_query__node__descriptor,
                                                n->node_case);
    name = f ? f->name : "statement";

    len = strlen(name);
    if (len > 5 && strcmp(name + len - 5, "_stmt") == 0) {
        len -= 5;
    }
    if (len >= sizeof(buf)) {
        len = sizeof(buf) - 1;
    }

    for (i = 0; i < len; i++) {
        buf[i] = name[i] == '_' ? ' '
                 : (name[i] >= 'a' && name[i] <= 'z') ? name[i] - 32
                 : name[i];
    }
    buf[len] = '\0';

    return buf;
}
