/*
 * lazy.c: libpq and libcurl, loaded by dlopen() when a command first calls
 * them: the commands that need neither (maintenance, classify) start fast.
 */

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <libpq-fe.h>
#include <curl/curl.h>

#include "migctl.h"


/* curl.h wraps these two in type-checking macros: we define the functions */
#undef curl_easy_setopt
#undef curl_easy_getinfo

/*
 * Not exported, even under -rdynamic: a loaded library calling one of its
 * own functions must never bind to the wrapper of that name.
 */
#define LAZY_HIDDEN  __attribute__((visibility("hidden")))

/*
 * Every libpq and libcurl function migctl calls: FN returns a value, VOID
 * none, VA is variadic and written out below.  Library, name, then return
 * type, parameters as the header declares them (the compiler checks each
 * definition against that declaration) and the call's arguments.  A call
 * added in ctl/ and missing here fails to link (nothing links -lpq): add it.
 */
#define LAZY_FUNCTIONS(FN, VOID, VA)                                          \
    FN(PQ, PQbackendPID, int, (const PGconn *conn), (conn))                   \
    FN(PQ, PQcancel, int, (PGcancel *cancel, char *errbuf, int errbufsize),   \
       (cancel, errbuf, errbufsize))                                          \
    VOID(PQ, PQclear, (PGresult *res), (res))                                 \
    FN(PQ, PQconnectPoll, PostgresPollingStatusType, (PGconn *conn), (conn))  \
    FN(PQ, PQconnectStartParams, PGconn *,                                    \
       (const char *const *keywords, const char *const *values,               \
        int expand_dbname),                                                   \
       (keywords, values, expand_dbname))                                     \
    FN(PQ, PQconnectionNeedsPassword, int, (const PGconn *conn), (conn))      \
    FN(PQ, PQconninfo, PQconninfoOption *, (PGconn *conn), (conn))            \
    VOID(PQ, PQconninfoFree, (PQconninfoOption *connOptions), (connOptions))  \
    FN(PQ, PQconninfoParse, PQconninfoOption *,                               \
       (const char *conninfo, char **errmsg), (conninfo, errmsg))             \
    FN(PQ, PQconsumeInput, int, (PGconn *conn), (conn))                       \
    FN(PQ, PQerrorMessage, char *, (const PGconn *conn), (conn))              \
    FN(PQ, PQexec, PGresult *, (PGconn *conn, const char *query),             \
       (conn, query))                                                         \
    FN(PQ, PQexecParams, PGresult *,                                          \
       (PGconn *conn, const char *command, int nParams,                       \
        const Oid *paramTypes, const char *const *paramValues,                \
        const int *paramLengths, const int *paramFormats, int resultFormat),  \
       (conn, command, nParams, paramTypes, paramValues, paramLengths,        \
        paramFormats, resultFormat))                                          \
    VOID(PQ, PQfinish, (PGconn *conn), (conn))                                \
    FN(PQ, PQflush, int, (PGconn *conn), (conn))                              \
    VOID(PQ, PQfreeCancel, (PGcancel *cancel), (cancel))                      \
    VOID(PQ, PQfreemem, (void *ptr), (ptr))                                   \
    FN(PQ, PQgetCancel, PGcancel *, (PGconn *conn), (conn))                   \
    FN(PQ, PQgetResult, PGresult *, (PGconn *conn), (conn))                   \
    FN(PQ, PQgetisnull, int,                                                  \
       (const PGresult *res, int tup_num, int field_num),                     \
       (res, tup_num, field_num))                                             \
    FN(PQ, PQgetlength, int,                                                  \
       (const PGresult *res, int tup_num, int field_num),                     \
       (res, tup_num, field_num))                                             \
    FN(PQ, PQgetvalue, char *,                                                \
       (const PGresult *res, int tup_num, int field_num),                     \
       (res, tup_num, field_num))                                             \
    FN(PQ, PQhost, char *, (const PGconn *conn), (conn))                      \
    FN(PQ, PQisBusy, int, (PGconn *conn), (conn))                             \
    FN(PQ, PQisnonblocking, int, (const PGconn *conn), (conn))                \
    FN(PQ, PQmakeEmptyPGresult, PGresult *,                                   \
       (PGconn *conn, ExecStatusType status), (conn, status))                 \
    FN(PQ, PQnfields, int, (const PGresult *res), (res))                      \
    FN(PQ, PQntuples, int, (const PGresult *res), (res))                      \
    FN(PQ, PQpass, char *, (const PGconn *conn), (conn))                      \
    FN(PQ, PQport, char *, (const PGconn *conn), (conn))                      \
    VOID(PQ, PQreset, (PGconn *conn), (conn))                                 \
    FN(PQ, PQresultErrorField, char *,                                        \
       (const PGresult *res, int fieldcode), (res, fieldcode))                \
    FN(PQ, PQresultStatus, ExecStatusType, (const PGresult *res), (res))      \
    FN(PQ, PQsendQuery, int, (PGconn *conn, const char *query),               \
       (conn, query))                                                         \
    FN(PQ, PQsendQueryParams, int,                                            \
       (PGconn *conn, const char *command, int nParams,                       \
        const Oid *paramTypes, const char *const *paramValues,                \
        const int *paramLengths, const int *paramFormats, int resultFormat),  \
       (conn, command, nParams, paramTypes, paramValues, paramLengths,        \
        paramFormats, resultFormat))                                          \
    FN(PQ, PQserverVersion, int, (const PGconn *conn), (conn))                \
    FN(PQ, PQsetErrorVerbosity, PGVerbosity,                                  \
       (PGconn *conn, PGVerbosity verbosity), (conn, verbosity))              \
    FN(PQ, PQsetnonblocking, int, (PGconn *conn, int arg), (conn, arg))       \
    FN(PQ, PQsocket, int, (const PGconn *conn), (conn))                       \
    FN(PQ, PQstatus, ConnStatusType, (const PGconn *conn), (conn))            \
                                                                              \
    VOID(CURL, curl_easy_cleanup, (CURL *curl), (curl))                       \
    VA(CURL, curl_easy_getinfo)                                               \
    FN(CURL, curl_easy_init, CURL *, (void), ())                              \
    FN(CURL, curl_easy_perform, CURLcode, (CURL *curl), (curl))               \
    VA(CURL, curl_easy_setopt)                                                \
    FN(CURL, curl_easy_strerror, const char *, (CURLcode code), (code))       \
    VOID(CURL, curl_free, (void *p), (p))                                     \
    VOID(CURL, curl_global_cleanup, (void), ())                               \
    FN(CURL, curl_global_init, CURLcode, (long flags), (flags))               \
    FN(CURL, curl_slist_append, struct curl_slist *,                          \
       (struct curl_slist *list, const char *data), (list, data))             \
    VOID(CURL, curl_slist_free_all, (struct curl_slist *list), (list))        \
    FN(CURL, curl_url, CURLU *, (void), ())                                   \
    VOID(CURL, curl_url_cleanup, (CURLU *handle), (handle))                   \
    FN(CURL, curl_url_get, CURLUcode,                                         \
       (CURLU *handle, CURLUPart what, char **part, unsigned int flags),      \
       (handle, what, part, flags))                                           \
    FN(CURL, curl_url_set, CURLUcode,                                         \
       (CURLU *handle, CURLUPart what, const char *part, unsigned int flags), \
       (handle, what, part, flags))

#define LAZY_INDEX(lib, name, ...)   LAZY_##name,
#define LAZY_SYMBOL(lib, name, ...)  { LIB_##lib, #name },

#define LAZY_DEFINE(lib, name, type, params, args)                            \
    LAZY_HIDDEN type                                                          \
    name params                                                               \
    {                                                                         \
        return ((__typeof__(&name)) lazy_fn(LIB_##lib, LAZY_##name)) args;    \
    }

#define LAZY_DEFINE_VOID(lib, name, params, args)                             \
    LAZY_HIDDEN void                                                          \
    name params                                                               \
    {                                                                         \
        ((__typeof__(&name)) lazy_fn(LIB_##lib, LAZY_##name)) args;           \
    }

#define LAZY_WRITTEN_OUT(lib, name, ...)


enum {
    LIB_PQ = 0,
    LIB_CURL
};

enum {
    LAZY_FUNCTIONS(LAZY_INDEX, LAZY_INDEX, LAZY_INDEX)
    LAZY_NFUNCTIONS
};


typedef struct {
    const char      *soname;
    const char      *package;                /* Debian's, for the error */
    pthread_once_t   once;
    void           (*load)(void);
} lazy_lib_t;

typedef struct {
    int              lib;
    const char      *name;
} lazy_symbol_t;

/* va_arg() wants a named type; any function pointer type carries any */
typedef void (*lazy_callback_pt)(void);


static void *lazy_fn(int lib, int i);
static void load_pq(void);
static void load_curl(void);
static void load(int lib);
static void fail(int lib, const char *why, const char *todo)
    __attribute__((noreturn));


static lazy_lib_t  libs[] = {
    { "libpq.so.5", "libpq5", PTHREAD_ONCE_INIT, load_pq },
    { "libcurl.so.4", "libcurl4", PTHREAD_ONCE_INIT, load_curl }
};

static const lazy_symbol_t  symbols[LAZY_NFUNCTIONS] = {
    LAZY_FUNCTIONS(LAZY_SYMBOL, LAZY_SYMBOL, LAZY_SYMBOL)
};

/* written once per library under its pthread_once, read-only after */
static void  *fns[LAZY_NFUNCTIONS];


LAZY_FUNCTIONS(LAZY_DEFINE, LAZY_DEFINE_VOID, LAZY_WRITTEN_OUT)


/*
 * Variadic: the one argument is taken by the type libcurl itself reads it
 * as, which the option number's range says (CURLOPTTYPE_*, curl.h).
 */
LAZY_HIDDEN CURLcode
curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
    va_list     ap;
    CURLcode    rc;
    CURLcode  (*fn)(CURL *, CURLoption, ...);

    fn = (__typeof__(fn)) lazy_fn(LIB_CURL, LAZY_curl_easy_setopt);

    va_start(ap, option);

    if (option < CURLOPTTYPE_OBJECTPOINT) {
        rc = fn(curl, option, va_arg(ap, long));

    } else if (option < CURLOPTTYPE_FUNCTIONPOINT) {
        rc = fn(curl, option, va_arg(ap, void *));

    } else if (option < CURLOPTTYPE_OFF_T) {
        rc = fn(curl, option, va_arg(ap, lazy_callback_pt));

    } else if (option < CURLOPTTYPE_BLOB) {
        rc = fn(curl, option, va_arg(ap, curl_off_t));

    } else {
        rc = fn(curl, option, va_arg(ap, struct curl_blob *));
    }

    va_end(ap);

    return rc;
}


/* every CURLINFO_* takes a pointer to where the value goes */
LAZY_HIDDEN CURLcode
curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
    void       *p;
    va_list     ap;
    CURLcode  (*fn)(CURL *, CURLINFO, ...);

    fn = (__typeof__(fn)) lazy_fn(LIB_CURL, LAZY_curl_easy_getinfo);

    va_start(ap, info);
    p = va_arg(ap, void *);
    va_end(ap);

    return fn(curl, info, p);
}


/*
 * The library loaded and all its functions found, once (health runs its
 * checks in threads).  Once done, pthread_once() is one load: db.c's
 * signal handler may call PQcancel(), only ever after PQgetCancel().
 */
static void *
lazy_fn(int lib, int i)
{
    (void) pthread_once(&libs[lib].once, libs[lib].load);

    return fns[i];
}


static void
load_pq(void)
{
    load(LIB_PQ);
}


static void
load_curl(void)
{
    load(LIB_CURL);
}


/* never unloaded: libcurl's TLS library keeps state until exit */
static void
load(int lib)
{
    int    i;
    void  *h;

    h = dlopen(libs[lib].soname, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fail(lib, dlerror(), "install");
    }

    for (i = 0; i < LAZY_NFUNCTIONS; i++) {
        if (symbols[i].lib != lib) {
            continue;
        }

        fns[i] = dlsym(h, symbols[i].name);
        if (fns[i] == NULL) {
            fail(lib, dlerror(), "upgrade");
        }
    }
}


/*
 * No caller can go on without the library (PQclear() returns nothing), so
 * this ends the process, through the error path of every failure (the
 * JSON error object under --json): an installation problem, exit 2.
 */
static void
fail(int lib, const char *why, const char *todo)
{
    migctl_fatal(MIGCTL_USAGE, "cannot load %s: %s: %s the %s package",
                 libs[lib].soname, why ? why : "not found", todo,
                 libs[lib].package);
}
