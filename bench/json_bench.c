/* JSON serialisation speed: turbo's writer against Debian's cJSON, in one run.

   The document is generated (seeded, so every run is the same): a search
   result of 1000 tweet-like objects, with int64 ids, text holding accents,
   CJK, emoji, quotes, newlines and URLs, a nested user object, arrays of
   hashtag objects, coordinates as doubles, bools and nulls. Ids stay below
   2^53 because cJSON keeps every number as a double: both libraries then
   print the same values, which is checked before timing (cJSON parses
   turbo's output back and cJSON_Compare finds it equal to its own tree).

   turbo writes into one reused buffer; cJSON's tree is built once, outside
   the timing, and only cJSON_PrintUnformatted + free is timed. Each side
   runs for ~0.3 s per round, rounds alternate, the best round counts.

   Build and run (the Makefile's `make bench` does this):
     cc -std=c99 -O2 bench/json_bench.c -o build/json_bench -lpthread -lcjson
     build/json_bench
*/
#define TURBO_IMPL
#include "../turbo.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TWEETS = 1000, MAX_TAGS = 4, ROUNDS = 5 };

typedef struct user {
    int64_t id;
    char name[48], screen_name[32], location[48], description[160], image[96];
    int64_t followers, friends;
    int verified;
} user;

typedef struct tweet {
    int64_t id, reply_to; /* reply_to 0: null */
    char created_at[32], text[320], lang[4];
    user user;
    int ntags;
    char tags[MAX_TAGS][24];
    int tag_at[MAX_TAGS][2];
    int has_coords;
    double lon, lat;
    int64_t retweets, favorites;
    int favorited, retweeted, sensitive;
} tweet;

static uint64_t g_rng = 20240601;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
static int rnd_below(int n) { return (int)(rnd() % (uint64_t)n); }
static const char *pick(const char *const *list, int n) { return list[rnd_below(n)]; }

static const char *const WORDS[] = {
    "the",    "server",   "is",         "fast",        "today",     "café",     "naïve",
    "déjà",   "vu",       "über",       "JSON",        "東京",      "新しい",   "🚀",
    "🎉",      "ok",       "\"quoted\"", "line\nbreak", "tab\there", "C:\\path", "http://t.co/abc123",
    "@turbo", "#release", "we",         "ship",        "a",         "header",   "only",
    "lib"};
static const char *const FIRST[] = {"Ana",   "Björk", "Chen",   "Dmitri", "Émile", "Fatima",
                                    "Grace", "Hiro",  "Ingrid", "José",   "Kofi",  "Lena"};
static const char *const CITY[] = {"Lisboa", "São Paulo", "東京",     "Zürich", "Nairobi",
                                   "NYC",    "",          "Montréal", "Berlin"};
static const char *const TAGS[] = {"c",          "http",     "json",   "perf", "linux",
                                   "opensource", "rustlang", "python", "dev",  "日本"};
static const char *const LANGS[] = {"en", "pt", "ja", "de", "fr", "es"};

static void make_text(char *dst, size_t cap, int words) {
    size_t n = 0;
    int i;
    for (i = 0; i < words; i++) {
        const char *w = pick(WORDS, (int)(sizeof WORDS / sizeof WORDS[0]));
        size_t len = strlen(w);
        if (n + len + 2 >= cap) break;
        if (i) dst[n++] = ' ';
        memcpy(dst + n, w, len);
        n += len;
    }
    dst[n] = 0;
}

static void make_tweet(tweet *t, int i) {
    int k;
    t->id = 1000000000000000 + (int64_t)(rnd() % 8000000000000000u); /* < 2^53 */
    t->reply_to = rnd_below(4) == 0 ? t->id - 1 - rnd_below(100000) : 0;
    snprintf(t->created_at, sizeof t->created_at, "Mon Jun %02d %02d:%02d:%02d +0000 2024", 1 + i % 28,
             rnd_below(24), rnd_below(60), rnd_below(60));
    make_text(t->text, sizeof t->text, 8 + rnd_below(20));
    strcpy(t->lang, pick(LANGS, 6));
    t->user.id = (int64_t)(rnd() % 4000000000u);
    snprintf(t->user.name, sizeof t->user.name, "%s %c.", pick(FIRST, 12), 'A' + rnd_below(26));
    snprintf(t->user.screen_name, sizeof t->user.screen_name, "user_%d", rnd_below(1000000));
    strcpy(t->user.location, pick(CITY, 9));
    make_text(t->user.description, sizeof t->user.description, 4 + rnd_below(12));
    snprintf(t->user.image, sizeof t->user.image, "https://pbs.twimg.com/profile_images/%d/photo_normal.jpg",
             rnd_below(1000000000));
    t->user.followers = rnd_below(5) == 0 ? (int64_t)(rnd() % 50000000) : rnd_below(2000);
    t->user.friends = rnd_below(3000);
    t->user.verified = rnd_below(10) == 0;
    t->ntags = rnd_below(MAX_TAGS + 1);
    for (k = 0; k < t->ntags; k++) {
        strcpy(t->tags[k], pick(TAGS, 10));
        t->tag_at[k][0] = rnd_below(100);
        t->tag_at[k][1] = t->tag_at[k][0] + (int)strlen(t->tags[k]) + 1;
    }
    t->has_coords = rnd_below(3) == 0;
    t->lon = (double)rnd_below(360000000) / 1e6 - 180.0;
    t->lat = (double)rnd_below(180000000) / 1e6 - 90.0;
    t->retweets = rnd_below(3) ? rnd_below(100) : (int64_t)(rnd() % 100000);
    t->favorites = rnd_below(2) ? rnd_below(100) : (int64_t)(rnd() % 1000000);
    t->favorited = rnd_below(2);
    t->retweeted = rnd_below(2);
    t->sensitive = rnd_below(20) == 0;
}

/* ---------------------------------------------------------------- turbo */

static void turbo_user(turbo_json *j, const user *u) {
    turbo_json_object_begin(j);
    turbo_json_key(j, "id");
    turbo_json_int(j, u->id);
    turbo_json_key(j, "name");
    turbo_json_string(j, u->name);
    turbo_json_key(j, "screen_name");
    turbo_json_string(j, u->screen_name);
    turbo_json_key(j, "location");
    turbo_json_string(j, u->location);
    turbo_json_key(j, "description");
    turbo_json_string(j, u->description);
    turbo_json_key(j, "profile_image_url");
    turbo_json_string(j, u->image);
    turbo_json_key(j, "followers_count");
    turbo_json_int(j, u->followers);
    turbo_json_key(j, "friends_count");
    turbo_json_int(j, u->friends);
    turbo_json_key(j, "verified");
    turbo_json_bool(j, u->verified);
    turbo_json_object_end(j);
}

static void turbo_tweet(turbo_json *j, const tweet *t) {
    int k;
    turbo_json_object_begin(j);
    turbo_json_key(j, "created_at");
    turbo_json_string(j, t->created_at);
    turbo_json_key(j, "id");
    turbo_json_int(j, t->id);
    turbo_json_key(j, "text");
    turbo_json_string(j, t->text);
    turbo_json_key(j, "in_reply_to_status_id");
    if (t->reply_to) turbo_json_int(j, t->reply_to);
    else turbo_json_null(j);
    turbo_json_key(j, "user");
    turbo_user(j, &t->user);
    turbo_json_key(j, "entities");
    turbo_json_object_begin(j);
    turbo_json_key(j, "hashtags");
    turbo_json_array_begin(j);
    for (k = 0; k < t->ntags; k++) {
        turbo_json_object_begin(j);
        turbo_json_key(j, "text");
        turbo_json_string(j, t->tags[k]);
        turbo_json_key(j, "indices");
        turbo_json_array_begin(j);
        turbo_json_int(j, t->tag_at[k][0]);
        turbo_json_int(j, t->tag_at[k][1]);
        turbo_json_array_end(j);
        turbo_json_object_end(j);
    }
    turbo_json_array_end(j);
    turbo_json_object_end(j);
    turbo_json_key(j, "coordinates");
    if (t->has_coords) {
        turbo_json_array_begin(j);
        turbo_json_double(j, t->lon);
        turbo_json_double(j, t->lat);
        turbo_json_array_end(j);
    } else {
        turbo_json_null(j);
    }
    turbo_json_key(j, "retweet_count");
    turbo_json_int(j, t->retweets);
    turbo_json_key(j, "favorite_count");
    turbo_json_int(j, t->favorites);
    turbo_json_key(j, "favorited");
    turbo_json_bool(j, t->favorited);
    turbo_json_key(j, "retweeted");
    turbo_json_bool(j, t->retweeted);
    turbo_json_key(j, "possibly_sensitive");
    turbo_json_bool(j, t->sensitive);
    turbo_json_key(j, "lang");
    turbo_json_string(j, t->lang);
    turbo_json_object_end(j);
}

static int turbo_doc(turbo_buf *out, const tweet *ts, int n) {
    turbo_json j;
    int i;
    out->len = 0;
    turbo_json_init(&j, out);
    turbo_json_object_begin(&j);
    turbo_json_key(&j, "statuses");
    turbo_json_array_begin(&j);
    for (i = 0; i < n; i++) turbo_tweet(&j, &ts[i]);
    turbo_json_array_end(&j);
    turbo_json_key(&j, "search_metadata");
    turbo_json_object_begin(&j);
    turbo_json_key(&j, "count");
    turbo_json_int(&j, n);
    turbo_json_key(&j, "completed_in");
    turbo_json_double(&j, 0.087);
    turbo_json_key(&j, "query");
    turbo_json_string(&j, "turbo OR json");
    turbo_json_object_end(&j);
    turbo_json_object_end(&j);
    return turbo_json_finish(&j);
}

/* ---------------------------------------------------------------- cJSON */

static cJSON *cjson_tweet(const tweet *t) {
    cJSON *o = cJSON_CreateObject(), *u = cJSON_CreateObject(), *e = cJSON_CreateObject();
    cJSON *tags = cJSON_CreateArray();
    int k;
    cJSON_AddStringToObject(o, "created_at", t->created_at);
    cJSON_AddNumberToObject(o, "id", (double)t->id);
    cJSON_AddStringToObject(o, "text", t->text);
    if (t->reply_to) cJSON_AddNumberToObject(o, "in_reply_to_status_id", (double)t->reply_to);
    else cJSON_AddNullToObject(o, "in_reply_to_status_id");
    cJSON_AddNumberToObject(u, "id", (double)t->user.id);
    cJSON_AddStringToObject(u, "name", t->user.name);
    cJSON_AddStringToObject(u, "screen_name", t->user.screen_name);
    cJSON_AddStringToObject(u, "location", t->user.location);
    cJSON_AddStringToObject(u, "description", t->user.description);
    cJSON_AddStringToObject(u, "profile_image_url", t->user.image);
    cJSON_AddNumberToObject(u, "followers_count", (double)t->user.followers);
    cJSON_AddNumberToObject(u, "friends_count", (double)t->user.friends);
    cJSON_AddBoolToObject(u, "verified", t->user.verified);
    cJSON_AddItemToObject(o, "user", u);
    for (k = 0; k < t->ntags; k++) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "text", t->tags[k]);
        cJSON_AddItemToObject(h, "indices", cJSON_CreateIntArray(t->tag_at[k], 2));
        cJSON_AddItemToArray(tags, h);
    }
    cJSON_AddItemToObject(e, "hashtags", tags);
    cJSON_AddItemToObject(o, "entities", e);
    if (t->has_coords) {
        double c[2];
        c[0] = t->lon;
        c[1] = t->lat;
        cJSON_AddItemToObject(o, "coordinates", cJSON_CreateDoubleArray(c, 2));
    } else {
        cJSON_AddNullToObject(o, "coordinates");
    }
    cJSON_AddNumberToObject(o, "retweet_count", (double)t->retweets);
    cJSON_AddNumberToObject(o, "favorite_count", (double)t->favorites);
    cJSON_AddBoolToObject(o, "favorited", t->favorited);
    cJSON_AddBoolToObject(o, "retweeted", t->retweeted);
    cJSON_AddBoolToObject(o, "possibly_sensitive", t->sensitive);
    cJSON_AddStringToObject(o, "lang", t->lang);
    return o;
}

static cJSON *cjson_doc(const tweet *ts, int n) {
    cJSON *root = cJSON_CreateObject(), *list = cJSON_CreateArray(), *meta = cJSON_CreateObject();
    int i;
    for (i = 0; i < n; i++) cJSON_AddItemToArray(list, cjson_tweet(&ts[i]));
    cJSON_AddItemToObject(root, "statuses", list);
    cJSON_AddNumberToObject(meta, "count", n);
    cJSON_AddNumberToObject(meta, "completed_in", 0.087);
    cJSON_AddStringToObject(meta, "query", "turbo OR json");
    cJSON_AddItemToObject(root, "search_metadata", meta);
    return root;
}

/* ---------------------------------------------------------------- timing */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Seconds per document, over as many documents as fit in ~0.3 s. */
static double time_turbo(turbo_buf *out, const tweet *ts) {
    double t0 = now(), t;
    long n = 0;
    do {
        if (turbo_doc(out, ts, TWEETS) != 0) abort();
        n++;
    } while ((t = now() - t0) < 0.3);
    return t / (double)n;
}

static double time_cjson(cJSON *root, size_t *len) {
    double t0 = now(), t;
    long n = 0;
    do {
        char *s = cJSON_PrintUnformatted(root);
        if (!s) abort();
        *len = strlen(s);
        free(s);
        n++;
    } while ((t = now() - t0) < 0.3);
    return t / (double)n;
}

int main(void) {
    tweet *ts = (tweet *)calloc(TWEETS, sizeof *ts);
    turbo_buf out = {NULL, 0, 0, 0};
    cJSON *root, *back;
    double best_turbo = 1e9, best_cjson = 1e9, mb_turbo, mb_cjson;
    size_t cjson_len = 0;
    int i, same;
    if (!ts) return 1;
    for (i = 0; i < TWEETS; i++) make_tweet(&ts[i], i);
    root = cjson_doc(ts, TWEETS);
    if (turbo_doc(&out, ts, TWEETS) != 0) {
        fprintf(stderr, "json_bench: turbo's writer failed\n");
        return 1;
    }
    turbo_buf_append(&out, "", 1); /* NUL for cJSON_Parse; not counted below */
    back = cJSON_Parse(out.data);
    same = back && cJSON_Compare(back, root, 1);
    cJSON_Delete(back);
    if (!same) {
        fprintf(stderr, "json_bench: turbo's document differs from cJSON's\n");
        return 1;
    }
    for (i = 0; i < ROUNDS; i++) {
        double a = time_turbo(&out, ts), b = time_cjson(root, &cjson_len);
        if (a < best_turbo) best_turbo = a;
        if (b < best_cjson) best_cjson = b;
    }
    mb_turbo = (double)out.len / best_turbo / 1e6;
    mb_cjson = (double)cjson_len / best_cjson / 1e6;
    printf("JSON serialisation, %d tweet-like objects (best of %d rounds)\n", TWEETS, ROUNDS);
    printf("  %-8s %10s %12s %10s\n", "writer", "bytes", "us/doc", "MB/s");
    printf("  %-8s %10zu %12.1f %10.1f\n", "turbo", out.len, best_turbo * 1e6, mb_turbo);
    printf("  %-8s %10zu %12.1f %10.1f\n", "cJSON", cjson_len, best_cjson * 1e6, mb_cjson);
    printf("  turbo is %.2fx cJSON (documents per second)\n", best_cjson / best_turbo);
    printf("{\"bench\":\"json\",\"objects\":%d,\"turbo_bytes\":%zu,\"cjson_bytes\":%zu,"
           "\"turbo_mb_s\":%.1f,\"cjson_mb_s\":%.1f,\"turbo_us_per_doc\":%.1f,"
           "\"cjson_us_per_doc\":%.1f,\"ratio\":%.2f}\n",
           TWEETS, out.len, cjson_len, mb_turbo, mb_cjson, best_turbo * 1e6, best_cjson * 1e6,
           best_cjson / best_turbo);
    cJSON_Delete(root);
    turbo_buf_free(&out);
    free(ts);
    return 0;
}
