/* libFuzzer target: the router, against a reference matcher, and the query
   string lookup, against a reference decoder.

   Input: lines. Byte 0 says how many of the first lines are routes; each
   route line is a method selector byte and a pattern, each later line a
   method selector byte and a request path (with an optional "?query").

   Invariants:
   - a pattern is accepted exactly when the reference deems it well-formed,
     new, and not in conflict with the captures of an accepted route;
   - a lookup finds the handler the reference picks: of the routes matching
     the path, the first by (static < {name} < {name...}) segment by segment
     that serves the method (HEAD falling back to GET); with its captures,
     which are views into the path; none found: 405 exactly when some route
     matches the path, its Allow node being the reference's first match;
   - turbo_req_query_get returns the last matching key's value decoded
     ('+' as space), -1 for a malformed escape, and earlier results stay
     valid while later lookups run. */
#define TURBO_IMPL
#include "../../turbo.h"

#include "fuzz_common.h"

/* FUZZ_ROUTE_GHOSTS: turbo creates a pattern's trie nodes segment by
   segment as it checks them, so a refused pattern leaves the nodes before
   its bad segment behind, and a later route with another capture name
   there is refused as "conflicting with an earlier route"; reported. The
   reference models those leftover nodes; build with -DFUZZ_ROUTE_GHOSTS=0
   once turbo checks a whole pattern before changing the trie. */
#ifndef FUZZ_ROUTE_GHOSTS
#define FUZZ_ROUTE_GHOSTS 0
#endif

#define MAX_ROUTES 48
#define MAX_SEGS 256

static const char *const methods[8] = {"GET", "POST", "HEAD", "PUT", "X-Custom", "DELETE", "OPTIONS", "G T"};

typedef struct seg {
    const char *p; /* static text or capture name */
    size_t len;
    int kind; /* 0 static, 1 {name}, 2 {name...} */
} seg;

typedef struct route {
    char method[16];
    char pattern[256];
    seg segs[MAX_SEGS];
    int nsegs;
} route;

static void h_dummy(turbo_req *r, turbo_res *s, void *u) { (void)r, (void)s, (void)u; }

static int is_ident(const char *p, size_t n) {
    size_t i;
    if (!n || (p[0] >= '0' && p[0] <= '9')) return 0;
    for (i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
              p[i] == '_'))
            return 0;
    return 1;
}

/* Splits a pattern into segments ("/" is one empty static segment),
   checking each in turbo's order. Returns -1 if well-formed by itself, else
   the index of the first bad segment (rt->nsegs is then that index). */
static int ref_parse_pattern(route *rt) {
    const char *p = rt->pattern, *end = p + strlen(p);
    int j, captures = 0;
    rt->nsegs = 0;
    if (*p != '/') return 0;
    p++;
    for (;;) {
        const char *slash = memchr(p, '/', (size_t)(end - p)), *e = slash ? slash : end;
        seg *s = &rt->segs[rt->nsegs];
        size_t n = (size_t)(e - p), k;
        if (rt->nsegs == MAX_SEGS) return rt->nsegs;
        s->p = p;
        s->len = n;
        s->kind = 0;
        if (n >= 5 && p[0] == '{' && memcmp(e - 4, "...}", 4) == 0 && is_ident(p + 1, n - 5)) {
            s->kind = 2;
            s->p = p + 1;
            s->len = n - 5;
        } else if (n >= 2 && p[0] == '{' && p[n - 1] == '}' && is_ident(p + 1, n - 2)) {
            s->kind = 1;
            s->p = p + 1;
            s->len = n - 2;
        } else {
            for (k = 0; k < n; k++)
                if (!ref_is_target((unsigned char)p[k]) || p[k] == '?' || p[k] == '#' || p[k] == '{' ||
                    p[k] == '}')
                    return rt->nsegs;
            if (!n && slash) return rt->nsegs; /* empty segment before a '/' */
        }
        if (s->kind == 2 && slash) return rt->nsegs;
        if (s->kind) {
            for (j = 0; j < rt->nsegs; j++)
                if (rt->segs[j].kind && rt->segs[j].len == s->len && !memcmp(rt->segs[j].p, s->p, s->len))
                    return rt->nsegs;
            if (++captures > TURBO_MAX_PARAMS) return rt->nsegs;
        }
        rt->nsegs++;
        if (!slash) return -1;
        p = slash + 1;
    }
}

/* Where route a puts a capture name different from the one b (its first
   blen segments) has at the same place of the trie: that segment, or -1. */
static int ref_conflict(const route *a, const route *b, int blen) {
    int i;
    for (i = 0; i < a->nsegs && i < blen; i++) {
        const seg *x = &a->segs[i], *y = &b->segs[i];
        if (x->kind != y->kind) return -1;
        if (x->len != y->len || memcmp(x->p, y->p, x->len)) return x->kind ? i : -1;
        if (x->kind == 2) return -1;
    }
    return -1;
}

typedef struct match {
    int ok;
    int kinds[MAX_SEGS], nkinds;
    turbo_str names[TURBO_MAX_PARAMS], values[TURBO_MAX_PARAMS];
    int ncap;
} match;

/* Matches a path (starting with '/') against a route's segments. */
static void ref_match(const route *rt, const char *path, size_t len, match *m) {
    const char *p = path + 1, *end = path + len;
    int i;
    m->ok = 0;
    m->ncap = m->nkinds = 0;
    for (i = 0; i < rt->nsegs; i++) {
        const seg *s = &rt->segs[i];
        const char *slash, *e;
        if (p > end) return; /* no segment left */
        m->kinds[m->nkinds++] = s->kind;
        if (s->kind == 2) {
            m->names[m->ncap].ptr = s->p;
            m->names[m->ncap].len = s->len;
            m->values[m->ncap].ptr = p;
            m->values[m->ncap++].len = (size_t)(end - p);
            m->ok = 1;
            return;
        }
        slash = memchr(p, '/', (size_t)(end - p));
        e = slash ? slash : end;
        if (s->kind == 0 && (s->len != (size_t)(e - p) || memcmp(s->p, p, s->len))) return;
        if (s->kind == 1) {
            if (e == p) return;
            m->names[m->ncap].ptr = s->p;
            m->names[m->ncap].len = s->len;
            m->values[m->ncap].ptr = p;
            m->values[m->ncap++].len = (size_t)(e - p);
        }
        p = slash ? slash + 1 : end + 1;
    }
    m->ok = p == end + 1;
}

static int kinds_before(const match *a, const match *b) {
    int i;
    for (i = 0; i < a->nkinds && i < b->nkinds; i++)
        if (a->kinds[i] != b->kinds[i]) return a->kinds[i] < b->kinds[i];
    return 0;
}

/* ---------------------------------------------------------------- query */

/* Decodes src into dst ('+' as space); -1 on a malformed escape. */
static long ref_decode(char *dst, const char *src, size_t n) {
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        if (src[i] == '%') {
            if (n - i < 3 || ref_hex((unsigned char)src[i + 1]) < 0 || ref_hex((unsigned char)src[i + 2]) < 0)
                return -1;
            dst[o++] = (char)(ref_hex((unsigned char)src[i + 1]) * 16 + ref_hex((unsigned char)src[i + 2]));
            i += 2;
        } else {
            dst[o++] = src[i] == '+' ? ' ' : src[i];
        }
    }
    return (long)o;
}

/* The reference answer for name, the last of repeats (empty pairs, as in
   "a&&b", are no pairs, as Python's parse_qsl has it): 1 with the decoded
   value in out, 0, or -1. */
static int ref_query(const char *q, size_t n, const char *name, char *out, size_t *out_len) {
    const char *p = q, *end = q + n, *v = NULL, *v_end = NULL;
    size_t name_len = strlen(name);
    char key[300];
    long vlen;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p)), *kend = eq ? eq : stop;
        long klen = (size_t)(kend - p) <= 256 ? ref_decode(key, p, (size_t)(kend - p)) : -1;
        if (stop > p && klen == (long)name_len && !memcmp(key, name, name_len)) {
            v = eq ? eq + 1 : stop;
            v_end = stop;
        }
        p = stop + 1;
    }
    if (!v) return 0;
    vlen = ref_decode(out, v, (size_t)(v_end - v));
    if (vlen < 0) return -1;
    *out_len = (size_t)vlen;
    return 1;
}

static void check_query(turbo_req *r, turbo_buf *scratch) {
    turbo_str got[4];
    char want[4][8192], name[4][260];
    size_t want_len[4];
    int rc_want[4], i, names = 0;
    const char *p = r->query.ptr, *end = p + r->query.len;
    scratch->len = 0;
    if (r->query.len > 4096) return;
    while (p < end && names < 4) { /* look up the keys that are there, plus one that is not */
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p)), *kend = eq ? eq : stop;
        long klen = (size_t)(kend - p) <= 256 ? ref_decode(name[names], p, (size_t)(kend - p)) : -1;
        if (klen >= 0 && !memchr(name[names], 0, (size_t)klen)) name[names++][klen] = 0;
        p = stop + 1;
    }
    if (names < 4) strcpy(name[names++], "absent-key");
    for (i = 0; i < names; i++) {
        int rc = turbo_req_query_get(r, name[i], &got[i]);
        rc_want[i] = ref_query(r->query.ptr, r->query.len, name[i], want[i], &want_len[i]);
        FUZZ_ASSERT(rc == rc_want[i], "query_get(\"%s\") = %d, reference %d", name[i], rc, rc_want[i]);
    }
    for (i = 0; i < names; i++) /* earlier values must survive later lookups */
        if (rc_want[i] == 1)
            FUZZ_ASSERT(got[i].len == want_len[i] && !memcmp(got[i].ptr, want[i], want_len[i]),
                        "value of \"%s\" differs from the reference", name[i]);
}

/* ---------------------------------------------------------------- driver */

static route routes[MAX_ROUTES];
static int accepted[MAX_ROUTES];
static int in_trie[MAX_ROUTES]; /* segments of each route that made trie nodes */

static void check_lookup(turbo_server *s, int nroutes, const char *method, char *line, size_t len,
                         turbo_buf *scratch) {
    turbo_req r;
    const tb__node *allow;
    const tb__handler *h;
    match m, best_any, best;
    int i, best_i = -1, any_i = -1;
    char *q = memchr(line, '?', len);
    memset(&r, 0, sizeof r);
    r.scratch = scratch;
    r.method.ptr = method;
    r.method.len = strlen(method);
    r.std_method = tb__std_method(r.method);
    r.path.ptr = line;
    r.path.len = q ? (size_t)(q - line) : len;
    r.query.ptr = q ? q + 1 : line + len;
    r.query.len = q ? len - (size_t)(q - line) - 1 : 0;
    h = tb__route(s->root, &r, &allow);

    for (i = 0; i < nroutes; i++) {
        int serves;
        if (!accepted[i]) continue;
        ref_match(&routes[i], r.path.ptr, r.path.len, &m);
        if (!m.ok) continue;
        if (any_i < 0 || kinds_before(&m, &best_any)) {
            any_i = i;
            best_any = m;
        }
        serves = !strcmp(routes[i].method, method);
        if (!serves && !strcmp(method, "HEAD") && !strcmp(routes[i].method, "GET")) {
            int k; /* GET answers HEAD only where the same pattern has no HEAD route */
            serves = 1;
            for (k = 0; k < nroutes; k++)
                if (accepted[k] && !strcmp(routes[k].method, "HEAD") &&
                    !strcmp(routes[k].pattern, routes[i].pattern))
                    serves = 0;
        }
        if (serves && (best_i < 0 || kinds_before(&m, &best))) {
            best_i = i;
            best = m;
        }
    }
    if (best_i >= 0) {
        FUZZ_ASSERT(h != NULL, "%s %.*s: no handler, reference route %d %s", method, (int)r.path.len,
                    r.path.ptr, best_i, routes[best_i].pattern);
        FUZZ_ASSERT((intptr_t)h->user == best_i, "%s %.*s: route %d (%s), reference %d (%s)", method,
                    (int)r.path.len, r.path.ptr, (int)(intptr_t)h->user, routes[(intptr_t)h->user].pattern,
                    best_i, routes[best_i].pattern);
        FUZZ_ASSERT(r.param_count == best.ncap, "%d params, reference %d", r.param_count, best.ncap);
        for (i = 0; i < best.ncap; i++) {
            FUZZ_ASSERT(r.param_name[i].len == best.names[i].len &&
                            !memcmp(r.param_name[i].ptr, best.names[i].ptr, best.names[i].len),
                        "param %d name", i);
            FUZZ_ASSERT(r.param_value[i].ptr == best.values[i].ptr &&
                            r.param_value[i].len == best.values[i].len,
                        "param %d value is not the reference's view of the path", i);
        }
        check_query(&r, scratch);
        return;
    }
    FUZZ_ASSERT(h == NULL, "%s %.*s: handler %d found, reference none", method, (int)r.path.len, r.path.ptr,
                (int)(intptr_t)h->user);
    FUZZ_ASSERT((allow != NULL) == (any_i >= 0), "%s %.*s: allow %p, reference match %d", method,
                (int)r.path.len, r.path.ptr, (const void *)allow, any_i);
    if (allow) {
        int found = 0;
        for (i = 0; i < allow->nhandlers; i++)
            if (!strcmp(routes[(intptr_t)allow->handlers[i].user].pattern, routes[any_i].pattern)) found = 1;
        FUZZ_ASSERT(found, "Allow node is not the one of %s", routes[any_i].pattern);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    turbo_server *s;
    turbo_buf scratch = {NULL, 0, 0, 0};
    const char *p = (const char *)data, *end = p + size;
    int nroutes = 0, want_routes, lookups = 0;
    if (size < 1) return 0;
    want_routes = data[0] % MAX_ROUTES;
    p++;
    if (!(s = turbo_new(NULL))) return 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
        size_t len = (size_t)(e - p);
        if (len >= 1 && nroutes < want_routes) {
            route *rt = &routes[nroutes];
            int ok, i, rc, bad;
            size_t plen = len - 1 < sizeof rt->pattern - 1 ? len - 1 : sizeof rt->pattern - 1;
            strcpy(rt->method, methods[(unsigned char)p[0] & 7]);
            memcpy(rt->pattern, p + 1, plen);
            rt->pattern[plen] = 0;
            rt->nsegs = 0; /* a bad method is refused before the pattern is looked at */
            bad = strcmp(rt->method, "G T") == 0 ? 0 : ref_parse_pattern(rt);
            for (i = 0; bad < 0 && i < nroutes; i++)
                if (accepted[i] && !strcmp(rt->method, routes[i].method) &&
                    !strcmp(rt->pattern, routes[i].pattern))
                    bad = rt->nsegs;
            for (i = 0; i < nroutes; i++) { /* the first conflict stops turbo there */
                int at = ref_conflict(rt, &routes[i], in_trie[i]);
                if (at >= 0 && (bad < 0 || at < bad)) bad = at;
            }
            ok = bad < 0;
            in_trie[nroutes] = ok ? rt->nsegs : FUZZ_ROUTE_GHOSTS && bad > 0 ? bad : 0;
            rc = turbo_route(s, rt->method, rt->pattern, h_dummy, (void *)(intptr_t)nroutes);
            FUZZ_ASSERT((rc == 0) == ok, "%s \"%s\": turbo %s (%s), reference %s", rt->method, rt->pattern,
                        rc == 0 ? "accepts" : "refuses", turbo_error(s), ok ? "accepts" : "refuses");
            accepted[nroutes++] = ok;
        } else if (len >= 1 && lookups < 64) {
            /* The parser hands over paths starting with '/' (add one if
               missing) and followed by the rest of the request line. An
               exact-size copy lets ASan see reads past that. */
            size_t n = len - 1, slash = n && p[1] == '/' ? 0 : 1;
            char *line = (char *)malloc(n + slash + 11);
            if (!line) abort();
            line[0] = '/';
            memcpy(line + slash, p + 1, n);
            memcpy(line + slash + n, " HTTP/1.1\r\n", 11);
            check_lookup(s, nroutes, methods[(unsigned char)p[0] & 7], line, n + slash, &scratch);
            free(line);
            lookups++;
        }
        p = e + 1;
    }
    turbo_free(s);
    turbo_buf_free(&scratch);
    return 0;
}
