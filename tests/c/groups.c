/* groups.c: process groups and metadata queries from C. procreg_join,
 * procreg_join_self, procreg_leave, procreg_update_member_metadata,
 * procreg_members, procreg_list_members, procreg_select and
 * procreg_wait_for_members: a round trip, a forked child whose join wakes
 * the parent's procreg_wait_for_members, every bad input's status and
 * message, callers built against version 1 of procreg_entry_view and
 * procreg_event, and the member flag of procreg_list (0) and of watch
 * events (1). Prints "group checks passed: N" and exits 0, or names the
 * first failed check and exits 1. Usage: ./groups URL (a fresh shm: url)
 */
#define _POSIX_C_SOURCE 200809L
#include "procreg.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int passed = 0;
static char last[512];

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            char m_[512];                                                        \
            procreg_last_error_message(m_, sizeof m_);                           \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n",        \
                    __FILE__, __LINE__, #cond, m_);                              \
            exit(1);                                                             \
        }                                                                        \
        ++passed;                                                                \
    } while (0)

#define NULL_ARG(call) CHECK((call) == PROCREG_E_NULL_ARGUMENT)

/* The last error message, into `last`. */
static const char *message(void) {
    procreg_last_error_message(last, sizeof last);
    return last;
}

static char this_host[256];

/* What a callback saw: up to 16 entries, copied. */
typedef struct {
    int count;
    int stop_after; /* 0: never stop */
    int bad;        /* views that break the contract */
    uint32_t pid[16];
    int member[16];
    char ns[16][32];
    char name[16][32];
    char meta[16][40];
    uint64_t version[16];
} seen_t;

static int collect(const procreg_entry_view *e, void *ctx) {
    seen_t *s = (seen_t *)ctx;
    if (e->struct_size != sizeof *e || e->host == NULL || strcmp(e->host, this_host) != 0 ||
        e->registered_at_ns == 0 || e->version == 0 ||
        (e->metadata == NULL) != (e->metadata_len == 0) || e->metadata_len >= 40)
        s->bad++;
    if (s->count < 16) {
        int i = s->count;
        s->pid[i] = e->pid;
        s->member[i] = e->member;
        snprintf(s->ns[i], sizeof s->ns[i], "%s", e->ns);
        snprintf(s->name[i], sizeof s->name[i], "%s", e->name);
        memset(s->meta[i], 0, sizeof s->meta[i]);
        if (e->metadata_len < 40 && e->metadata != NULL) memcpy(s->meta[i], e->metadata, e->metadata_len);
        s->version[i] = e->version;
    }
    s->count++;
    return s->stop_after != 0 && s->count >= s->stop_after;
}

static void reset(seen_t *s) { memset(s, 0, sizeof *s); }

/* A caller built against version 1 of procreg_entry_view (before
 * `member`): it reads the fields it knows through its own definition. */
struct entry_view_v1 {
    size_t struct_size;
    const char *ns;
    const char *name;
    const char *host;
    uint32_t pid;
    uint64_t registered_at_ns;
    uint64_t version;
    const uint8_t *metadata;
    size_t metadata_len;
};

static int collect_v1(const procreg_entry_view *view, void *ctx) {
    const struct entry_view_v1 *e = (const struct entry_view_v1 *)(const void *)view;
    seen_t *s = (seen_t *)ctx;
    if (e->struct_size < sizeof *e || strcmp(e->host, this_host) != 0) s->bad++;
    if (s->count < 16) {
        s->pid[s->count] = e->pid;
        snprintf(s->name[s->count], sizeof s->name[s->count], "%s", e->name);
    }
    s->count++;
    return 0;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The forked member: opens its own handle, waits for "go", sleeps 200 ms,
 * joins, and stays alive until the parent closes the pipe. */
static void child_main(const char *url, int go_fd) {
    procreg *r = NULL;
    char c;
    struct timespec pause = {0, 200 * 1000 * 1000};
    if (procreg_open(url, NULL, &r) != PROCREG_OK) _exit(10);
    if (read(go_fd, &c, 1) != 1) _exit(11);
    nanosleep(&pause, NULL);
    if (procreg_join_self(r, "svc", "api", (const uint8_t *)"role=api n=child", 16) != PROCREG_OK) _exit(12);
    while (read(go_fd, &c, 1) > 0) {
    }
    procreg_close(r);
    _exit(0);
}

int main(int argc, char **argv) {
    const char *url;
    procreg_options o;
    procreg *reg = NULL;
    const uint32_t me = (uint32_t)getpid(), parent = (uint32_t)getppid();
    const char *bad_utf8 = "\xff\xfe";
    char big_meta[33], long_group[15];
    size_t count = 777, n = 0;
    seen_t s;
    int i, status;
    pid_t child;

    if (argc != 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    CHECK(gethostname(this_host, sizeof this_host - 1) == 0 && this_host[0] != 0);
    memset(big_meta, 'm', sizeof big_meta);
    memset(long_group, 'g', 14); /* max_name_len 24 leaves 13 for a group */
    long_group[14] = 0;
    o.struct_size = sizeof o;
    CHECK(procreg_options_default(&o) == PROCREG_OK);
    o.capacity = 256;
    o.max_name_len = 24;
    o.max_metadata_len = 32;
    o.create = PROCREG_CREATE;
    CHECK(procreg_open(url, &o, &reg) == PROCREG_OK);

    /* ---- NULL pointers and invalid UTF-8: the usual statuses */
    NULL_ARG(procreg_join(NULL, "svc", "api", me, NULL, 0));
    NULL_ARG(procreg_join(reg, NULL, "api", me, NULL, 0));
    NULL_ARG(procreg_join(reg, "svc", NULL, me, NULL, 0));
    CHECK(strcmp(message(), "group is NULL; pass a valid pointer") == 0);
    NULL_ARG(procreg_join(reg, "svc", "api", me, NULL, 3));
    NULL_ARG(procreg_join_self(NULL, "svc", "api", NULL, 0));
    NULL_ARG(procreg_join_self(reg, NULL, "api", NULL, 0));
    NULL_ARG(procreg_join_self(reg, "svc", NULL, NULL, 0));
    NULL_ARG(procreg_join_self(reg, "svc", "api", NULL, 3));
    NULL_ARG(procreg_leave(NULL, "svc", "api", me));
    NULL_ARG(procreg_leave(reg, NULL, "api", me));
    NULL_ARG(procreg_leave(reg, "svc", NULL, me));
    NULL_ARG(procreg_update_member_metadata(NULL, "svc", "api", me, NULL, 0));
    NULL_ARG(procreg_update_member_metadata(reg, NULL, "api", me, NULL, 0));
    NULL_ARG(procreg_update_member_metadata(reg, "svc", NULL, me, NULL, 0));
    NULL_ARG(procreg_update_member_metadata(reg, "svc", "api", me, NULL, 3));
    NULL_ARG(procreg_members(NULL, "svc", "api", collect, &s));
    NULL_ARG(procreg_members(reg, NULL, "api", collect, &s));
    NULL_ARG(procreg_members(reg, "svc", NULL, collect, &s));
    NULL_ARG(procreg_members(reg, "svc", "api", NULL, &s));
    NULL_ARG(procreg_list_members(NULL, "svc", collect, &s));
    NULL_ARG(procreg_list_members(reg, "svc", NULL, &s));
    NULL_ARG(procreg_select(NULL, "svc", "a=b", collect, &s));
    NULL_ARG(procreg_select(reg, "svc", NULL, collect, &s));
    NULL_ARG(procreg_select(reg, "svc", "a=b", NULL, &s));
    NULL_ARG(procreg_wait_for_members(NULL, "svc", "api", 0, 10, &count, NULL, NULL));
    NULL_ARG(procreg_wait_for_members(reg, NULL, "api", 0, 10, &count, NULL, NULL));
    NULL_ARG(procreg_wait_for_members(reg, "svc", NULL, 0, 10, &count, NULL, NULL));
    NULL_ARG(procreg_wait_for_members(reg, "svc", "api", 0, 10, NULL, NULL, NULL));
    CHECK(procreg_join_self(reg, bad_utf8, "api", NULL, 0) == PROCREG_E_INVALID_UTF8);
    CHECK(procreg_join_self(reg, "svc", bad_utf8, NULL, 0) == PROCREG_E_INVALID_UTF8);
    CHECK(strstr(message(), "group is not valid UTF-8") != NULL);
    CHECK(procreg_join(reg, "svc", bad_utf8, me, NULL, 0) == PROCREG_E_INVALID_UTF8);
    CHECK(procreg_leave(reg, "svc", bad_utf8, me) == PROCREG_E_INVALID_UTF8);
    CHECK(procreg_update_member_metadata(reg, "svc", bad_utf8, me, NULL, 0) == PROCREG_E_INVALID_UTF8);
    CHECK(procreg_members(reg, bad_utf8, "api", collect, &s) == PROCREG_E_INVALID_UTF8);
    CHECK(procreg_list_members(reg, bad_utf8, collect, &s) == PROCREG_E_INVALID_UTF8);
    CHECK(procreg_select(reg, "svc", bad_utf8, collect, &s) == PROCREG_E_INVALID_UTF8);
    CHECK(procreg_select(reg, bad_utf8, "a=b", collect, &s) == PROCREG_E_INVALID_UTF8);
    CHECK(procreg_wait_for_members(reg, "svc", bad_utf8, 0, 10, &count, NULL, NULL) == PROCREG_E_INVALID_UTF8);

    /* ---- bad input: a typed status and a message that says what to do */
    CHECK(procreg_join_self(reg, "svc", "", NULL, 0) == PROCREG_E_INVALID_KEY);
    CHECK(procreg_join_self(reg, "", "api", NULL, 0) == PROCREG_E_INVALID_KEY);
    CHECK(procreg_join_self(reg, "svc", long_group, NULL, 0) == PROCREG_E_INVALID_KEY);
    CHECK(strstr(message(), "group") != NULL && strstr(message(), "at most 13") != NULL);
    CHECK(procreg_members(reg, "svc", long_group, collect, &s) == PROCREG_E_INVALID_KEY);
    CHECK(procreg_leave(reg, "svc", "", me) == PROCREG_E_INVALID_KEY);
    CHECK(procreg_update_member_metadata(reg, "svc", long_group, me, NULL, 0) == PROCREG_E_INVALID_KEY);
    CHECK(procreg_wait_for_members(reg, "svc", "", 0, 10, &count, NULL, NULL) == PROCREG_E_INVALID_KEY);
    CHECK(procreg_list_members(reg, "", collect, &s) == PROCREG_E_INVALID_KEY);
    CHECK(procreg_select(reg, "", "a=b", collect, &s) == PROCREG_E_INVALID_KEY);
    CHECK(procreg_join_self(reg, "svc", "api", (const uint8_t *)big_meta, 33) == PROCREG_E_METADATA_TOO_LARGE);
    CHECK(procreg_join(reg, "svc", "api", 0, NULL, 0) == PROCREG_E_INVALID_ARGUMENT);
    CHECK(strstr(message(), "pid 0") != NULL);
    child = fork();
    if (child == 0) _exit(0);
    waitpid(child, &status, 0); /* reaped: its pid names no process now */
    CHECK(procreg_join(reg, "svc", "api", (uint32_t)child, NULL, 0) == PROCREG_E_PROCESS_NOT_ALIVE);
    {
        const char *bad_queries[] = {"", "   ", "role", "=api", "role=api port"};
        for (i = 0; i < 5; i++) {
            reset(&s);
            CHECK(procreg_select(reg, NULL, bad_queries[i], collect, &s) == PROCREG_E_INVALID_ARGUMENT);
            CHECK(strstr(message(), "field=value") != NULL && s.count == 0);
        }
    }
    CHECK(procreg_join_self(reg, "svc", long_group + 1, NULL, 0) == PROCREG_OK); /* 13 bytes fit */
    CHECK(procreg_leave(reg, "svc", long_group + 1, me) == PROCREG_OK);

    /* ---- round trip: join, members, list, update, select, leave */
    CHECK(procreg_register_self(reg, "svc", "api", (const uint8_t *)"role=front", 10) == PROCREG_OK);
    CHECK(procreg_join_self(reg, "svc", "api", (const uint8_t *)"role=api n=0", 12) == PROCREG_OK);
    CHECK(procreg_join(reg, "svc", "api", parent, (const uint8_t *)"role=api n=1", 12) == PROCREG_OK);
    CHECK(procreg_join(reg, "svc", "other", parent, NULL, 0) == PROCREG_OK);
    /* joining twice: AlreadyExists naming the member, in C's words */
    CHECK(procreg_join(reg, "svc", "api", parent, NULL, 0) == PROCREG_E_ALREADY_EXISTS);
    CHECK(procreg_last_error_pid() == parent);
    {
        char want[160];
        snprintf(want, sizeof want, "pid %u is already a member of group \"api\" in namespace \"svc\" (alive)",
                 (unsigned)parent);
        CHECK(strstr(message(), want) == last && strstr(last, "procreg_leave") != NULL);
    }
    CHECK(procreg_join_self(reg, "svc", "api", NULL, 0) == PROCREG_E_ALREADY_EXISTS);
    CHECK(procreg_last_error_pid() == me);
    reset(&s);
    CHECK(procreg_members(reg, "svc", "api", collect, &s) == PROCREG_OK);
    CHECK(s.count == 2 && s.bad == 0);
    CHECK(s.pid[0] < s.pid[1]); /* sorted by pid */
    for (i = 0; i < 2; i++) {
        CHECK(s.member[i] == 1 && strcmp(s.name[i], "api") == 0 && strcmp(s.ns[i], "svc") == 0);
        CHECK(strcmp(s.meta[i], s.pid[i] == me ? "role=api n=0" : "role=api n=1") == 0);
        CHECK(s.pid[i] == me || s.pid[i] == parent);
    }
    reset(&s);
    s.stop_after = 1;
    CHECK(procreg_members(reg, "svc", "api", collect, &s) == PROCREG_OK && s.count == 1);
    reset(&s);
    CHECK(procreg_members(reg, "svc", "ap", collect, &s) == PROCREG_OK && s.count == 0); /* another group */
    CHECK(procreg_members(reg, "elsewhere", "api", collect, &s) == PROCREG_OK && s.count == 0);
    /* procreg_list shows the unique entry only, with member 0 */
    reset(&s);
    CHECK(procreg_list(reg, "svc", collect, &s) == PROCREG_OK);
    CHECK(s.count == 1 && s.bad == 0 && s.member[0] == 0 && strcmp(s.name[0], "api") == 0);
    CHECK(strcmp(s.meta[0], "role=front") == 0);
    reset(&s);
    CHECK(procreg_list_all(reg, collect, &s) == PROCREG_OK && s.count == 1 && s.member[0] == 0);
    /* every member of the namespace (or of all), sorted by group then pid */
    reset(&s);
    CHECK(procreg_list_members(reg, "svc", collect, &s) == PROCREG_OK && s.count == 3 && s.bad == 0);
    CHECK(strcmp(s.name[0], "api") == 0 && strcmp(s.name[1], "api") == 0 && s.pid[0] < s.pid[1]);
    CHECK(strcmp(s.name[2], "other") == 0 && s.pid[2] == parent && s.member[2] == 1);
    reset(&s);
    CHECK(procreg_list_members(reg, NULL, collect, &s) == PROCREG_OK && s.count == 3);
    reset(&s);
    CHECK(procreg_list_members(reg, "elsewhere", collect, &s) == PROCREG_OK && s.count == 0);
    /* a caller built against version 1 of the view reads its fields */
    CHECK(offsetof(procreg_entry_view, member) == sizeof(struct entry_view_v1));
    CHECK(offsetof(procreg_entry_view, metadata_len) == offsetof(struct entry_view_v1, metadata_len));
    reset(&s);
    CHECK(procreg_members(reg, "svc", "other", collect_v1, &s) == PROCREG_OK);
    CHECK(s.count == 1 && s.bad == 0 && s.pid[0] == parent && strcmp(s.name[0], "other") == 0);
    /* each member has its own metadata and version */
    {
        uint64_t before = 0;
        reset(&s);
        CHECK(procreg_members(reg, "svc", "api", collect, &s) == PROCREG_OK);
        before = s.version[s.pid[0] == parent ? 0 : 1];
        CHECK(procreg_update_member_metadata(reg, "svc", "api", parent, (const uint8_t *)"role=api n=1 state=draining",
                                             27) == PROCREG_OK);
        reset(&s);
        CHECK(procreg_members(reg, "svc", "api", collect, &s) == PROCREG_OK && s.count == 2);
        i = s.pid[0] == parent ? 0 : 1;
        CHECK(strcmp(s.meta[i], "role=api n=1 state=draining") == 0 && s.version[i] != before);
        CHECK(strcmp(s.meta[1 - i], "role=api n=0") == 0);
    }
    CHECK(procreg_update_member_metadata(reg, "svc", "api", parent, (const uint8_t *)big_meta, 33) ==
          PROCREG_E_METADATA_TOO_LARGE);
    CHECK(procreg_update_member_metadata(reg, "svc", "nogroup", me, NULL, 0) == PROCREG_E_NOT_FOUND);
    {
        char want[160];
        snprintf(want, sizeof want, "pid %u is not a member of group \"nogroup\" in namespace \"svc\"",
                 (unsigned)me);
        CHECK(strstr(message(), want) == last && strstr(last, "procreg_join") != NULL);
    }
    /* select: unique entries and members whose metadata matches every term */
    CHECK(procreg_register_self(reg, "svc", "db", (const uint8_t *)"{\"role\":\"db\",\"port\":5432}", 25) ==
          PROCREG_OK);
    CHECK(procreg_register_self(reg, "svc2", "web", (const uint8_t *)"role=api;zone=eu", 16) == PROCREG_OK);
    reset(&s);
    CHECK(procreg_select(reg, NULL, "role=api", collect, &s) == PROCREG_OK && s.bad == 0);
    CHECK(s.count == 3 && s.member[0] == 1 && s.member[1] == 1 && strcmp(s.name[0], "api") == 0);
    CHECK(s.member[2] == 0 && strcmp(s.ns[2], "svc2") == 0 && strcmp(s.name[2], "web") == 0);
    reset(&s);
    CHECK(procreg_select(reg, "svc", "role=api", collect, &s) == PROCREG_OK && s.count == 2);
    reset(&s);
    CHECK(procreg_select(reg, "svc", "state=draining  role=api", collect, &s) == PROCREG_OK);
    CHECK(s.count == 1 && s.pid[0] == parent && s.member[0] == 1);
    reset(&s);
    CHECK(procreg_select(reg, NULL, "port=5432", collect, &s) == PROCREG_OK);
    CHECK(s.count == 1 && s.member[0] == 0 && strcmp(s.name[0], "db") == 0 && s.pid[0] == me);
    reset(&s);
    CHECK(procreg_select(reg, NULL, "role=front", collect, &s) == PROCREG_OK && s.count == 1 && !s.member[0]);
    reset(&s);
    CHECK(procreg_select(reg, NULL, "role=API", collect, &s) == PROCREG_OK && s.count == 0);
    reset(&s);
    s.stop_after = 1;
    CHECK(procreg_select(reg, NULL, "role=api", collect, &s) == PROCREG_OK && s.count == 1);
    /* leave: once, then NOT_FOUND; the unique key and other groups stay */
    CHECK(procreg_leave(reg, "svc", "api", parent) == PROCREG_OK);
    CHECK(procreg_leave(reg, "svc", "api", parent) == PROCREG_E_NOT_FOUND);
    CHECK(strstr(message(), "is not a member of group \"api\"") != NULL);
    CHECK(procreg_leave(reg, "svc", "api", 0) == PROCREG_E_NOT_FOUND);
    reset(&s);
    CHECK(procreg_members(reg, "svc", "api", collect, &s) == PROCREG_OK && s.count == 1 && s.pid[0] == me);
    {
        uint32_t pid = 0;
        CHECK(procreg_lookup_pid(reg, "svc", "api", &pid) == PROCREG_OK && pid == me);
    }
    CHECK(procreg_leave(reg, "svc", "other", parent) == PROCREG_OK);

    /* ---- wait_for_members: at once, timeout, and a forked member waking it */
    CHECK(procreg_wait_for_members(reg, "svc", "api", 0, 0, &count, NULL, NULL) == PROCREG_OK && count == 1);
    reset(&s);
    CHECK(procreg_wait_for_members(reg, "svc", "api", 1, 0, &count, collect, &s) == PROCREG_OK);
    CHECK(count == 1 && s.count == 1 && s.pid[0] == me && s.member[0] == 1 && s.bad == 0);
    count = 777;
    CHECK(procreg_wait_for_members(reg, "svc", "api", 2, 50, &count, collect, &s) == PROCREG_E_TIMEOUT);
    CHECK(count == 777 && strstr(message(), "2 live members (it has 1)") != NULL);
    {
        int go[2];
        double t0, waited;
        CHECK(pipe(go) == 0);
        child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            close(go[1]);
            child_main(url, go[0]);
        }
        close(go[0]);
        /* the child has not joined yet: not enough */
        CHECK(procreg_wait_for_members(reg, "svc", "api", 2, 50, &count, NULL, NULL) == PROCREG_E_TIMEOUT);
        t0 = now_ms();
        CHECK(write(go[1], "g", 1) == 1); /* the child joins 200 ms from now */
        reset(&s);
        CHECK(procreg_wait_for_members(reg, "svc", "api", 2, 20000, &count, collect, &s) == PROCREG_OK);
        waited = now_ms() - t0;
        CHECK(count == 2 && s.count == 2 && s.bad == 0 && s.pid[0] < s.pid[1]);
        CHECK(s.pid[0] == (uint32_t)child || s.pid[1] == (uint32_t)child);
        CHECK(strcmp(s.meta[s.pid[0] == (uint32_t)child ? 0 : 1], "role=api n=child") == 0);
        /* It woke on the child's join: it could not have returned before. */
        CHECK(waited >= 190.0);
        close(go[1]); /* the child exits */
        CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* a dead member is listed until swept, but not counted as live */
        reset(&s);
        CHECK(procreg_members(reg, "svc", "api", collect, &s) == PROCREG_OK && s.count == 2);
        CHECK(procreg_wait_for_members(reg, "svc", "api", 2, 0, &count, NULL, NULL) == PROCREG_E_TIMEOUT);
        CHECK(procreg_wait_for_members(reg, "svc", "api", 1, 0, &count, NULL, NULL) == PROCREG_OK && count == 1);
        CHECK(procreg_sweep(reg, &n) == PROCREG_OK && n == 1);
        reset(&s);
        CHECK(procreg_members(reg, "svc", "api", collect, &s) == PROCREG_OK && s.count == 1 && s.pid[0] == me);
    }

    /* ---- watch events of members: member = 1, name = the group */
    {
        procreg_watcher *w = NULL;
        procreg_event ev;
        uint64_t rev = 0;
        union {
            procreg_event ev;
            unsigned char bytes[sizeof(procreg_event)];
        } v1;
        size_t v1_size = offsetof(procreg_event, member); /* version 1 ended at host */
        CHECK(v1_size == offsetof(procreg_event, host) + sizeof(const char *));
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        CHECK(procreg_revision(reg, &rev) == PROCREG_OK);
        CHECK(procreg_watch(reg, "w", rev, &w) == PROCREG_OK);
        CHECK(procreg_join_self(reg, "w", "g", NULL, 0) == PROCREG_OK);
        CHECK(procreg_update_member_metadata(reg, "w", "g", me, (const uint8_t *)"x=1", 3) == PROCREG_OK);
        CHECK(procreg_register_self(reg, "w", "g", NULL, 0) == PROCREG_OK);
        CHECK(procreg_leave(reg, "w", "g", me) == PROCREG_OK);
        CHECK(procreg_join_self(reg, "w", "g2", NULL, 0) == PROCREG_OK);
        CHECK(procreg_watch_next(w, 5000, &ev) == PROCREG_OK && ev.kind == PROCREG_EVENT_REGISTERED);
        CHECK(ev.member && strcmp(ev.name, "g") == 0 && strcmp(ev.ns, "w") == 0 && ev.pid == me);
        CHECK(strcmp(ev.host, this_host) == 0 && ev.struct_size == sizeof ev);
        CHECK(procreg_watch_next(w, 5000, &ev) == PROCREG_OK && ev.kind == PROCREG_EVENT_UPDATED);
        CHECK(ev.member && strcmp(ev.name, "g") == 0 && ev.pid == me);
        CHECK(procreg_watch_next(w, 5000, &ev) == PROCREG_OK && ev.kind == PROCREG_EVENT_REGISTERED);
        CHECK(!ev.member && strcmp(ev.name, "g") == 0); /* the unique key */
        CHECK(procreg_watch_next(w, 5000, &ev) == PROCREG_OK && ev.kind == PROCREG_EVENT_UNREGISTERED);
        CHECK(ev.member && strcmp(ev.name, "g") == 0 && ev.pid == me);
        /* a caller built against version 1: the member flag is not written */
        memset(&v1, 0xab, sizeof v1);
        v1.ev.struct_size = v1_size;
        CHECK(procreg_watch_next(w, 5000, &v1.ev) == PROCREG_OK && v1.ev.kind == PROCREG_EVENT_REGISTERED);
        CHECK(strcmp(v1.ev.name, "g2") == 0 && v1.ev.pid == me && v1.ev.struct_size == v1_size);
        CHECK(v1.bytes[v1_size] == 0xab && v1.bytes[sizeof v1 - 1] == 0xab);
        procreg_watch_close(w);
    }

    /* ---- a full registry: PROCREG_E_FULL, and the message names procreg_sweep */
    {
        procreg *small = NULL;
        procreg_status st = PROCREG_OK;
        char group[16];
        CHECK(procreg_options_default(&o) == PROCREG_OK);
        o.capacity = 16;
        CHECK(procreg_open("mem:", &o, &small) == PROCREG_OK);
        for (i = 0; i < 64 && st == PROCREG_OK; i++) {
            snprintf(group, sizeof group, "g%d", i);
            st = procreg_join_self(small, "full", group, NULL, 0);
        }
        CHECK(st == PROCREG_E_FULL && i <= 17);
        CHECK(strstr(message(), "procreg_sweep") != NULL && strstr(last, "sweep()") == NULL);
        procreg_close(small);
    }

    CHECK(procreg_clear_namespace(reg, "svc", &n) == PROCREG_OK && n == 3); /* api, db, me in api */
    procreg_close(reg);
    CHECK(procreg_destroy(url) == PROCREG_OK);
    printf("group checks passed: %d\n", passed);
    return 0;
}
