/*
 * mig.h: what the nginx module and migctl must agree on: Redis key names,
 * the state record codec, name rules, the version.  No nginx/libpq/hiredis.
 */

#ifndef MIG_H
#define MIG_H

#include <stddef.h>
#include <stdint.h>


#define MIG_VERSION          "0.1.0"
#define MIG_DEFAULT_PREFIX   "migctl"
#define MIG_DEFAULT_SCOPE    "default"

/* bounds on values that come from the network (Redis) */
#define MIG_NAME_MAX         64      /* prefix, scope, node id */
#define MIG_REASON_MAX       512
#define MIG_RELEASE_MAX      128
#define MIG_ACTOR_MAX        128
#define MIG_RETRY_AFTER_MAX  86400
#define MIG_KEY_MAX          (2 * MIG_NAME_MAX + 16)
#define MIG_EVENT_MAX        (MIG_NAME_MAX + 24)
#define MIG_EDGE_VALUE_MAX   32      /* "on:18446744073709551615" */

/* return codes: 0 ok, negative on error, a one-line reason in err */
#define MIG_OK               0
#define MIG_EINVAL          -1       /* malformed value */
#define MIG_ERANGE          -2       /* value out of bounds */
#define MIG_ENOSPC          -3       /* caller's buffer too small */
#define MIG_EMISSING        -4       /* a required field is absent */

typedef enum {
    MIG_MODE_UNSET = 0,
    MIG_MODE_OFF,
    MIG_MODE_ON
} mig_mode_e;

/* the decoded P:state:S hash */
typedef struct {
    mig_mode_e  mode;
    uint64_t    epoch;
    int64_t     since;                       /* unix seconds, 0 unknown */
    uint32_t    retry_after;                 /* seconds, 0 = not given */
    char        reason[MIG_REASON_MAX + 1];
    char        release[MIG_RELEASE_MAX + 1];
    char        actor[MIG_ACTOR_MAX + 1];
    unsigned    have_epoch:1;
} mig_state_t;


const char *mig_mode_str(mig_mode_e mode);   /* "on", "off", "unset" */

/* scope, prefix, node id: 1..MIG_NAME_MAX of [A-Za-z0-9_.-] */
int mig_name_valid(const char *s, size_t len, char *err, size_t errlen);

/* a scope: a name, and not "seen_ms", "version" or "pid" */
int mig_scope_valid(const char *s, size_t len, char *err, size_t errlen);

/* reason, release, actor: UTF-8 without control characters */
int mig_text_valid(const char *s, size_t len, char *err, size_t errlen);

/* key names; each returns the length written or MIG_ENOSPC */
int mig_key_state(char *buf, size_t size, const char *prefix,
    const char *scope);                      /* P:state:S */
int mig_key_state_pattern(char *buf, size_t size, const char *prefix);
                                             /* P:state:* */
int mig_key_events(char *buf, size_t size, const char *prefix);
                                             /* P:events */
int mig_key_edges(char *buf, size_t size, const char *prefix);
                                             /* P:edges */
int mig_key_edge(char *buf, size_t size, const char *prefix,
    const char *node);                       /* P:edge:<node> */
int mig_key_audit(char *buf, size_t size, const char *prefix);
                                             /* P:audit */

/*
 * Decoding a state hash (HGETALL field/value pairs): mig_state_init(),
 * mig_state_field() for each pair (unknown fields are ignored; a bad
 * value is an error and the caller must discard the whole record), then
 * mig_state_finish() which requires mode.  Values are not NUL-terminated.
 */
void mig_state_init(mig_state_t *st);
int mig_state_field(mig_state_t *st, const char *name, size_t nlen,
    const char *value, size_t vlen, char *err, size_t errlen);
int mig_state_finish(mig_state_t *st, char *err, size_t errlen);

/* strict decimal parsers used by the codec, exposed for callers */
int mig_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);
int mig_parse_i64(const char *s, size_t len, int64_t *out);

/* P:events message: "S epoch" */
int mig_event_format(char *buf, size_t size, const char *scope,
    uint64_t epoch);
int mig_event_parse(const char *msg, size_t len, char *scope,
    size_t scope_size, uint64_t *epoch, char *err, size_t errlen);

/* P:edge:<node> per-scope value: "mode:epoch" */
int mig_edge_value_format(char *buf, size_t size, mig_mode_e mode,
    uint64_t epoch);
int mig_edge_value_parse(const char *s, size_t len, mig_mode_e *mode,
    uint64_t *epoch, char *err, size_t errlen);

#endif /* MIG_H */
