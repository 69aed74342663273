/*
 * opt.c: TAP unit test of migctl's option parser (ctl/opt.c): both forms
 * of every type, operands, "--", bounds, errors and --help.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"


#define OK(cond, ...)  ok_(!!(cond), __VA_ARGS__)


static int  tests, failed;


static int ok_(int pass, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int parse(int argc, const char **in, char ***argvp, int *nargs);
static void test_forms(void);
static void test_errors(void);
static void test_durations(void);


static int            flag, num, wait_s;
static long           dur;
static const char    *str;
static migctl_strv_t  list;
static migctl_ctx_t   ctx;

static const migctl_opt_t  opts[] = {
    { "--flag", MIGCTL_OPT_FLAG, &flag, NULL, 0, 0, 0 },
    { "--num", MIGCTL_OPT_INT, &num, "N", 0, 10, 0 },
    { "--str", MIGCTL_OPT_STRING, &str, "TEXT", 0, 0, 0 },
    { "--app", MIGCTL_OPT_STRINGS, &list, "APP", 0, 0, 0 },
    { "--timeout", MIGCTL_OPT_DURATION, &dur, "D", 10, 60000, 0 },
    { "--wait", MIGCTL_OPT_OPTIONAL_SECONDS, &wait_s, "S", 0, 3600, 30 },
    { NULL, 0, NULL, NULL, 0, 0, 0 }
};


int
main(void)
{
    ctx.cmd = "unit";

    test_forms();
    test_errors();
    test_durations();

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}


static void
test_forms(void)
{
    int          rc, n;
    char       **argv;
    const char  *a1[] = { "cmd", "--flag", "--num", "7", "op1",
                          "--str=x y", "--app", "a", "--app=b",
                          "--timeout", "2s", "--wait", "op2", NULL };
    const char  *a2[] = { "cmd", "--num=3", "--wait=5", "--timeout=250ms",
                          "--", "--flag", "-x", NULL };
    const char  *a3[] = { "cmd", "--wait", "12", "-", NULL };

    rc = parse(13, a1, &argv, &n);
    OK(rc == MIGCTL_OK, "separate and = forms parse");
    OK(flag == 1 && num == 7 && str && strcmp(str, "x y") == 0,
       "flag, int, string");
    OK(list.n == 2 && strcmp(list.v[0], "a") == 0
       && strcmp(list.v[1], "b") == 0, "a repeated option keeps both");
    OK(dur == 2000, "2s is 2000 ms (%ld)", dur);
    OK(wait_s == 30, "--wait alone takes its default (%d)", wait_s);
    OK(n == 3 && strcmp(argv[1], "op1") == 0 && strcmp(argv[2], "op2") == 0
       && argv[3] == NULL, "operands kept in order");
    free(argv);

    flag = 0;
    rc = parse(7, a2, &argv, &n);
    OK(rc == MIGCTL_OK && num == 3 && wait_s == 5 && dur == 250,
       "--num=3 --wait=5 --timeout=250ms");
    OK(flag == 0 && n == 3 && strcmp(argv[1], "--flag") == 0
       && strcmp(argv[2], "-x") == 0, "after --, options are operands");
    free(argv);

    rc = parse(4, a3, &argv, &n);
    OK(rc == MIGCTL_OK && wait_s == 12 && n == 2
       && strcmp(argv[1], "-") == 0, "--wait 12 takes the number; - is an "
       "operand");
    free(argv);
}


static void
test_errors(void)
{
    int          rc, n;
    char       **argv;
    const char  *bad[][3] = {
        { "cmd", "--nope", NULL },
        { "cmd", "--num", NULL },
        { "cmd", "--num=11", NULL },
        { "cmd", "--num=1x", NULL },
        { "cmd", "--str=", NULL },
        { "cmd", "--flag=1", NULL },
        { "cmd", "--timeout=5ms", NULL },
        { "cmd", "--timeout=2x", NULL },
        { "cmd", "--wait=-1", NULL },
    };
    const char  *help[] = { "cmd", "--help", NULL };
    const char  *none[] = { "cmd", "--flag", "op1", NULL };
    size_t       i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ctx.error[0] = '\0';
        rc = parse(2, bad[i], &argv, &n);
        OK(rc == MIGCTL_USAGE && ctx.error[0] != '\0',
           "%s: usage error (%s)", bad[i][1], ctx.error);
        free(argv);
    }

    rc = parse(2, help, &argv, &n);
    OK(rc == MIGCTL_OPT_HELP, "--help");
    free(argv);

    /* nargs NULL: a command that takes no operand */
    ctx.error[0] = '\0';
    rc = parse(3, none, &argv, NULL);
    OK(rc == MIGCTL_USAGE
       && strstr(ctx.error, "unexpected argument 'op1': see migctl unit "
                 "--help") != NULL, "an operand refused (%s)", ctx.error);
    free(argv);

    rc = parse(2, none, &argv, NULL);
    OK(rc == MIGCTL_OK, "no operand, nargs NULL: ok");
    free(argv);
}


static void
test_durations(void)
{
    long  ms;

    OK(migctl_parse_duration_ms("1.5s", 100000, &ms) == 0 && ms == 1500,
       "1.5s");
    OK(migctl_parse_duration_ms("2m", 1000000, &ms) == 0 && ms == 120000,
       "2m");
    OK(migctl_parse_duration_ms("3", 100000, &ms) == 0 && ms == 3000,
       "a bare number is seconds");
    OK(migctl_parse_duration_ms("1h", 1000, &ms) == -1, "above the max");
    OK(migctl_parse_duration_ms("", 1000, &ms) == -1, "empty");
    OK(migctl_parse_duration_ms("-1s", 1000, &ms) == -1, "negative");
    OK(migctl_parse_duration_ms("nan", 1000, &ms) == -1, "nan");
}


static int
parse(int argc, const char **in, char ***argvp, int *nargs)
{
    int  i;

    *argvp = calloc(argc + 1, sizeof(char *));
    for (i = 0; i < argc; i++) {
        (*argvp)[i] = (char *) in[i];
    }

    return migctl_opt_parse(&ctx, opts, argc, *argvp, nargs, NULL);
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
