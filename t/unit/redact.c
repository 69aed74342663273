/*
 * redact.c: TAP unit test of migctl_redact_query() (ctl/redact.c): every
 * secret form out, the rest kept, control characters escaped, cut safely.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"


static int  tests, failed;


static void
ok(int pass, const char *name)
{
    tests++;
    printf("%sok %d - %s\n", pass ? "" : "not ", tests, name);
    failed += !pass;
}


/* redacts in, checks it equals want and that secret is gone */
static void
is(const char *in, int flags, const char *want, const char *name)
{
    char  out[512];

    migctl_redact_query(in, out, sizeof(out), flags);
    ok(strcmp(out, want) == 0, name);
    if (strcmp(out, want) != 0) {
        printf("#      got: %s\n# expected: %s\n", out, want);
    }
}


/* the secret "s3cr3t" must not survive, whatever else happens */
static void
hidden(const char *in, const char *name)
{
    char  out[512];

    migctl_redact_query(in, out, sizeof(out), 0);
    ok(strstr(out, "s3cr3t") == NULL && strstr(out, "[redacted]") != NULL,
       name);
    if (strstr(out, "s3cr3t") != NULL) {
        printf("#      got: %s\n", out);
    }
}


int
main(void)
{
    char    out[64], big[4096], *huge;
    size_t  n, i;

    is("ALTER ROLE app PASSWORD 'x'", 0,
       "ALTER ROLE app PASSWORD '[redacted]'", "PASSWORD 'x'");
    is("CREATE ROLE a LOGIN ENCRYPTED PASSWORD 'it''s' VALID UNTIL 'infinity'",
       0, "CREATE ROLE a LOGIN ENCRYPTED PASSWORD '[redacted]' VALID UNTIL "
       "'infinity'", "doubled quote inside, the rest kept");
    is("alter user a with password E'a\\'b' login", 0,
       "alter user a with password '[redacted]' login",
       "PASSWORD E'x' with a backslash-escaped quote");
    is("ALTER ROLE a PASSWORD U&'d\\0061t' LOGIN", 0,
       "ALTER ROLE a PASSWORD '[redacted]' LOGIN", "PASSWORD U&'x'");
    is("ALTER ROLE a PASSWORD $$s'3$$;", 0,
       "ALTER ROLE a PASSWORD '[redacted]';", "PASSWORD $$x$$");
    is("ALTER ROLE a PASSWORD $pw$a$b$pw$ VALID UNTIL 'x'", 0,
       "ALTER ROLE a PASSWORD '[redacted]' VALID UNTIL 'x'",
       "PASSWORD $tag$x$tag$ with a $ inside");
    is("ALTER ROLE a PASSWORD\n\t'x'", 0,
       "ALTER ROLE a PASSWORD\\x0a\\x09'[redacted]'",
       "a newline between keyword and literal");
    is("ALTER ROLE a PASSWORD NULL", 0, "ALTER ROLE a PASSWORD NULL",
       "PASSWORD NULL is no secret");
    is("ALTER ROLE a PASSWORD $1", 0, "ALTER ROLE a PASSWORD $1",
       "a parameter is no secret");
    is("SET password_encryption = 'scram-sha-256'", 0,
       "SET password_encryption = 'scram-sha-256'",
       "password_encryption is another word");
    is("SELECT mypassword 'x'", 0, "SELECT mypassword 'x'",
       "the keyword form needs a whole word");

    hidden("ALTER ROLE a PASSWORD 's3cr3t", "an unterminated literal "
           "(a cut query) is redacted to the end");
    hidden("ALTER ROLE a PASSWORD $q$s3cr3t", "an open dollar quote too");
    hidden("ALTER ROLE a PaSsWoRd 's3cr3t'", "any case");

    is("SELECT dblink_connect('host=db user=u password=x dbname=d')", 0,
       "SELECT dblink_connect('host=db user=u password=[redacted] "
       "dbname=d')", "conninfo password=x inside a literal");
    is("SELECT dblink_connect('host=db password = ''a b'' port=5')", 0,
       "SELECT dblink_connect('host=db password = '[redacted]' port=5')",
       "conninfo password='x y' quoted inside a literal");
    is("host=db password=x", 0, "host=db password=[redacted]",
       "a bare conninfo");
    is("PGPASSWORD=x psql", 0, "PGPASSWORD=[redacted] psql",
       "PGPASSWORD=x");
    is("{\"user\": \"u\", \"password\": \"a\\\"b\"}", 0,
       "{\"user\": \"u\", \"password\": '[redacted]'}",
       "a JSON password member");
    is("CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password 'x')",
       0, "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password "
       "'[redacted]')", "a user mapping's password option");

    is("postgresql://app:x@db.example:5432/shop", 0,
       "postgresql://app:[redacted]@db.example:5432/shop",
       "postgresql:// URL");
    is("postgres://app:p@ss:w@db/shop?sslmode=require", 0,
       "postgres://app:[redacted]@db/shop?sslmode=require",
       "postgres:// URL, an unencoded @ in the password");
    is("postgres://app@db/shop", 0, "postgres://app@db/shop",
       "a URL without password is kept");
    is("postgres://db:5432/shop", 0, "postgres://db:5432/shop",
       "host:port is no password");
    is("SELECT 'postgresql://u:x@h/d', 'redis://:x@r:6379/0'", 0,
       "SELECT 'postgresql://u:[redacted]@h/d', "
       "'redis://:[redacted]@r:6379/0'", "two URLs in one text");
    is("postgresql://h/d?user=u&password=x&sslmode=verify-full", 0,
       "postgresql://h/d?user=u&password=[redacted]&sslmode=verify-full",
       "a URL's password parameter");

    is("SELECT\x1b[31m 1\x7f", 0, "SELECT\\x1b[31m 1\\x7f",
       "control characters escaped");
    is("SELECT 'd\xc3\xa9j\xc3\xa0', '\xff\xfe'", 0,
       "SELECT 'd\xc3\xa9j\xc3\xa0', '\\xff\\xfe'",
       "UTF-8 kept, invalid bytes escaped");
    is("  SELECT *\n\tFROM  t\r\n WHERE x   = 1  ", MIGCTL_REDACT_ONELINE,
       "SELECT * FROM t WHERE x = 1", "ONELINE collapses whitespace");
    is("SELECT 1;\n\tSELECT\x01 2", MIGCTL_REDACT_KEEP_NL,
       "SELECT 1;\n\tSELECT\\x01 2", "KEEP_NL keeps newlines and tabs");

    /* cutting: after redaction, never inside a character or an escape */
    n = migctl_redact_query("ALTER ROLE a PASSWORD 'a-very-long-secret-that-"
                            "would-reach-past-the-cut-s3cr3t' LOGIN", out,
                            32, 0);
    ok(n < 32 && strlen(out) == n && strstr(out, "s3cr3t") == NULL
       && strstr(out, "a-very") == NULL && strcmp(out + n - 3, "...") == 0,
       "a cut text ends in ... and shows no part of the secret");
    n = migctl_redact_query("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", out,
                            8, 0);
    ok(strcmp(out, "\xc3\xa9\xc3\xa9...") == 0 && n == 7,
       "a cut never splits a UTF-8 character");
    n = migctl_redact_query("ab\x01\x02\x03", out, 10, 0);
    ok(strcmp(out, "ab\\x01...") == 0, "a cut never splits an escape");
    ok(migctl_redact_query("x", out, 0, 0) == 0, "size 0 writes nothing");
    ok(migctl_redact_query(NULL, out, sizeof(out), 0) == 0
       && out[0] == '\0', "NULL is empty");

    /* whatever the input, the output is terminated and in bounds */
    srand(7);
    for (i = 0; i < 20000; i++) {
        size_t  len, k;

        len = (size_t) (rand() % 64);
        for (k = 0; k < len; k++) {
            static const char  pick[] = "pP'$E&=:\"/@ \\\n\x01\xc3\xa9xa";

            big[k] = pick[rand() % (sizeof(pick) - 1)];
            if (rand() % 5 == 0) {
                memcpy(big + k, "password", len - k < 8 ? len - k : 8);
                k += (len - k < 8 ? len - k : 8) - 1;
            }
        }
        big[len] = '\0';

        n = migctl_redact_query(big, out, 1 + (size_t) (rand() % 63), 0);
        if (strlen(out) != n || n >= sizeof(out)) {
            break;
        }
    }
    ok(i == 20000, "20000 random texts: output bounded and terminated");

    huge = malloc(1 << 20);
    if (huge != NULL) {
        memset(huge, 'a', (1 << 20) - 1);
        memcpy(huge + 100, " PASSWORD 's3cr3t' ", 19);
        huge[(1 << 20) - 1] = '\0';
        n = migctl_redact_query(huge, big, sizeof(big), 0);
        ok(n == sizeof(big) - 1 && strcmp(big + n - 3, "...") == 0,
           "1 MB text cut to the buffer");
        ok(strstr(big, "s3cr3t") == NULL, "1 MB text: secret gone");
        free(huge);
    }

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}
