/*
 * check_http.c: the http health check: one libcurl GET, TLS verified,
 * bounded by the check's timeout; status, body text and a header value.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "health.h"


#define BODY_MAX     (256 * 1024)            /* kept to look for the text */
#define TOKEN_MAX    4096


typedef struct {
    char         *body;
    size_t        len;
    const char   *hname;                     /* expect_header's name */
    size_t        hnlen;
    char          hvalue[512];               /* its value as received */
    int           hseen;
} http_t;


static size_t on_body(char *p, size_t size, size_t n, void *data);
static size_t on_header(char *p, size_t size, size_t n, void *data);
static int read_token(const char *path, char *buf, size_t size, char *err,
    size_t errlen);
static void last_line(const char *body, size_t len, char *out, size_t size);


void
migctl_check_http(migctl_check_run_t *r)
{
    long                   status, left;
    char                   token[TOKEN_MAX + 64], err[CURL_ERROR_SIZE],
                           line[200];
    const char            *want, *eh;
    CURL                  *h;
    CURLcode               cc;
    http_t                 st;
    struct curl_slist     *hdrs, *res;
    const migctl_check_t  *ck = r->ck;

    r->ok = 0;
    hdrs = NULL;
    res = NULL;
    h = NULL;
    memset(&st, 0, sizeof(http_t));

    if (ck->bypass_token_file != NULL) {
        memcpy(token, "X-Maintenance-Bypass: ", 22);
        if (read_token(ck->bypass_token_file, token + 22, TOKEN_MAX, r->detail,
                       sizeof(r->detail)) != 0)
        {
            goto done;
        }

        hdrs = curl_slist_append(hdrs, token);
        explicit_bzero(token, sizeof(token));
        if (hdrs == NULL) {
            snprintf(r->detail, sizeof(r->detail), "out of memory");
            goto done;
        }
    }

    eh = ck->expect_header;
    if (eh != NULL) {
        st.hname = eh;
        st.hnlen = (size_t) (strchr(eh, ':') - eh);
    }

    h = curl_easy_init();
    if (h == NULL) {
        snprintf(r->detail, sizeof(r->detail), "libcurl: cannot start");
        goto done;
    }

    left = (long) (r->deadline - migctl_now_ms());
    if (left < 1) {
        left = 1;
    }

    err[0] = '\0';

    /* threads: no signals (the threaded resolver keeps the timeout) */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_URL, ck->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, left);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "migctl-health/" MIG_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &st);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &st);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);

    if (ck->ca_file != NULL) {
        curl_easy_setopt(h, CURLOPT_CAINFO, ck->ca_file);
    }

    if (ck->resolve != NULL) {
        /* one edge by its address, with the site's name (Host, SNI) */
        res = curl_slist_append(NULL, ck->resolve);
        if (res == NULL) {
            snprintf(r->detail, sizeof(r->detail), "out of memory");
            goto done;
        }

        curl_easy_setopt(h, CURLOPT_RESOLVE, res);
    }

    if (hdrs != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    }

    cc = curl_easy_perform(h);

    if (cc != CURLE_OK) {
        if (cc == CURLE_OPERATION_TIMEDOUT) {
            snprintf(r->detail, sizeof(r->detail), "timed out after %d ms:"
                     " %s", ck->timeout_ms, err[0] ? err
                                                  : curl_easy_strerror(cc));
        } else {
            snprintf(r->detail, sizeof(r->detail), "GET failed: %s",
                     err[0] ? err : curl_easy_strerror(cc));
        }
        goto done;
    }

    status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    last_line(st.body, st.len, line, sizeof(line));

    if (status != ck->expect_status) {
        snprintf(r->detail, sizeof(r->detail), "HTTP %ld, want %d%s%s",
                 status, ck->expect_status, line[0] ? ": " : "", line);
        goto done;
    }

    if (ck->expect_body != NULL
        && (st.body == NULL || strstr(st.body, ck->expect_body) == NULL))
    {
        snprintf(r->detail, sizeof(r->detail), "HTTP %ld but the body lacks"
                 " \"%.100s\"%s%s", status, ck->expect_body,
                 line[0] ? ": " : "", line);
        goto done;
    }

    if (eh != NULL) {
        want = eh + st.hnlen + 1;
        while (*want == ' ' || *want == '\t') {
            want++;
        }

        if (!st.hseen) {
            snprintf(r->detail, sizeof(r->detail), "HTTP %ld without a"
                     " %.*s header", status, (int) st.hnlen, eh);
            goto done;
        }

        if (strcmp(st.hvalue, want) != 0) {
            snprintf(r->detail, sizeof(r->detail), "%.*s is \"%.200s\","
                     " want \"%.200s\"", (int) st.hnlen, eh, st.hvalue,
                     want);
            goto done;
        }
    }

    snprintf(r->detail, sizeof(r->detail), "HTTP %ld%s%s", status,
             line[0] ? ": " : "", line);
    r->ok = 1;

done:

    if (h != NULL) {
        curl_easy_cleanup(h);
    }

    curl_slist_free_all(hdrs);
    curl_slist_free_all(res);
    free(st.body);
}


static size_t
on_body(char *p, size_t size, size_t n, void *data)
{
    char    *b;
    size_t   len, keep;
    http_t  *st = data;

    len = size * n;
    keep = st->len + len > BODY_MAX ? BODY_MAX - st->len : len;

    if (keep > 0) {
        b = realloc(st->body, st->len + keep + 1);
        if (b == NULL) {
            return 0;
        }

        memcpy(b + st->len, p, keep);
        st->len += keep;
        b[st->len] = '\0';
        st->body = b;
    }

    return len;                              /* the rest is read, not kept */
}


static size_t
on_header(char *p, size_t size, size_t n, void *data)
{
    size_t   len, i, j;
    http_t  *st = data;

    len = size * n;

    /* a new response (a 100 Continue, a redirect) starts afresh */
    if (len > 5 && memcmp(p, "HTTP/", 5) == 0) {
        st->hseen = 0;
        st->hvalue[0] = '\0';
        return len;
    }

    if (st->hname == NULL || len <= st->hnlen || p[st->hnlen] != ':'
        || strncasecmp(p, st->hname, st->hnlen) != 0)
    {
        return len;
    }

    for (i = st->hnlen + 1; i < len && (p[i] == ' ' || p[i] == '\t'); i++) {
        /* void */
    }

    for (j = 0; i < len && p[i] != '\r' && p[i] != '\n'
                && j < sizeof(st->hvalue) - 1; i++)
    {
        st->hvalue[j++] = isprint((unsigned char) p[i]) ? p[i] : '?';
    }

    st->hvalue[j] = '\0';
    st->hseen = 1;

    return len;
}


/* the token: the file's first line, never printed */
static int
read_token(const char *path, char *buf, size_t size, char *err,
    size_t errlen)
{
    int     rc;
    char   *data;
    size_t  len, n;

    if (migctl_read_file(path, &data, &len, err, errlen) != 0) {
        return -1;
    }

    for (n = 0; n < len && data[n] != '\n' && data[n] != '\r'; n++) {
        /* void */
    }

    rc = -1;

    if (n == 0 || n >= size) {
        snprintf(err, errlen, "bypass_token_file %s: want one line of 1..%zu"
                 " bytes", path, size - 1);
        goto done;
    }

    memcpy(buf, data, n);
    buf[n] = '\0';
    rc = 0;

done:

    explicit_bzero(data, len);
    free(data);

    return rc;
}


static void
last_line(const char *body, size_t len, char *out, size_t size)
{
    size_t       n, i;
    const char  *p;

    out[0] = '\0';

    if (body == NULL) {
        return;
    }

    while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r'
                       || body[len - 1] == ' '))
    {
        len--;
    }

    for (p = body + len; p > body && p[-1] != '\n'; p--) {
        /* void */
    }

    n = (size_t) (body + len - p);
    if (n > size - 1) {
        n = size - 1;
    }

    for (i = 0; i < n; i++) {
        out[i] = ((unsigned char) p[i] < 0x20 || p[i] == 0x7f) ? ' ' : p[i];
    }

    out[n] = '\0';
}
