/*
 * ngx_http_maintenance_reply.c: what worker 0 accepts from Redis: hiredis's
 * reader with our limits, and the shape of every reply, without nginx.
 */

#include <string.h>
#include <strings.h>

#include "ngx_http_maintenance_reply.h"


static void *ngx_http_maintenance_reply_create_array(
    const redisReadTask *task, int elements);
static int ngx_http_maintenance_reply_is(const redisReply *r, const char *s);
static void ngx_http_maintenance_reply_copy(char *dst, size_t size,
    const char *src);
static int ngx_http_maintenance_reply_str_is(const redisReply *r,
    const char *s);
static int ngx_http_maintenance_port(const char *s, size_t len);


/*
 * The reader's functions: hiredis's own, except that an array longer than
 * any reply we ask for is refused before it is allocated.  Filled from the
 * first reader created (hiredis keeps its defaults static).
 */
static redisReplyObjectFunctions   ngx_http_maintenance_reply_fns;
static void *(*ngx_http_maintenance_reply_array)(const redisReadTask *task,
    int elements);


redisReader *
ngx_http_maintenance_reply_reader(int *too_large)
{
    redisReader  *reader;

    reader = redisReaderCreate();
    if (reader == NULL) {
        return NULL;
    }

    if (ngx_http_maintenance_reply_array == NULL) {
        ngx_http_maintenance_reply_fns = *reader->fn;
        ngx_http_maintenance_reply_array = reader->fn->createArray;
        ngx_http_maintenance_reply_fns.createArray =
                                    ngx_http_maintenance_reply_create_array;
    }

    *too_large = 0;

    reader->fn = &ngx_http_maintenance_reply_fns;
    reader->privdata = too_large;

    return reader;
}


int
ngx_http_maintenance_reply_next(redisReader *reader, const int *too_large,
    redisReply **reply, const char **err)
{
    void  *r;

    r = NULL;

    if (redisReaderGetReply(reader, &r) != REDIS_OK) {
        /* the reader reports a refused array as out of memory */
        *err = *too_large ? "an array of more than 4096 elements"
                          : reader->errstr;
        return -1;
    }

    if (r == NULL) {
        return 0;
    }

    *reply = r;

    return 1;
}


int
ngx_http_maintenance_reply_over(redisReader *reader)
{
    return reader->len - reader->pos > NGX_HTTP_MAINTENANCE_REPLY_IN_MAX;
}


int
ngx_http_maintenance_reply_handshake(const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        return NGX_HTTP_MAINTENANCE_REPLY_REFUSED;
    }

    if (r->type != REDIS_REPLY_STATUS) {
        return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
    }

    return NGX_HTTP_MAINTENANCE_REPLY_OK;
}


int
ngx_http_maintenance_reply_pubsub(const redisReply *r, int subscribed,
    char *scope, size_t scope_size, uint64_t *epoch, const char **why)
{
    const redisReply  *msg;

    if (r->type == REDIS_REPLY_ERROR && !subscribed) {
        return NGX_HTTP_MAINTENANCE_REPLY_REFUSED;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING)
    {
        *why = "not a pub/sub message";
        return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
    }

    if (ngx_http_maintenance_reply_is(r->element[0], "subscribe")) {
        if (subscribed || r->element[2]->type != REDIS_REPLY_INTEGER) {
            *why = "unexpected subscribe reply";
            return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
        }

        return NGX_HTTP_MAINTENANCE_REPLY_SUBSCRIBED;
    }

    msg = r->element[2];

    if (!ngx_http_maintenance_reply_is(r->element[0], "message")
        || msg->type != REDIS_REPLY_STRING || !subscribed)
    {
        *why = "unexpected pub/sub message";
        return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
    }

    /* a bad event is only a hint lost: the next poll reads the state */

    if (mig_event_parse(msg->str, msg->len, scope, scope_size, epoch,
                        NULL, 0)
        != MIG_OK)
    {
        return NGX_HTTP_MAINTENANCE_REPLY_NOEVENT;
    }

    return NGX_HTTP_MAINTENANCE_REPLY_EVENT;
}


/*
 * Decodes HGETALL's reply with the shared codec.  Values are data from the
 * network: the whole record is accepted or the last good state is kept.
 */

int
ngx_http_maintenance_reply_state(const redisReply *r, mig_state_t *st,
    char *err, size_t errlen)
{
    size_t             i;
    const redisReply  *f, *v;

    if (r->type == REDIS_REPLY_ERROR) {
        /*
         * WRONGTYPE is about the key (a malformed state); any other error
         * (NOAUTH, LOADING, BUSY, ...) is about the server
         */

        if (r->len < 9 || strncmp(r->str, "WRONGTYPE", 9) != 0) {
            return NGX_HTTP_MAINTENANCE_REPLY_REFUSED;
        }

        ngx_http_maintenance_reply_copy(err, errlen, r->str);
        return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        ngx_http_maintenance_reply_copy(err, errlen, "not a hash");
        return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
    }

    if (r->elements == 0) {
        return NGX_HTTP_MAINTENANCE_REPLY_MISSING;
    }

    if (r->elements % 2
        || r->elements > 2 * NGX_HTTP_MAINTENANCE_REPLY_FIELDS_MAX)
    {
        ngx_http_maintenance_reply_copy(err, errlen,
                                        "too many fields in the hash");
        return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
    }

    mig_state_init(st);

    for (i = 0; i < r->elements; i += 2) {
        f = r->element[i];
        v = r->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            ngx_http_maintenance_reply_copy(err, errlen,
                                            "a field is not a string");
            return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
        }

        if (mig_state_field(st, f->str, f->len, v->str, v->len, err, errlen)
            != MIG_OK)
        {
            return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
        }
    }

    if (mig_state_finish(st, err, errlen) != MIG_OK) {
        return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
    }

    return NGX_HTTP_MAINTENANCE_REPLY_OK;
}


int
ngx_http_maintenance_reply_heartbeat(const redisReply *r, int exec,
    const redisReply **bad, const char **why)
{
    size_t  i;

    *bad = NULL;
    *why = NULL;

    if (r->type == REDIS_REPLY_ERROR) {
        *bad = r;
        return NGX_HTTP_MAINTENANCE_REPLY_FAILED;
    }

    if (!exec) {
        if (r->type != REDIS_REPLY_STATUS) {
            *why = "heartbeat: not a status";
            return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
        }

        return NGX_HTTP_MAINTENANCE_REPLY_OK;
    }

    if (r->type == REDIS_REPLY_NIL) {
        *why = "transaction aborted";
        return NGX_HTTP_MAINTENANCE_REPLY_FAILED;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        *why = "heartbeat: EXEC is not an array";
        return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
    }

    for (i = 0; i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            *bad = r->element[i];
            return NGX_HTTP_MAINTENANCE_REPLY_FAILED;
        }
    }

    return NGX_HTTP_MAINTENANCE_REPLY_OK;
}


/* get-master-addr-by-name: [ip, port], or nil: the name is unknown */

int
ngx_http_maintenance_reply_master_addr(const redisReply *r, char *ip,
    size_t iplen, int *port)
{
    if (r->type == REDIS_REPLY_NIL) {
        return 1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING)
    {
        return -1;
    }

    if (ngx_http_maintenance_reply_cstr(r->element[0], ip, iplen) != 0) {
        return -1;
    }

    *port = ngx_http_maintenance_port(r->element[1]->str,
                                      r->element[1]->len);

    return *port > 0 ? 0 : -1;
}


/* one entry of "SENTINEL sentinels": flat field, value pairs */

int
ngx_http_maintenance_reply_sentinel(const redisReply *r, char *ip,
    size_t iplen, int *port)
{
    int      have_ip;
    size_t   i;

    have_ip = 0;
    *port = 0;

    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        return -1;
    }

    for (i = 0; i < r->elements; i += 2) {
        if (r->element[i]->type != REDIS_REPLY_STRING
            || r->element[i + 1]->type != REDIS_REPLY_STRING)
        {
            return -1;
        }

        if (ngx_http_maintenance_reply_str_is(r->element[i], "ip")) {
            if (ngx_http_maintenance_reply_cstr(r->element[i + 1], ip, iplen)
                != 0)
            {
                return -1;
            }

            have_ip = 1;

        } else if (ngx_http_maintenance_reply_str_is(r->element[i], "port")) {
            *port = ngx_http_maintenance_port(r->element[i + 1]->str,
                                              r->element[i + 1]->len);
        }
    }

    return have_ip && *port > 0 ? 0 : -1;
}


/* ROLE: an array whose first element names the role */

int
ngx_http_maintenance_reply_role(const redisReply *r, char *role,
    size_t rolelen)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0
        || r->element[0]->type != REDIS_REPLY_STRING)
    {
        return -1;
    }

    return ngx_http_maintenance_reply_cstr(r->element[0], role, rolelen);
}


/*
 * The subscription to +switch-master: AUTH's +OK (before the
 * confirmation), the confirmation, messages, and pongs (["pong", ""] on a
 * subscribed connection); anything else closes the connection.
 */

int
ngx_http_maintenance_reply_switch_sub(const redisReply *r, int subscribed,
    const char **why)
{
    if (r->type == REDIS_REPLY_STATUS && !subscribed) {
        return NGX_HTTP_MAINTENANCE_REPLY_OK;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        return NGX_HTTP_MAINTENANCE_REPLY_REFUSED;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2
        || r->element[0]->type != REDIS_REPLY_STRING)
    {
        *why = "malformed reply: not a pub/sub message";
        return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
    }

    if (ngx_http_maintenance_reply_str_is(r->element[0], "pong")) {
        return NGX_HTTP_MAINTENANCE_REPLY_OK;
    }

    if (r->elements != 3 || r->element[1]->type != REDIS_REPLY_STRING) {
        *why = "malformed reply: not a pub/sub message";
        return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
    }

    if (ngx_http_maintenance_reply_str_is(r->element[0], "subscribe")) {
        if (subscribed || r->element[2]->type != REDIS_REPLY_INTEGER) {
            *why = "malformed reply: unexpected subscribe reply";
            return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
        }

        return NGX_HTTP_MAINTENANCE_REPLY_SUBSCRIBED;
    }

    if (!ngx_http_maintenance_reply_str_is(r->element[0], "message")
        || !ngx_http_maintenance_reply_str_is(r->element[1],
                                              "+switch-master")
        || r->element[2]->type != REDIS_REPLY_STRING || !subscribed)
    {
        *why = "malformed reply: unexpected pub/sub message";
        return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
    }

    return NGX_HTTP_MAINTENANCE_REPLY_EVENT;
}


/*
 * "name oldip oldport newip newport": 1 and the new address if the name
 * is ours, 0 if it is another master's, -1 malformed
 */

int
ngx_http_maintenance_switch_master_parse(const char *msg, size_t len,
    const char *name, char *ip, size_t iplen, int *port)
{
    size_t       f[5], l[5], i, n, start;
    const char  *end;

    n = 0;
    i = 0;

    while (i < len && n < 5) {
        while (i < len && msg[i] == ' ') {
            i++;
        }

        if (i == len) {
            break;
        }

        start = i;

        while (i < len && msg[i] != ' ') {
            i++;
        }

        f[n] = start;
        l[n] = i - start;
        n++;
    }

    while (i < len && msg[i] == ' ') {
        i++;
    }

    if (n != 5 || i != len) {
        return -1;
    }

    if (strlen(name) != l[0] || memcmp(msg + f[0], name, l[0]) != 0) {
        return 0;
    }

    if (l[3] == 0 || l[3] >= iplen) {
        return -1;
    }

    end = msg + f[3] + l[3];

    for (i = f[3]; msg + i < end; i++) {
        /* an IPv4 or IPv6 address, or a host name (resolve-hostnames) */
        if (!((msg[i] >= '0' && msg[i] <= '9')
              || (msg[i] >= 'a' && msg[i] <= 'z')
              || (msg[i] >= 'A' && msg[i] <= 'Z')
              || msg[i] == '.' || msg[i] == ':' || msg[i] == '-'
              || msg[i] == '_'))
        {
            return -1;
        }
    }

    memcpy(ip, msg + f[3], l[3]);
    ip[l[3]] = '\0';

    *port = ngx_http_maintenance_port(msg + f[4], l[4]);

    return *port > 0 ? 1 : -1;
}


/* a string reply as a C string: 0, or -1 if empty, too long or with NUL */

int
ngx_http_maintenance_reply_cstr(const redisReply *r, char *buf, size_t size)
{
    size_t  len;

    if ((r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS
         && r->type != REDIS_REPLY_ERROR)
        || r->len == 0)
    {
        buf[0] = '\0';
        return -1;
    }

    len = r->len;

    if (len >= size || memchr(r->str, '\0', len) != NULL) {
        len = len < size - 1 ? len : size - 1;
        memcpy(buf, r->str, len);
        buf[len] = '\0';
        return -1;
    }

    memcpy(buf, r->str, len);
    buf[len] = '\0';

    return 0;
}


static void *
ngx_http_maintenance_reply_create_array(const redisReadTask *task,
    int elements)
{
    int  *too_large;

    if (elements > NGX_HTTP_MAINTENANCE_REPLY_ELTS_MAX) {
        /* the reader reports NULL as out of memory: say what it was */
        too_large = task->privdata;
        *too_large = 1;
        return NULL;
    }

    return ngx_http_maintenance_reply_array(task, elements);
}


static int
ngx_http_maintenance_reply_is(const redisReply *r, const char *s)
{
    size_t  len;

    len = strlen(s);

    return r->len == len && strncasecmp(r->str, s, len) == 0;
}


/* as ngx_cpystrn(): up to size - 1 bytes or the first NUL, terminated */

static void
ngx_http_maintenance_reply_copy(char *dst, size_t size, const char *src)
{
    size_t  n;

    if (size == 0) {
        return;
    }

    for (n = 0; n < size - 1 && src[n] != '\0'; n++) {
        dst[n] = src[n];
    }

    dst[n] = '\0';
}


/* a string reply equal to s, ASCII letters in either case, nothing else */

static int
ngx_http_maintenance_reply_str_is(const redisReply *r, const char *s)
{
    return r->type == REDIS_REPLY_STRING
           && ngx_http_maintenance_reply_is(r, s);
}


/* a decimal port, 1..65535, or 0 */

static int
ngx_http_maintenance_port(const char *s, size_t len)
{
    int     port;
    size_t  i;

    if (len == 0 || len > 5) {
        return 0;
    }

    port = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }

        port = port * 10 + (s[i] - '0');
    }

    return port <= 65535 ? port : 0;
}
