/*
 * runs.c: TAP unit test of what run and evidence share (ctl/runs.c):
 * secrets collected and scrubbed, URL passwords, shell quoting, mkdirs.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "migctl.h"


#define OK(cond, ...)  ok_(!!(cond), __VA_ARGS__)


static int  tests, failed;


static int ok_(int pass, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int scrubbed(migctl_secrets_t *s, const char *in, const char *want);
static void test_secrets(void);
static void test_quote(void);
static void test_mkdirs(void);


int
main(void)
{
    test_secrets();
    test_quote();
    test_mkdirs();

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}


static void
test_secrets(void)
{
    char              *out;
    migctl_ctx_t       ctx;
    migctl_secrets_t   s;

    memset(&ctx, 0, sizeof(ctx));
    strcpy(ctx.conf.redis_password_env, "UNIT_REDIS_PW");

    setenv("DATABASE_URL", "postgresql://app:db%20pw-1@db.example:5432/x"
           "?sslmode=require", 1);
    setenv("UNIT_REDIS_PW", "redis-pw-2", 1);
    setenv("DJANGO_SECRET_KEY", "django-key-3", 1);
    setenv("API_TOKEN", "tok-4-tok-4-extra", 1);
    setenv("PGPASSWORD", "tok-4", 1);          /* inside a longer one */
    setenv("HARMLESS", "db pw-1", 1);

    migctl_secrets_load(&ctx, &s, "libpq-used-5");

    OK(s.n == 6, "six secrets known (%d)", s.n);

    scrubbed(&s, "url postgresql://app:db pw-1@db.example/x",
             "url postgresql://app:[redacted]@db.example/x");
    scrubbed(&s, "plain db pw-1 and redis-pw-2 and django-key-3",
             "plain [redacted] and [redacted] and [redacted]");
    scrubbed(&s, "tok-4-tok-4-extra / tok-4 / libpq-used-5",
             "[redacted] / [redacted] / [redacted]");
    scrubbed(&s, "redis://:anypass@host:6379/0 and https://u:p@x",
             "redis://:[redacted]@host:6379/0 and https://u:[redacted]@x");
    scrubbed(&s, "no colon://host/path and a@b: mail, ://:@",
             "no colon://host/path and a@b: mail, ://:@");
    /* an unencoded '@' in the password: the last '@' ends it */
    scrubbed(&s, "postgres://app:p@ss@db/x?u=a@b",
             "postgres://app:[redacted]@db/x?u=a@b");
    scrubbed(&s, "", "");

    out = migctl_scrub(&s, "a\0db pw-1", 9);
    OK(out != NULL && strcmp(out, "a") == 0, "a NUL ends the text");
    free(out);

    migctl_secrets_free(&s);
    OK(s.n == 0, "freed");

    unsetenv("DATABASE_URL");
    unsetenv("UNIT_REDIS_PW");
    unsetenv("DJANGO_SECRET_KEY");
    unsetenv("API_TOKEN");
    unsetenv("PGPASSWORD");

    migctl_secrets_load(&ctx, &s, "abc");
    OK(s.n == 0, "short values are not secrets (%d)", s.n);
    migctl_secrets_free(&s);
}


static void
test_quote(void)
{
    char         buf[256], small[12];
    char *const  a[] = { "python3", "manage.py", "migrate", "--noinput",
                         "it's", "", "a b", "x=1,y:2/z@h%+" };

    buf[0] = '\0';
    migctl_shell_quote(buf, sizeof(buf), a, 8);
    OK(strcmp(buf, "python3 manage.py migrate --noinput 'it'\\''s' ''"
                   " 'a b' x=1,y:2/z@h%+") == 0, "quoted: %s", buf);

    strcpy(buf, "migctl");
    migctl_shell_quote(buf, sizeof(buf), a + 2, 1);
    OK(strcmp(buf, "migctl migrate") == 0, "appends: %s", buf);

    small[0] = '\0';
    migctl_shell_quote(small, sizeof(small), a, 8);
    OK(strlen(small) < sizeof(small), "bounded: '%s'", small);
}


static void
test_mkdirs(void)
{
    char         dir[256], deep[300];
    struct stat  sb;

    snprintf(dir, sizeof(dir), "/tmp/migctl-unit-runs-%d", (int) getpid());
    snprintf(deep, sizeof(deep), "%s/a//b/c/", dir);

    OK(migctl_mkdirs(deep, 0700) == 0, "mkdirs %s", deep);
    snprintf(deep, sizeof(deep), "%s/a/b/c", dir);
    OK(stat(deep, &sb) == 0 && S_ISDIR(sb.st_mode)
       && (sb.st_mode & 0777) == 0700, "created 0700");
    OK(migctl_mkdirs(deep, 0700) == 0, "existing: fine");
    OK(migctl_mkdirs("", 0700) != 0, "empty path refused");

    rmdir(deep);
    snprintf(deep, sizeof(deep), "%s/a/b", dir);
    rmdir(deep);
    snprintf(deep, sizeof(deep), "%s/a", dir);
    rmdir(deep);
    rmdir(dir);
}


static int
scrubbed(migctl_secrets_t *s, const char *in, const char *want)
{
    int    pass;
    char  *out;

    out = migctl_scrub(s, in, strlen(in));
    pass = OK(out != NULL && strcmp(out, want) == 0, "scrub '%s' -> '%s'",
              in, out ? out : "(null)");
    free(out);

    return pass;
}


static int
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

    return pass;
}
