/*
 * sqlnode.h: what sqlparse.c (the statements walked into checks) takes
 * from sqlnode.c (names and keys of libpg_query's parse-tree nodes).
 */

#ifndef MIGCTL_SQLNODE_H
#define MIGCTL_SQLNODE_H

#include <stddef.h>
#include <pg_query/pg_query.pb-c.h>


/*
 * A default's comparable form (migctl_sql_expr_key()): the length
 * written into buf, or -1.  Casts go: the server stores 'x' for a
 * varchar column as 'x'::character varying, and -1 as '-1'::integer.
 */
int migctl_sql_node_key(PgQuery__Node *n, char *buf, size_t len);

/* pg_constraint.contype of a constraint type: 'c', 'p', ...; 0 if none */
char migctl_sql_contype(PgQuery__ConstrType t);

/*
 * For what inspect does not check: "DROP FUNCTION", "ALTER TABLE
 * AT_AddIdentity", "UPDATE" (from the protobuf names); static buffers.
 */
const char *migctl_sql_object_name(const char *verb, PgQuery__ObjectType t);
const char *migctl_sql_alter_name(PgQuery__AlterTableType t);
const char *migctl_sql_node_name(PgQuery__Node *n);

#endif /* MIGCTL_SQLNODE_H */
