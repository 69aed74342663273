/*
 * shared.c: TAP unit test of shared/mig.c: name rules, key names, the
 * strict number parsers, the state, event and edge codecs, their bounds.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "mig.h"


#define OK(cond, ...)    ok_(!!(cond), NULL, __VA_ARGS__)
#define TODO(why, cond, ...)  ok_(!!(cond), why, __VA_ARGS__)
#define S(lit)           lit, sizeof(lit) - 1


static int  tests, failed;


static void ok_(int pass, const char *todo, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int field(mig_state_t *st, const char *name, const char *value);
static void test_names(void);
static void test_keys(void);
static void test_numbers(void);
static void test_state(void);
static void test_event(void);
static void test_edge(void);


int
main(void)
{
    test_names();
    test_keys();
    test_numbers();
    test_state();
    test_event();
    test_edge();

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}


static void
test_names(void)
{
    char  name[MIG_NAME_MAX + 2], err[256];

    OK(mig_name_valid(S("default"), err, sizeof(err)) == MIG_OK,
       "name: default is valid");
    OK(mig_name_valid(S("a.b-c_D9"), err, sizeof(err)) == MIG_OK,
       "name: letters, digits, . - _");
    OK(mig_name_valid(S(""), err, sizeof(err)) == MIG_EINVAL,
       "name: empty is invalid");
    OK(strstr(err, "empty") != NULL, "name: empty says so");
    OK(mig_name_valid(S("a b"), err, sizeof(err)) == MIG_EINVAL,
       "name: space is invalid");
    OK(strstr(err, "invalid character") != NULL, "name: says why");
    OK(mig_name_valid(S("a:b"), err, sizeof(err)) == MIG_EINVAL,
       "name: ':' (the key separator) is invalid");
    OK(mig_name_valid(S("a*"), NULL, 0) == MIG_EINVAL,
       "name: '*' invalid, NULL err is safe");
    OK(mig_name_valid("ab\0c", 4, err, sizeof(err)) == MIG_EINVAL,
       "name: embedded NUL is invalid");

    memset(name, 'x', sizeof(name));
    OK(mig_name_valid(name, MIG_NAME_MAX, err, sizeof(err)) == MIG_OK,
       "name: %d characters is valid", MIG_NAME_MAX);
    OK(mig_name_valid(name, MIG_NAME_MAX + 1, err, sizeof(err))
       == MIG_ERANGE, "name: %d characters is out of range",
       MIG_NAME_MAX + 1);
}


static void
test_keys(void)
{
    char  buf[MIG_KEY_MAX], small[8];
    int   n;

    n = mig_key_state(buf, sizeof(buf), "migctl", "default");
    OK(n == 20 && strcmp(buf, "migctl:state:default") == 0,
       "key: P:state:S");
    n = mig_key_state_pattern(buf, sizeof(buf), "p");
    OK(n > 0 && strcmp(buf, "p:state:*") == 0, "key: P:state:*");
    n = mig_key_events(buf, sizeof(buf), "p");
    OK(n > 0 && strcmp(buf, "p:events") == 0, "key: P:events");
    n = mig_key_edges(buf, sizeof(buf), "p");
    OK(n > 0 && strcmp(buf, "p:edges") == 0, "key: P:edges");
    n = mig_key_edge(buf, sizeof(buf), "p", "node-1");
    OK(n > 0 && strcmp(buf, "p:edge:node-1") == 0, "key: P:edge:<node>");
    n = mig_key_audit(buf, sizeof(buf), "p");
    OK(n > 0 && strcmp(buf, "p:audit") == 0, "key: P:audit");

    OK(mig_key_state(small, sizeof(small), "migctl", "default")
       == MIG_ENOSPC, "key: small buffer -> ENOSPC");
    OK(mig_key_audit(small, 7, "p") == MIG_ENOSPC,
       "key: \"p:audit\" needs 8 bytes");
    OK(mig_key_audit(small, 8, "p") == 7, "key: 8 bytes is enough");
}


static void
test_numbers(void)
{
    uint64_t  u;
    int64_t   i;

    OK(mig_parse_u64(S("0"), UINT64_MAX, &u) == MIG_OK && u == 0, "u64: 0");
    OK(mig_parse_u64(S("18446744073709551615"), UINT64_MAX, &u) == MIG_OK
       && u == UINT64_MAX, "u64: UINT64_MAX");
    OK(mig_parse_u64(S("18446744073709551616"), UINT64_MAX, &u)
       == MIG_ERANGE, "u64: UINT64_MAX + 1 -> ERANGE");
    OK(mig_parse_u64(S("99999999999999999999"), UINT64_MAX, &u)
       == MIG_ERANGE, "u64: 20 nines -> ERANGE");
    OK(mig_parse_u64(S("000000000000000000001"), UINT64_MAX, &u)
       == MIG_EINVAL, "u64: more than 20 digits -> EINVAL");
    OK(mig_parse_u64(S(""), UINT64_MAX, &u) == MIG_EINVAL, "u64: empty");
    OK(mig_parse_u64(S("12a"), UINT64_MAX, &u) == MIG_EINVAL, "u64: 12a");
    OK(mig_parse_u64(S("-1"), UINT64_MAX, &u) == MIG_EINVAL, "u64: -1");
    OK(mig_parse_u64(S("+1"), UINT64_MAX, &u) == MIG_EINVAL, "u64: +1");
    OK(mig_parse_u64(S(" 1"), UINT64_MAX, &u) == MIG_EINVAL,
       "u64: leading space");
    OK(mig_parse_u64(S("86400"), 86400, &u) == MIG_OK && u == 86400,
       "u64: max is inclusive");
    OK(mig_parse_u64(S("86401"), 86400, &u) == MIG_ERANGE,
       "u64: max + 1 -> ERANGE");
    OK(mig_parse_u64(S("10"), 9, &u) == MIG_ERANGE, "u64: 10 > max 9");

    /* a max below 9: (max - d) must not wrap around */
    OK(mig_parse_u64(S("7"), 5, &u) == MIG_ERANGE,
       "u64: 7 > max 5 -> ERANGE");

    OK(mig_parse_i64(S("-9223372036854775808"), &i) == MIG_OK
       && i == INT64_MIN, "i64: INT64_MIN");
    OK(mig_parse_i64(S("9223372036854775807"), &i) == MIG_OK
       && i == INT64_MAX, "i64: INT64_MAX");
    OK(mig_parse_i64(S("9223372036854775808"), &i) == MIG_ERANGE,
       "i64: INT64_MAX + 1 -> ERANGE");
    OK(mig_parse_i64(S("-9223372036854775809"), &i) == MIG_ERANGE,
       "i64: INT64_MIN - 1 -> ERANGE");
    OK(mig_parse_i64(S("-"), &i) == MIG_EINVAL, "i64: '-' alone");
    OK(mig_parse_i64(S("-12"), &i) == MIG_OK && i == -12, "i64: -12");
}


static void
test_state(void)
{
    int          rc;
    char         big[MIG_REASON_MAX + 2], err[256];
    mig_state_t  st;

    mig_state_init(&st);
    OK(field(&st, "mode", "on") == MIG_OK
       && field(&st, "epoch", "42") == MIG_OK
       && field(&st, "since", "1700000000") == MIG_OK
       && field(&st, "retry_after", "120") == MIG_OK
       && field(&st, "reason", "migrate failed") == MIG_OK
       && field(&st, "release", "abc123") == MIG_OK
       && field(&st, "actor", "alice") == MIG_OK
       && field(&st, "newer_field", "whatever") == MIG_OK
       && mig_state_finish(&st, err, sizeof(err)) == MIG_OK,
       "state: a full record decodes (unknown field ignored)");
    OK(st.mode == MIG_MODE_ON && st.epoch == 42 && st.have_epoch
       && st.since == 1700000000 && st.retry_after == 120
       && strcmp(st.reason, "migrate failed") == 0
       && strcmp(st.release, "abc123") == 0
       && strcmp(st.actor, "alice") == 0, "state: every field");

    mig_state_init(&st);
    OK(field(&st, "mode", "off") == MIG_OK && st.mode == MIG_MODE_OFF,
       "state: mode off");
    OK(field(&st, "mode", "ON") == MIG_EINVAL, "state: mode is exact: ON");
    OK(field(&st, "mode", "maybe") == MIG_EINVAL, "state: mode maybe");
    OK(field(&st, "mode", "") == MIG_EINVAL, "state: mode empty");
    OK(field(&st, "epoch", "abc") == MIG_EINVAL, "state: epoch abc");
    OK(field(&st, "epoch", "-1") == MIG_EINVAL, "state: epoch -1");
    OK(field(&st, "epoch", "18446744073709551616") == MIG_EINVAL,
       "state: epoch overflow");
    OK(field(&st, "since", "-5") == MIG_EINVAL, "state: since -5");
    OK(field(&st, "retry_after", "86400") == MIG_OK
       && st.retry_after == 86400, "state: retry_after 86400");
    OK(field(&st, "retry_after", "86401") == MIG_EINVAL,
       "state: retry_after 86401");

    memset(big, 'r', sizeof(big));
    rc = mig_state_field(&st, S("reason"), big, MIG_REASON_MAX, err,
                         sizeof(err));
    OK(rc == MIG_OK && strlen(st.reason) == MIG_REASON_MAX,
       "state: reason of %d bytes fits", MIG_REASON_MAX);
    rc = mig_state_field(&st, S("reason"), big, MIG_REASON_MAX + 1, err,
                         sizeof(err));
    OK(rc == MIG_ERANGE, "state: reason of %d bytes -> ERANGE",
       MIG_REASON_MAX + 1);
    OK(strstr(err, "reason") != NULL, "state: the error names the field");
    OK(mig_state_field(&st, S("release"), big, MIG_RELEASE_MAX + 1, err,
                       sizeof(err)) == MIG_ERANGE, "state: long release");
    OK(mig_state_field(&st, S("actor"), big, MIG_ACTOR_MAX + 1, NULL, 0)
       == MIG_ERANGE, "state: long actor, NULL err");
    OK(mig_state_field(&st, S("release"), "ab\0c", 4, err, sizeof(err))
       == MIG_EINVAL, "state: NUL in release");
    OK(mig_state_field(&st, S("mode"), "on\0", 3, err, sizeof(err))
       == MIG_EINVAL, "state: mode with a trailing NUL");

    mig_state_init(&st);
    OK(field(&st, "epoch", "3") == MIG_OK
       && mig_state_finish(&st, err, sizeof(err)) == MIG_EMISSING,
       "state: no mode -> EMISSING");
    OK(strstr(err, "mode") != NULL, "state: says mode is missing");
}


static void
test_event(void)
{
    int       n;
    char      buf[MIG_EVENT_MAX], scope[MIG_NAME_MAX + 1], small[4], err[256];
    uint64_t  e;

    n = mig_event_format(buf, sizeof(buf), "default", 7);
    OK(n == 9 && strcmp(buf, "default 7") == 0, "event: format");
    OK(mig_event_format(small, sizeof(small), "default", 7) == MIG_ENOSPC,
       "event: format into a small buffer");

    OK(mig_event_parse(S("default 7"), scope, sizeof(scope), &e, err,
                       sizeof(err)) == MIG_OK
       && strcmp(scope, "default") == 0 && e == 7, "event: parse");
    OK(mig_event_parse(S("default 18446744073709551615"), scope,
                       sizeof(scope), &e, err, sizeof(err)) == MIG_OK
       && e == UINT64_MAX, "event: largest epoch");
    OK(mig_event_parse(S("default"), scope, sizeof(scope), &e, err,
                       sizeof(err)) == MIG_EINVAL, "event: no epoch");
    OK(mig_event_parse(S("default "), scope, sizeof(scope), &e, err,
                       sizeof(err)) == MIG_EINVAL, "event: empty epoch");
    OK(mig_event_parse(S(" 7"), scope, sizeof(scope), &e, err,
                       sizeof(err)) == MIG_EINVAL, "event: empty scope");
    OK(mig_event_parse(S("de*f 7"), scope, sizeof(scope), &e, err,
                       sizeof(err)) == MIG_EINVAL, "event: bad scope");
    OK(mig_event_parse(S("default 7 8"), scope, sizeof(scope), &e, err,
                       sizeof(err)) == MIG_EINVAL, "event: trailing data");
    OK(mig_event_parse(S("default -1"), scope, sizeof(scope), &e, err,
                       sizeof(err)) == MIG_EINVAL, "event: negative epoch");
    OK(mig_event_parse(S("default 7"), small, sizeof(small), &e, err,
                       sizeof(err)) == MIG_ENOSPC,
       "event: scope buffer too small -> ENOSPC");
}


static void
test_edge(void)
{
    int         n;
    char        buf[MIG_EDGE_VALUE_MAX + 1], small[4], err[256];
    uint64_t    e;
    mig_mode_e  m;

    n = mig_edge_value_format(buf, sizeof(buf), MIG_MODE_ON, UINT64_MAX);
    OK(n == 23 && strcmp(buf, "on:18446744073709551615") == 0,
       "edge: the largest value fits MIG_EDGE_VALUE_MAX");
    OK(mig_edge_value_format(small, sizeof(small), MIG_MODE_OFF, 1)
       == MIG_ENOSPC, "edge: small buffer -> ENOSPC");

    OK(mig_edge_value_parse(S("on:5"), &m, &e, err, sizeof(err)) == MIG_OK
       && m == MIG_MODE_ON && e == 5, "edge: on:5");
    OK(mig_edge_value_parse(S("off:0"), &m, &e, err, sizeof(err)) == MIG_OK
       && m == MIG_MODE_OFF && e == 0, "edge: off:0");
    OK(mig_edge_value_parse(S("maybe:1"), &m, &e, err, sizeof(err))
       == MIG_EINVAL, "edge: maybe:1");
    OK(mig_edge_value_parse(S("on:"), &m, &e, err, sizeof(err))
       == MIG_EINVAL, "edge: on: (no epoch)");
    OK(mig_edge_value_parse(S("on5"), &m, &e, err, sizeof(err))
       == MIG_EINVAL, "edge: on5 (no colon)");
    OK(mig_edge_value_parse(S("on:5:6"), &m, &e, err, sizeof(err))
       == MIG_EINVAL, "edge: on:5:6");
    OK(mig_edge_value_parse(S(":5"), &m, &e, NULL, 0) == MIG_EINVAL,
       "edge: :5, NULL err");
}


static int
field(mig_state_t *st, const char *name, const char *value)
{
    char  err[256];

    return mig_state_field(st, name, strlen(name), value, strlen(value),
                           err, sizeof(err));
}


static void
ok_(int pass, const char *todo, const char *fmt, ...)
{
    va_list  ap;

    tests++;

    printf("%sok %d - ", pass ? "" : "not ", tests);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);

    if (todo != NULL) {
        printf(" # TODO %s", todo);

    } else if (!pass) {
        failed++;
    }

    printf("\n");
}
