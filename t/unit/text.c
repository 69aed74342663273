/*
 * text.c: TAP unit test of mig_text_valid(): reason, release and actor
 * from the network must be printable UTF-8, or the record is discarded.
 */

#include <stdio.h>
#include <string.h>

#include "mig.h"


#define S(lit)  lit, sizeof(lit) - 1


static int  tests, failed;


static void
ok(int pass, const char *name)
{
    tests++;
    printf("%sok %d - %s\n", pass ? "" : "not ", tests, name);
    failed += !pass;
}


int
main(void)
{
    char         err[128];
    mig_state_t  st;

    ok(mig_text_valid(S("migrate failed on abc123"), err, sizeof(err))
       == MIG_OK, "ASCII text is valid");
    ok(mig_text_valid(S("d\xc3\xa9ploiement \xe2\x9c\x93 \xf0\x9f\x9a\x80"),
                      err, sizeof(err)) == MIG_OK,
       "two-, three- and four-byte UTF-8 are valid");
    ok(mig_text_valid(S(""), err, sizeof(err)) == MIG_OK, "empty is valid");
    ok(mig_text_valid(S("line\nbreak"), err, sizeof(err)) == MIG_EINVAL
       && strstr(err, "control character 0x0a at byte 4") != NULL,
       "a newline is refused, with its position");
    ok(mig_text_valid(S("esc\x1b[31m"), err, sizeof(err)) == MIG_EINVAL,
       "a terminal escape is refused");
    ok(mig_text_valid(S("del\x7f"), err, sizeof(err)) == MIG_EINVAL,
       "DEL is refused");
    ok(mig_text_valid(S("\xff"), err, sizeof(err)) == MIG_EINVAL
       && strstr(err, "invalid UTF-8 at byte 0") != NULL,
       "0xff is invalid UTF-8");
    ok(mig_text_valid(S("ab\xc3"), err, sizeof(err)) == MIG_EINVAL,
       "a truncated sequence is invalid");
    ok(mig_text_valid(S("\xc0\xaf"), err, sizeof(err)) == MIG_EINVAL,
       "an overlong two-byte form is invalid");
    ok(mig_text_valid(S("\xe0\x80\xaf"), err, sizeof(err)) == MIG_EINVAL,
       "an overlong three-byte form is invalid");
    ok(mig_text_valid(S("\xed\xa0\x80"), err, sizeof(err)) == MIG_EINVAL,
       "a UTF-16 surrogate is invalid");
    ok(mig_text_valid(S("\xf4\x90\x80\x80"), err, sizeof(err)) == MIG_EINVAL,
       "beyond U+10FFFF is invalid");
    ok(mig_text_valid(S("x"), NULL, 0) == MIG_OK
       && mig_text_valid(S("\x01"), NULL, 0) == MIG_EINVAL,
       "a NULL err buffer is safe");

    mig_state_init(&st);
    ok(mig_state_field(&st, S("reason"), S("bad\xfe"), err, sizeof(err))
       == MIG_EINVAL && strncmp(err, "reason: ", 8) == 0,
       "the state codec refuses a binary reason and names the field");
    ok(mig_state_field(&st, S("actor"), S("ops\r\nX-Injected: 1"), err,
                       sizeof(err)) == MIG_EINVAL,
       "the state codec refuses CR LF in actor");
    ok(mig_state_field(&st, S("release"), S("abc123"), err, sizeof(err))
       == MIG_OK && strcmp(st.release, "abc123") == 0,
       "a good release is kept");

    ok(mig_scope_valid(S("default"), err, sizeof(err)) == MIG_OK,
       "default is a scope");
    ok(mig_scope_valid(S("pid"), err, sizeof(err)) == MIG_EINVAL
       && strstr(err, "reserved") != NULL,
       "pid is reserved: it is a field of the edge hash");
    ok(mig_scope_valid(S("seen_ms"), NULL, 0) == MIG_EINVAL
       && mig_scope_valid(S("version"), NULL, 0) == MIG_EINVAL,
       "seen_ms and version are reserved");
    ok(mig_scope_valid(S("pids"), NULL, 0) == MIG_OK,
       "only the exact names are reserved");

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}
