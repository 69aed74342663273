/*
 * redact.c: the one redaction routine for query texts and URLs migctl
 * prints or stores: secrets out, control characters escaped, valid UTF-8.
 */

#include <string.h>
#include <strings.h>

#include "migctl.h"


#define REDACTED  "[redacted]"

typedef struct {
    char    *out;
    size_t   size;
    size_t   n;
    size_t   limit;                 /* room for text, "..." kept aside */
    int      flags;
    int      full;                  /* a unit did not fit: "..." at end */
    int      space;                 /* ONELINE: a blank is pending */
} redact_out_t;


static size_t secret(const char *s, const char *start, size_t *skip,
    int *quoted);
static size_t value(const char *v, int assigned, int *quoted);
static size_t sql_literal(const char *v, int backslash);
static size_t dollar_quoted(const char *v);
static void put(redact_out_t *o, const char *s, size_t len);
static void put_unit(redact_out_t *o, const char *s, size_t len);
static size_t utf8_len(const char *s, size_t avail);
static int ident_char(int c);
static int blank(int c);


size_t
migctl_redact_query(const char *in, char *out, size_t size, int flags)
{
    int            quoted;
    size_t         n, skip, len, inlen;
    const char    *p, *from;
    redact_out_t   o;

    if (size == 0) {
        return 0;
    }

    o.out = out;
    o.size = size;
    o.n = 0;
    o.limit = size > 4 ? size - 4 : 0;
    o.flags = flags;
    o.full = 0;
    o.space = 0;

    if (in == NULL) {
        in = "";
    }

    from = in;
    inlen = strlen(in);

    for (p = in; *p != '\0' && !o.full; p++) {

        /* "user:secret@" inside a URL's authority */
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            n = migctl_url_password(p + 3, inlen - (size_t) (p + 3 - in),
                                    &len);
            if (len > 0) {
                put(&o, from, (size_t) (p + 3 + n - from));
                put(&o, REDACTED, sizeof(REDACTED) - 1);
                p += 3 + n + len;
                from = p;
                p--;
            }
            continue;
        }

        /* PASSWORD 'x', password=x, "password": "x", PGPASSWORD=x */
        if ((*p == 'p' || *p == 'P')
            && (len = secret(p, in, &skip, &quoted)) > 0)
        {
            put(&o, from, (size_t) (p + skip - from));
            if (quoted) {
                put(&o, "'" REDACTED "'", sizeof(REDACTED) + 1);
            } else {
                put(&o, REDACTED, sizeof(REDACTED) - 1);
            }
            from = p + skip + len;
            p = from - 1;
        }
    }

    if (!o.full) {
        put(&o, from, strlen(from));
    }

    if (o.full) {
        memcpy(o.out + o.n, "...", 3);
        o.n += 3;
    }

    o.out[o.n] = '\0';

    return o.n;
}


/*
 * At s, maybe the word "password": when a secret follows, returns its
 * length, with *skip its offset from s and *quoted whether it is a
 * quoted form; else 0.  Over-redaction is preferred to a leak.
 */
static size_t
secret(const char *s, const char *start, size_t *skip, int *quoted)
{
    int          assigned;
    size_t       len;
    const char  *v;

    /* any case; "password_encryption" is another word */
    if (strncasecmp(s, "password", 8) != 0
        || ident_char((unsigned char) s[8]))
    {
        return 0;
    }

    v = s + 8;
    assigned = 0;

    if (*v == '"') {                         /* "password": "x" */
        v++;
    }

    while (blank((unsigned char) *v)) {
        v++;
    }

    if (*v == '=' || *v == ':') {
        assigned = 1;
        v++;
        while (blank((unsigned char) *v)) {
            v++;
        }

    } else if (s > start && ident_char((unsigned char) s[-1])) {
        /* "PASSWORD 'x'" needs a word: not "mypassword 'x'" */
        return 0;
    }

    len = value(v, assigned, quoted);
    if (len > 0) {
        *skip = (size_t) (v - s);
    }

    return len;
}


/*
 * The length of the secret value at v, 0 when there is none.  *quoted
 * tells whether it is a quoted form.  Bare values count only after "="
 * or ":" (PASSWORD NULL, PASSWORD $1 are no secrets).
 */
static size_t
value(const char *v, int assigned, int *quoted)
{
    size_t  n;

    *quoted = 1;

    /* conninfo inside a SQL literal: password=''x y'' */
    if (assigned && v[0] == '\'' && v[1] == '\'' && v[2] != '\0'
        && v[2] != '\'' && !blank((unsigned char) v[2]) && v[2] != ','
        && v[2] != ')' && v[2] != ';')
    {
        for (n = 2; v[n] != '\0'; n++) {
            if (v[n] == '\'' && v[n + 1] == '\'') {
                return n + 2;
            }
        }
        return n;
    }

    if (v[0] == '\'') {
        return sql_literal(v, 0);
    }

    if ((v[0] == 'E' || v[0] == 'e') && v[1] == '\'') {
        return 1 + sql_literal(v + 1, 1);
    }

    if ((v[0] == 'U' || v[0] == 'u') && v[1] == '&' && v[2] == '\'') {
        return 2 + sql_literal(v + 2, 0);
    }

    if (v[0] == '$') {
        n = dollar_quoted(v);
        if (n > 0) {
            return n;
        }
    }

    if (v[0] == '"') {                       /* JSON: "x", \" escapes */
        for (n = 1; v[n] != '\0' && v[n] != '"'; n++) {
            if (v[n] == '\\' && v[n + 1] != '\0') {
                n++;
            }
        }
        return v[n] == '"' ? n + 1 : n;
    }

    if (!assigned) {
        return 0;
    }

    *quoted = 0;

    /* conninfo or URL parameter: up to a blank, a quote or "&" */
    for (n = 0; v[n] != '\0' && !blank((unsigned char) v[n])
                && v[n] != '\'' && v[n] != '"' && v[n] != '&'; n++)
    {
        /* void */
    }

    return n;
}


/* '...' with '' (and \x when backslash) escapes; to the end if open */
static size_t
sql_literal(const char *v, int backslash)
{
    size_t  n;

    for (n = 1; v[n] != '\0'; n++) {
        if (backslash && v[n] == '\\' && v[n + 1] != '\0') {
            n++;
            continue;
        }

        if (v[n] == '\'') {
            if (v[n + 1] == '\'') {
                n++;
                continue;
            }
            return n + 1;
        }
    }

    return n;
}


/* $$...$$ or $tag$...$tag$; 0 when v is no dollar quote ($1) */
static size_t
dollar_quoted(const char *v)
{
    size_t       t, n;
    const char  *end;

    for (t = 1; v[t] != '$'; t++) {
        if (v[t] == '\0' || !ident_char((unsigned char) v[t])
            || (t == 1 && v[t] >= '0' && v[t] <= '9'))
        {
            return 0;
        }
    }

    t++;                                     /* the tag with both '$' */

    for (end = v + t; *end != '\0'; end++) {
        if (*end == '$' && strncmp(end, v, t) == 0) {
            return (size_t) (end - v) + t;
        }
    }

    n = t + strlen(v + t);

    return n;
}


/*
 * s (len bytes) follows "://".  When the authority has "user:secret@",
 * returns the offset of the secret and sets *pwlen, else *pwlen is 0.  The
 * last '@' of the authority ends it (an unencoded '@' in a password).
 */
size_t
migctl_url_password(const char *s, size_t len, size_t *pwlen)
{
    size_t  n, colon, at;

    *pwlen = 0;
    colon = 0;
    at = 0;

    for (n = 0; n < len && s[n] != '\0' && s[n] != '/' && s[n] != '?'
                && s[n] != '#' && s[n] != '\'' && s[n] != '"'
                && !blank((unsigned char) s[n]);
         n++)
    {
        if (s[n] == ':' && colon == 0 && at == 0) {
            colon = n + 1;
        }

        if (s[n] == '@') {
            at = n;
        }
    }

    if (colon == 0 || at < colon) {
        return 0;
    }

    *pwlen = at - colon;

    return colon;
}


/* raw bytes of the input: control characters escaped, UTF-8 checked */
static void
put(redact_out_t *o, const char *s, size_t len)
{
    char            esc[8];
    size_t          i, u;
    unsigned char   c;

    for (i = 0; i < len && !o->full; i += u) {
        c = (unsigned char) s[i];
        u = 1;

        if ((o->flags & MIGCTL_REDACT_ONELINE) && blank(c)) {
            o->space = o->n > 0;
            continue;
        }

        if ((o->flags & MIGCTL_REDACT_KEEP_NL) && (c == '\n' || c == '\t')) {
            put_unit(o, s + i, 1);
            continue;
        }

        if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            put_unit(o, esc, 4);
            continue;
        }

        if (c >= 0x80) {
            u = utf8_len(s + i, len - i);
            if (u == 0) {
                u = 1;
                snprintf(esc, sizeof(esc), "\\x%02x", c);
                put_unit(o, esc, 4);
                continue;
            }
        }

        put_unit(o, s + i, u);
    }
}


/* one character (or escape) whole, or none and the output is full */
static void
put_unit(redact_out_t *o, const char *s, size_t len)
{
    size_t  need;

    need = len + (o->space ? 1 : 0);

    if (o->n + need > o->limit) {
        o->full = 1;
        return;
    }

    if (o->space) {
        o->out[o->n++] = ' ';
        o->space = 0;
    }

    memcpy(o->out + o->n, s, len);
    o->n += len;
}


/* the length of the well-formed UTF-8 sequence at s, 0 if it is not */
static size_t
utf8_len(const char *s, size_t avail)
{
    size_t          n, i;
    unsigned char   c, c1;
    unsigned int    min, cp;

    c = (unsigned char) s[0];

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2; cp = c & 0x1f; min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3; cp = c & 0x0f; min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4; cp = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }

    if (avail < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        c1 = (unsigned char) s[i];
        if ((c1 & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (c1 & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }

    return n;
}


static int
ident_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}


static int
blank(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
}
