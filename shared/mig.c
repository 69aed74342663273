/*
 * mig.c: the state codec and key names shared by the module and migctl.
 * Allocates nothing: callers pass buffers.
 */

#include <stdio.h>
#include <string.h>

#include "mig.h"


#define MIG_ERR(...)  do { if (err && errlen) snprintf(err, errlen,           \
                               __VA_ARGS__); } while (0)


static int key2(char *buf, size_t size, const char *prefix,
    const char *suffix);
static int key3(char *buf, size_t size, const char *prefix,
    const char *mid, const char *name);
static int copy_text(char *dst, size_t max, const char *field,
    const char *value, size_t vlen, char *err, size_t errlen);
static int field_is(const char *name, size_t nlen, const char *literal);


const char *
mig_mode_str(mig_mode_e mode)
{
    switch (mode) {
    case MIG_MODE_ON:
        return "on";
    case MIG_MODE_OFF:
        return "off";
    default:
        return "unset";
    }
}


int
mig_name_valid(const char *s, size_t len, char *err, size_t errlen)
{
    size_t  i;
    char    c;

    if (len == 0) {
        MIG_ERR("empty name");
        return MIG_EINVAL;
    }

    if (len > MIG_NAME_MAX) {
        MIG_ERR("name longer than %d characters", MIG_NAME_MAX);
        return MIG_ERANGE;
    }

    for (i = 0; i < len; i++) {
        c = s[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')
        {
            continue;
        }

        MIG_ERR("invalid character in name \"%.*s\": use letters, digits,"
                " '_', '-' and '.'", (int) len, s);
        return MIG_EINVAL;
    }

    return MIG_OK;
}


/*
 * A scope is a name that is not one of the fixed fields of P:edge:<node>,
 * where scopes and those fields share one hash.
 */

int
mig_scope_valid(const char *s, size_t len, char *err, size_t errlen)
{
    static const char  *reserved[] = { "seen_ms", "version", "pid", NULL };
    const char        **r;

    if (mig_name_valid(s, len, err, errlen) != MIG_OK) {
        return MIG_EINVAL;
    }

    for (r = reserved; *r; r++) {
        if (strlen(*r) == len && memcmp(*r, s, len) == 0) {
            MIG_ERR("\"%s\" is reserved (a field of the edge hash), not a"
                    " scope name", *r);
            return MIG_EINVAL;
        }
    }

    return MIG_OK;
}


int
mig_key_state(char *buf, size_t size, const char *prefix, const char *scope)
{
    return key3(buf, size, prefix, "state", scope);
}


int
mig_key_state_pattern(char *buf, size_t size, const char *prefix)
{
    return key2(buf, size, prefix, "state:*");
}


int
mig_key_events(char *buf, size_t size, const char *prefix)
{
    return key2(buf, size, prefix, "events");
}


int
mig_key_edges(char *buf, size_t size, const char *prefix)
{
    return key2(buf, size, prefix, "edges");
}


int
mig_key_edge(char *buf, size_t size, const char *prefix, const char *node)
{
    return key3(buf, size, prefix, "edge", node);
}


int
mig_key_audit(char *buf, size_t size, const char *prefix)
{
    return key2(buf, size, prefix, "audit");
}


void
mig_state_init(mig_state_t *st)
{
    memset(st, 0, sizeof(mig_state_t));
}


int
mig_state_field(mig_state_t *st, const char *name, size_t nlen,
    const char *value, size_t vlen, char *err, size_t errlen)
{
    uint64_t  n;

    if (field_is(name, nlen, "mode")) {
        if (vlen == 2 && memcmp(value, "on", 2) == 0) {
            st->mode = MIG_MODE_ON;
            return MIG_OK;
        }

        if (vlen == 3 && memcmp(value, "off", 3) == 0) {
            st->mode = MIG_MODE_OFF;
            return MIG_OK;
        }

        MIG_ERR("mode \"%.*s\" is not \"on\" or \"off\"",
                (int) (vlen > 32 ? 32 : vlen), value);
        return MIG_EINVAL;
    }

    if (field_is(name, nlen, "epoch")) {
        if (mig_parse_u64(value, vlen, UINT64_MAX, &st->epoch) != MIG_OK) {
            MIG_ERR("epoch \"%.*s\" is not an unsigned integer",
                    (int) (vlen > 32 ? 32 : vlen), value);
            return MIG_EINVAL;
        }

        st->have_epoch = 1;
        return MIG_OK;
    }

    if (field_is(name, nlen, "since")) {
        if (mig_parse_i64(value, vlen, &st->since) != MIG_OK
            || st->since < 0)
        {
            MIG_ERR("since \"%.*s\" is not a unix time",
                    (int) (vlen > 32 ? 32 : vlen), value);
            return MIG_EINVAL;
        }

        return MIG_OK;
    }

    if (field_is(name, nlen, "retry_after")) {
        if (mig_parse_u64(value, vlen, MIG_RETRY_AFTER_MAX, &n) != MIG_OK) {
            MIG_ERR("retry_after \"%.*s\" is not 0..%d seconds",
                    (int) (vlen > 32 ? 32 : vlen), value,
                    MIG_RETRY_AFTER_MAX);
            return MIG_EINVAL;
        }

        st->retry_after = (uint32_t) n;
        return MIG_OK;
    }

    if (field_is(name, nlen, "reason")) {
        return copy_text(st->reason, MIG_REASON_MAX, "reason", value, vlen,
                         err, errlen);
    }

    if (field_is(name, nlen, "release")) {
        return copy_text(st->release, MIG_RELEASE_MAX, "release", value,
                         vlen, err, errlen);
    }

    if (field_is(name, nlen, "actor")) {
        return copy_text(st->actor, MIG_ACTOR_MAX, "actor", value, vlen,
                         err, errlen);
    }

    /* unknown fields are ignored: a newer writer may add some */
    return MIG_OK;
}


int
mig_state_finish(mig_state_t *st, char *err, size_t errlen)
{
    if (st->mode == MIG_MODE_UNSET) {
        MIG_ERR("state has no mode field");
        return MIG_EMISSING;
    }

    return MIG_OK;
}


int
mig_text_valid(const char *s, size_t len, char *err, size_t errlen)
{
    size_t          i, n, k;
    uint32_t        cp;
    unsigned char   c;

    for (i = 0; i < len; i += n) {
        c = (unsigned char) s[i];

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                MIG_ERR("control character 0x%02x at byte %zu", c, i);
                return MIG_EINVAL;
            }

            n = 1;
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1f;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0f;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07;

        } else {
            goto invalid;
        }

        if (i + n > len) {
            goto invalid;
        }

        for (k = 1; k < n; k++) {
            c = (unsigned char) s[i + k];
            if ((c & 0xc0) != 0x80) {
                goto invalid;
            }
            cp = (cp << 6) | (c & 0x3f);
        }

        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)
            || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        {
            goto invalid;
        }
    }

    return MIG_OK;

invalid:

    MIG_ERR("invalid UTF-8 at byte %zu", i);
    return MIG_EINVAL;
}


int
mig_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    size_t    i;
    uint64_t  n, d;

    if (len == 0 || len > 20) {
        return MIG_EINVAL;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return MIG_EINVAL;
        }

        d = (uint64_t) (s[i] - '0');

        if (d > max || n > (max - d) / 10) {
            return MIG_ERANGE;
        }

        n = n * 10 + d;
    }

    *out = n;
    return MIG_OK;
}


int
mig_parse_i64(const char *s, size_t len, int64_t *out)
{
    int       rc;
    uint64_t  n;

    if (len > 0 && s[0] == '-') {
        rc = mig_parse_u64(s + 1, len - 1, (uint64_t) INT64_MAX + 1, &n);
        if (rc != MIG_OK) {
            return rc;
        }

        *out = (n == (uint64_t) INT64_MAX + 1) ? INT64_MIN : -(int64_t) n;
        return MIG_OK;
    }

    rc = mig_parse_u64(s, len, INT64_MAX, &n);
    if (rc != MIG_OK) {
        return rc;
    }

    *out = (int64_t) n;
    return MIG_OK;
}


int
mig_event_format(char *buf, size_t size, const char *scope, uint64_t epoch)
{
    int  n;

    n = snprintf(buf, size, "%s %llu", scope, (unsigned long long) epoch);

    return (n < 0 || (size_t) n >= size) ? MIG_ENOSPC : n;
}


int
mig_event_parse(const char *msg, size_t len, char *scope, size_t scope_size,
    uint64_t *epoch, char *err, size_t errlen)
{
    const char  *sp;
    size_t       slen;

    sp = memchr(msg, ' ', len);
    if (sp == NULL) {
        MIG_ERR("event has no epoch");
        return MIG_EINVAL;
    }

    slen = (size_t) (sp - msg);

    if (mig_scope_valid(msg, slen, err, errlen) != MIG_OK) {
        return MIG_EINVAL;
    }

    if (slen >= scope_size) {
        MIG_ERR("scope too long");
        return MIG_ENOSPC;
    }

    if (mig_parse_u64(sp + 1, len - slen - 1, UINT64_MAX, epoch) != MIG_OK) {
        MIG_ERR("event epoch is not an unsigned integer");
        return MIG_EINVAL;
    }

    memcpy(scope, msg, slen);
    scope[slen] = '\0';

    return MIG_OK;
}


int
mig_edge_value_format(char *buf, size_t size, mig_mode_e mode,
    uint64_t epoch)
{
    int  n;

    n = snprintf(buf, size, "%s:%llu", mig_mode_str(mode),
                 (unsigned long long) epoch);

    return (n < 0 || (size_t) n >= size) ? MIG_ENOSPC : n;
}


int
mig_edge_value_parse(const char *s, size_t len, mig_mode_e *mode,
    uint64_t *epoch, char *err, size_t errlen)
{
    const char  *c;
    size_t       mlen;

    c = memchr(s, ':', len);
    if (c == NULL) {
        MIG_ERR("edge value is not mode:epoch");
        return MIG_EINVAL;
    }

    mlen = (size_t) (c - s);

    if (mlen == 2 && memcmp(s, "on", 2) == 0) {
        *mode = MIG_MODE_ON;

    } else if (mlen == 3 && memcmp(s, "off", 3) == 0) {
        *mode = MIG_MODE_OFF;

    } else {
        MIG_ERR("edge mode is not on or off");
        return MIG_EINVAL;
    }

    if (mig_parse_u64(c + 1, len - mlen - 1, UINT64_MAX, epoch) != MIG_OK) {
        MIG_ERR("edge epoch is not an unsigned integer");
        return MIG_EINVAL;
    }

    return MIG_OK;
}


static int
key2(char *buf, size_t size, const char *prefix, const char *suffix)
{
    int  n;

    n = snprintf(buf, size, "%s:%s", prefix, suffix);

    return (n < 0 || (size_t) n >= size) ? MIG_ENOSPC : n;
}


static int
key3(char *buf, size_t size, const char *prefix, const char *mid,
    const char *name)
{
    int  n;

    n = snprintf(buf, size, "%s:%s:%s", prefix, mid, name);

    return (n < 0 || (size_t) n >= size) ? MIG_ENOSPC : n;
}


static int
copy_text(char *dst, size_t max, const char *field, const char *value,
    size_t vlen, char *err, size_t errlen)
{
    char  why[64];

    if (vlen > max) {
        MIG_ERR("%s is %zu bytes, more than %zu", field, vlen, max);
        return MIG_ERANGE;
    }

    if (mig_text_valid(value, vlen, why, sizeof(why)) != MIG_OK) {
        MIG_ERR("%s: %s", field, why);
        return MIG_EINVAL;
    }

    memcpy(dst, value, vlen);
    dst[vlen] = '\0';

    return MIG_OK;
}


static int
field_is(const char *name, size_t nlen, const char *literal)
{
    size_t  len = strlen(literal);

    return nlen == len && memcmp(name, literal, len) == 0;
}
