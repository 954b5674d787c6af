/* abi_checks.c: every procreg function with NULL in each pointer argument,
 * over-long strings, invalid UTF-8, oversize metadata, untouched
 * out-parameters on failure, error messages, struct_size of the extensible
 * structs (too small, older, newer), the metadata buffer protocol, owner
 * hosts, and the handle shared by threads. Prints "abi checks passed: N" and exits 0, or names the first
 * failed check and exits 1. Usage: ./abi_checks URL (a fresh shm: or file: url)
 */
#define _POSIX_C_SOURCE 200809L
#include "procreg.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed = 0;

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

static int visit_count(const procreg_entry_view *e, void *ctx) {
    (void)e;
    ++*(int *)ctx;
    return 0;
}

static char this_host[256];

static int visit_check_host(const procreg_entry_view *e, void *ctx) {
    /* procreg_list shows unique entries only: member is false */
    if (e->struct_size < sizeof *e || e->host == NULL || strcmp(e->host, this_host) != 0 || e->member)
        ++*(int *)ctx;
    return 0;
}

static int visit_stop_after_one(const procreg_entry_view *e, void *ctx) {
    (void)e;
    ++*(int *)ctx;
    return 1;
}

static const procreg *shared_reg;

static void *thread_main(void *arg) {
    long t = (long)arg;
    char name[32];
    int i;
    for (i = 0; i < 200; i++) {
        uint32_t pid = 0;
        snprintf(name, sizeof name, "t%ld-%d", t, i);
        if (procreg_register_self(shared_reg, "threads", name, NULL, 0) != PROCREG_OK) return (void *)1;
        if (procreg_lookup_pid(shared_reg, "threads", name, &pid) != PROCREG_OK) return (void *)2;
        if (pid != (uint32_t)getpid()) return (void *)3;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *url;
    procreg_options o;
    procreg *reg = NULL, *sentinel = (procreg *)0x1;
    procreg_entry e;
    procreg_stats_t s;
    procreg_health_t h;
    uint32_t pid = 12345;
    size_t n = 777, len = 999, mlen = 999;
    uint8_t buf[64], mbuf[64];
    char msg[8], problems[256];
    const uint8_t *meta = (const uint8_t *)"abc";
    char long_name[18], long_ns[66], big_meta[33];
    const char *bad_utf8 = "\xff\xfe";
    pthread_t threads[4];
    long t;
    int count = 0, status;
    pid_t child;

    if (argc != 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    CHECK(gethostname(this_host, sizeof this_host - 1) == 0 && this_host[0] != 0);
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    memset(long_name, 'n', 17);
    long_name[17] = 0;
    memset(long_ns, 's', 65); /* the default namespace limit is 64 */
    long_ns[65] = 0;
    memset(big_meta, 'm', sizeof big_meta);

    /* ---- strings of statuses, versions, messages */
    CHECK(strcmp(procreg_strerror(PROCREG_OK), "success") == 0);
    CHECK(strcmp(procreg_strerror((procreg_status)999), "not a procreg status") == 0);
    CHECK(strlen(procreg_strerror(PROCREG_E_PANIC)) > 0);
    {
        char v[32];
        snprintf(v, sizeof v, "%d.%d.%d", PROCREG_VERSION_MAJOR, PROCREG_VERSION_MINOR,
                 PROCREG_VERSION_PATCH);
        CHECK(strcmp(procreg_version(), v) == 0);
    }

    /* ---- opening */
    NULL_ARG(procreg_options_default(NULL));
    o.struct_size = 8; /* too small: older than any published version */
    CHECK(procreg_options_default(&o) == PROCREG_E_INVALID_ARGUMENT);
    o.struct_size = sizeof o;
    CHECK(procreg_options_default(&o) == PROCREG_OK && o.struct_size == sizeof o);
    CHECK(o.mode == 0600 && o.create == PROCREG_OPEN_OR_CREATE && o.capacity == 0);
    CHECK(!o.allow_foreign_owner && !o.allow_world_writable);
    {
        /* A caller built against a newer, larger procreg_options: works while
         * the options this library does not know are zero; one set is refused. */
        struct {
            procreg_options o;
            uint64_t newer_option;
        } big;
        memset(&big, 0xff, sizeof big);
        big.o.struct_size = sizeof big;
        CHECK(procreg_options_default(&big.o) == PROCREG_OK && big.newer_option == 0);
        CHECK(big.o.struct_size == sizeof big && big.o.mode == 0600);
        big.o.capacity = 1000; /* invalid: proves the options were read */
        CHECK(procreg_open("mem:", &big.o, &reg) == PROCREG_E_INVALID_ARGUMENT);
        big.o.capacity = 0;
        big.newer_option = 1;
        CHECK(procreg_open("mem:", &big.o, &sentinel) == PROCREG_E_INVALID_ARGUMENT);
        CHECK(sentinel == (procreg *)0x1);
        big.newer_option = 0;
        CHECK(procreg_open("mem:", &big.o, &reg) == PROCREG_OK);
        procreg_close(reg);
        reg = NULL;
        o.struct_size = 0;
        CHECK(procreg_open("mem:", &o, &sentinel) == PROCREG_E_INVALID_ARGUMENT);
        o.struct_size = sizeof o;
    }
    NULL_ARG(procreg_open(NULL, NULL, &reg));
    NULL_ARG(procreg_open(url, NULL, NULL));
    CHECK(procreg_open(bad_utf8, NULL, &reg) == PROCREG_E_INVALID_UTF8);
    CHECK(procreg_open("http://nope", NULL, &sentinel) == PROCREG_E_INVALID_ARGUMENT);
    CHECK(sentinel == (procreg *)0x1); /* out untouched on failure */
    o.create = (procreg_create_mode)7;
    CHECK(procreg_open(url, &o, &reg) == PROCREG_E_INVALID_ARGUMENT);
    /* max_segment_bytes (version 2): a create past the bound is refused and
     * creates nothing; a version-1 caller (64 bytes) gets the default. */
    CHECK(procreg_options_default(&o) == PROCREG_OK && o.max_segment_bytes == 0);
    o.create = PROCREG_CREATE;
    o.max_segment_bytes = 1u << 20; /* the default segment needs about 4 MiB */
    CHECK(procreg_open(url, &o, &reg) == PROCREG_E_INVALID_ARGUMENT);
    CHECK(procreg_last_error_message(problems, sizeof problems) > 0);
    CHECK(strstr(problems, "procreg_options.max_segment_bytes") != NULL); /* in C's words */
    CHECK(strstr(problems, "Builder") == NULL);
    o.struct_size = offsetof(procreg_options, max_segment_bytes); /* version 1 */
    CHECK(procreg_open("mem:", &o, &reg) == PROCREG_OK);
    procreg_close(reg);
    reg = NULL;
    o.struct_size = sizeof o;
    CHECK(procreg_options_default(&o) == PROCREG_OK);
    o.create = PROCREG_OPEN;
    CHECK(procreg_open(url, &o, &reg) == PROCREG_E_NO_SUCH_REGISTRY);
    CHECK(procreg_options_default(&o) == PROCREG_OK);
    o.capacity = 1000; /* not a power of two */
    CHECK(procreg_open(url, &o, &reg) == PROCREG_E_INVALID_ARGUMENT);
    CHECK(procreg_last_error_message(NULL, 0) > 0);
    CHECK(procreg_last_error_message(NULL, 10) > 0); /* NULL buffer: length only */
    CHECK(procreg_last_error_message(msg, sizeof msg) > sizeof msg); /* cut, like snprintf */
    CHECK(strlen(msg) == sizeof msg - 1);
    CHECK(procreg_options_default(&o) == PROCREG_OK);
    o.capacity = 1024;
    o.max_name_len = 16;
    o.max_metadata_len = 32;
    o.create = PROCREG_CREATE;
    CHECK(procreg_open(url, &o, &reg) == PROCREG_OK && reg != NULL);
    CHECK(procreg_open(url, &o, &sentinel) == PROCREG_E_REGISTRY_EXISTS);
    o.create = PROCREG_OPEN;
    o.max_name_len = 20; /* differs from the segment's */
    CHECK(procreg_open(url, &o, &sentinel) == PROCREG_E_INCOMPATIBLE_SEGMENT);
    CHECK(sentinel == (procreg *)0x1);
    procreg_close(NULL); /* no-op */

    /* ---- register and register_self */
    NULL_ARG(procreg_register(NULL, "ns", "a", (uint32_t)getpid(), meta, 3));
    NULL_ARG(procreg_register(reg, NULL, "a", (uint32_t)getpid(), meta, 3));
    NULL_ARG(procreg_register(reg, "ns", NULL, (uint32_t)getpid(), meta, 3));
    NULL_ARG(procreg_register(reg, "ns", "a", (uint32_t)getpid(), NULL, 3));
    NULL_ARG(procreg_register_self(NULL, "ns", "a", meta, 3));
    NULL_ARG(procreg_register_self(reg, NULL, "a", meta, 3));
    NULL_ARG(procreg_register_self(reg, "ns", NULL, meta, 3));
    NULL_ARG(procreg_register_self(reg, "ns", "a", NULL, 3));
    CHECK(procreg_register_self(reg, "ns", long_name, meta, 3) == PROCREG_E_INVALID_KEY);
    CHECK(procreg_register_self(reg, "", "a", meta, 3) == PROCREG_E_INVALID_KEY);
    CHECK(procreg_register_self(reg, "ns", bad_utf8, meta, 3) == PROCREG_E_INVALID_UTF8);
    CHECK(procreg_register_self(reg, bad_utf8, "a", meta, 3) == PROCREG_E_INVALID_UTF8);
    CHECK(procreg_register_self(reg, "ns", "a", (const uint8_t *)big_meta, 33) ==
          PROCREG_E_METADATA_TOO_LARGE);
    CHECK(procreg_register(reg, "ns", "a", 0, meta, 3) == PROCREG_E_INVALID_ARGUMENT);
    child = fork();
    if (child == 0) _exit(0);
    waitpid(child, &status, 0); /* reaped: its pid names no process now */
    CHECK(procreg_register(reg, "ns", "a", (uint32_t)child, meta, 3) == PROCREG_E_PROCESS_NOT_ALIVE);
    CHECK(procreg_register_self(reg, "ns", "empty", NULL, 0) == PROCREG_OK); /* NULL ok with 0 */
    CHECK(procreg_register_self(reg, "ns", "a", meta, 3) == PROCREG_OK);
    CHECK(procreg_register(reg, "ns", "a", (uint32_t)getpid(), meta, 3) == PROCREG_E_ALREADY_EXISTS);
    CHECK(procreg_last_error_pid() == (uint32_t)getpid());
    CHECK(procreg_register_self(reg, "ns", "max-metadata", (const uint8_t *)big_meta, 32) == PROCREG_OK);

    /* ---- lookups: out-parameters untouched on failure */
    NULL_ARG(procreg_lookup_pid(NULL, "ns", "a", &pid));
    NULL_ARG(procreg_lookup_pid(reg, NULL, "a", &pid));
    NULL_ARG(procreg_lookup_pid(reg, "ns", NULL, &pid));
    NULL_ARG(procreg_lookup_pid(reg, "ns", "a", NULL));
    CHECK(procreg_lookup_pid(reg, "ns", "missing", &pid) == PROCREG_E_NOT_FOUND && pid == 12345);
    CHECK(procreg_lookup_pid(reg, "ns", long_name, &pid) == PROCREG_E_INVALID_KEY && pid == 12345);
    CHECK(procreg_lookup_pid(reg, "ns", "a", &pid) == PROCREG_OK && pid == (uint32_t)getpid());
    NULL_ARG(procreg_lookup(NULL, "ns", "a", &e, mbuf, sizeof mbuf, &mlen));
    NULL_ARG(procreg_lookup(reg, NULL, "a", &e, mbuf, sizeof mbuf, &mlen));
    NULL_ARG(procreg_lookup(reg, "ns", NULL, &e, mbuf, sizeof mbuf, &mlen));
    NULL_ARG(procreg_lookup(reg, "ns", "a", NULL, mbuf, sizeof mbuf, &mlen));
    NULL_ARG(procreg_lookup(reg, "ns", "a", &e, NULL, sizeof mbuf, &mlen));
    NULL_ARG(procreg_lookup(reg, "ns", "a", &e, mbuf, sizeof mbuf, NULL));
    e.pid = 4242;
    CHECK(procreg_lookup(reg, "ns", "missing", &e, mbuf, sizeof mbuf, &mlen) == PROCREG_E_NOT_FOUND);
    CHECK(e.pid == 4242 && mlen == 999);
    CHECK(procreg_lookup(reg, "ns", bad_utf8, &e, mbuf, sizeof mbuf, &mlen) == PROCREG_E_INVALID_UTF8);
    CHECK(e.pid == 4242 && mlen == 999);
    e.struct_size = 4; /* too small */
    CHECK(procreg_lookup(reg, "ns", "a", &e, mbuf, sizeof mbuf, &mlen) == PROCREG_E_INVALID_ARGUMENT);
    CHECK(e.pid == 4242 && mlen == 999);
    e.struct_size = sizeof e;
    /* the metadata buffer protocol: too small tells the length, writes nothing else */
    memset(mbuf, 'z', sizeof mbuf);
    CHECK(procreg_lookup(reg, "ns", "a", &e, mbuf, 2, &mlen) == PROCREG_E_BUFFER_TOO_SMALL);
    CHECK(mlen == 3 && e.pid == 4242 && mbuf[0] == 'z');
    CHECK(procreg_lookup(reg, "ns", "a", &e, mbuf, mlen, &mlen) == PROCREG_OK);
    CHECK(e.pid == (uint32_t)getpid() && mlen == 3 && memcmp(mbuf, "abc", 3) == 0 && mbuf[3] == 'z');
    CHECK(e.registered_at_ns > 0 && e.version > 0 && e.struct_size == sizeof e);
    CHECK(e.host != NULL && strcmp(e.host, this_host) == 0);
    CHECK(procreg_lookup(reg, "ns", "empty", &e, NULL, 0, &mlen) == PROCREG_OK && mlen == 0);
    CHECK(procreg_lookup(reg, "ns", "max-metadata", &e, mbuf, sizeof mbuf, &mlen) == PROCREG_OK && mlen == 32);
    {
        /* A caller built against a newer, larger procreg_entry: the part this
         * library does not know is zeroed. */
        struct {
            procreg_entry e;
            uint64_t newer_field;
        } big;
        memset(&big, 0xff, sizeof big);
        big.e.struct_size = sizeof big;
        CHECK(procreg_lookup(reg, "ns", "a", &big.e, mbuf, sizeof mbuf, &mlen) == PROCREG_OK);
        CHECK(big.e.pid == (uint32_t)getpid() && big.newer_field == 0 && big.e.struct_size == sizeof big);
    }
    /* The same protocol once the handle knows its host (procreg_lookup then
     * reads into its own buffer and copies out: nothing allocated) and for
     * procreg_lookup_metadata: a failure writes nothing else. */
    memset(mbuf, 'z', sizeof mbuf);
    e.pid = 4242;
    mlen = 999;
    CHECK(procreg_lookup(reg, "ns", "missing", &e, mbuf, sizeof mbuf, &mlen) == PROCREG_E_NOT_FOUND);
    CHECK(e.pid == 4242 && mlen == 999 && mbuf[0] == 'z');
    CHECK(procreg_last_error_message(msg, sizeof msg) ==
          strlen("key \"missing\" in namespace \"ns\" is not registered"));
    {
        char full[128];
        procreg_last_error_message(full, sizeof full);
        CHECK(strcmp(full, "key \"missing\" in namespace \"ns\" is not registered") == 0);
    }
    CHECK(procreg_lookup(reg, "ns", "a", &e, mbuf, 2, &mlen) == PROCREG_E_BUFFER_TOO_SMALL);
    CHECK(mlen == 3 && e.pid == 4242 && mbuf[0] == 'z');
    mlen = 999;
    CHECK(procreg_lookup_metadata(reg, "ns", "missing", mbuf, sizeof mbuf, &mlen) == PROCREG_E_NOT_FOUND);
    CHECK(mlen == 999 && mbuf[0] == 'z');
    CHECK(procreg_lookup_metadata(reg, "ns", "a", mbuf, 2, &mlen) == PROCREG_E_BUFFER_TOO_SMALL);
    CHECK(mlen == 3 && mbuf[0] == 'z');
    CHECK(procreg_lookup_metadata(reg, "ns", "a", mbuf, 3, &mlen) == PROCREG_OK);
    CHECK(mlen == 3 && memcmp(mbuf, "abc", 3) == 0 && mbuf[3] == 'z');
    CHECK(procreg_lookup(reg, "ns", "a", &e, mbuf, 3, &mlen) == PROCREG_OK && mlen == 3);
    CHECK(e.pid == (uint32_t)getpid() && e.host != NULL && strcmp(e.host, this_host) == 0);
    CHECK(e.registered_at_ns > 0 && e.version > 0);
    NULL_ARG(procreg_lookup_checked(NULL, "ns", "a", &e, mbuf, sizeof mbuf, &mlen));
    NULL_ARG(procreg_lookup_checked(reg, NULL, "a", &e, mbuf, sizeof mbuf, &mlen));
    NULL_ARG(procreg_lookup_checked(reg, "ns", NULL, &e, mbuf, sizeof mbuf, &mlen));
    NULL_ARG(procreg_lookup_checked(reg, "ns", "a", NULL, mbuf, sizeof mbuf, &mlen));
    NULL_ARG(procreg_lookup_checked(reg, "ns", "a", &e, NULL, sizeof mbuf, &mlen));
    NULL_ARG(procreg_lookup_checked(reg, "ns", "a", &e, mbuf, sizeof mbuf, NULL));
    CHECK(procreg_lookup_checked(reg, "ns", "a", &e, mbuf, sizeof mbuf, &mlen) == PROCREG_OK);
    CHECK(e.pid == (uint32_t)getpid() && mlen == 3);
    CHECK(procreg_lookup_checked(reg, "ns", "a", &e, mbuf, 1, &mlen) == PROCREG_E_BUFFER_TOO_SMALL && mlen == 3);
    CHECK(procreg_lookup_checked(reg, "ns", "missing", &e, mbuf, sizeof mbuf, &mlen) == PROCREG_E_NOT_FOUND);
    NULL_ARG(procreg_lookup_metadata(NULL, "ns", "a", buf, sizeof buf, &len));
    NULL_ARG(procreg_lookup_metadata(reg, NULL, "a", buf, sizeof buf, &len));
    NULL_ARG(procreg_lookup_metadata(reg, "ns", NULL, buf, sizeof buf, &len));
    NULL_ARG(procreg_lookup_metadata(reg, "ns", "a", NULL, sizeof buf, &len));
    NULL_ARG(procreg_lookup_metadata(reg, "ns", "a", buf, sizeof buf, NULL));
    CHECK(procreg_lookup_metadata(reg, "ns", "missing", buf, sizeof buf, &len) == PROCREG_E_NOT_FOUND && len == 999);
    CHECK(procreg_lookup_metadata(reg, "ns", "a", buf, 2, &len) == PROCREG_E_BUFFER_TOO_SMALL && len == 3);
    CHECK(procreg_lookup_metadata(reg, "ns", "a", NULL, 0, &len) == PROCREG_E_BUFFER_TOO_SMALL && len == 3);
    CHECK(procreg_lookup_metadata(reg, "ns", "a", buf, sizeof buf, &len) == PROCREG_OK && len == 3);
    CHECK(procreg_lookup_metadata(reg, "ns", "empty", NULL, 0, &len) == PROCREG_OK && len == 0);

    /* ---- update, list, stats, health */
    NULL_ARG(procreg_update_metadata(NULL, "ns", "a", meta, 3));
    NULL_ARG(procreg_update_metadata(reg, NULL, "a", meta, 3));
    NULL_ARG(procreg_update_metadata(reg, "ns", NULL, meta, 3));
    NULL_ARG(procreg_update_metadata(reg, "ns", "a", NULL, 3));
    CHECK(procreg_update_metadata(reg, "ns", "a", (const uint8_t *)big_meta, 33) == PROCREG_E_METADATA_TOO_LARGE);
    CHECK(procreg_update_metadata(reg, "ns", "missing", meta, 3) == PROCREG_E_NOT_FOUND);
    CHECK(procreg_update_metadata(reg, "ns", "a", (const uint8_t *)"xy", 2) == PROCREG_OK);
    CHECK(procreg_lookup(reg, "ns", "a", &e, mbuf, sizeof mbuf, &mlen) == PROCREG_OK && mlen == 2);
    NULL_ARG(procreg_list(NULL, "ns", visit_count, &count));
    NULL_ARG(procreg_list(reg, NULL, visit_count, &count));
    NULL_ARG(procreg_list(reg, "ns", NULL, &count));
    NULL_ARG(procreg_list_all(NULL, visit_count, &count));
    NULL_ARG(procreg_list_all(reg, NULL, &count));
    CHECK(procreg_list(reg, long_ns, visit_count, &count) == PROCREG_E_INVALID_KEY);
    CHECK(procreg_register_self(reg, long_ns, "a", NULL, 0) == PROCREG_E_INVALID_KEY);
    count = 0;
    CHECK(procreg_list(reg, "ns", visit_count, &count) == PROCREG_OK && count == 3);
    count = 0;
    CHECK(procreg_list(reg, "ns", visit_stop_after_one, &count) == PROCREG_OK && count == 1);
    count = 0;
    CHECK(procreg_list(reg, "other", visit_count, &count) == PROCREG_OK && count == 0);
    count = 0;
    CHECK(procreg_list_all(reg, visit_check_host, &count) == PROCREG_OK && count == 0);
    NULL_ARG(procreg_stats(NULL, &s));
    NULL_ARG(procreg_stats(reg, NULL));
    s.struct_size = 16;
    CHECK(procreg_stats(reg, &s) == PROCREG_E_INVALID_ARGUMENT);
    s.struct_size = sizeof s;
    CHECK(procreg_stats(reg, &s) == PROCREG_OK && s.struct_size == sizeof s);
    CHECK(s.capacity == 1024 && s.live == 3 && s.max_name_len == 16 && s.max_metadata_len == 32);
    CHECK(strcmp(s.backend, "shm") == 0 || strcmp(s.backend, "mem") == 0);
    CHECK(s.has_table && s.segment_bytes > 0 && s.created_at_ns > 0 && s.registers >= 3);
    CHECK(s.revision > 0 && s.min_lease_ttl_ms >= 1 && s.max_lease_ttl_ms > s.min_lease_ttl_ms);
    CHECK(!s.has_etcd && s.etcd_lease == 0 && s.etcd_endpoints == 0);
    {
        /* A caller built against version 1 (which ended at locks_stolen):
         * the etcd part past it is not written. */
        union {
            procreg_stats_t s;
            unsigned char bytes[sizeof(procreg_stats_t)];
        } v1;
        size_t v1_size = offsetof(procreg_stats_t, locks_stolen) + sizeof v1.s.locks_stolen;
        memset(&v1, 0xab, sizeof v1);
        v1.s.struct_size = v1_size;
        CHECK(procreg_stats(reg, &v1.s) == PROCREG_OK && v1.s.live == 3 && v1.s.struct_size == v1_size);
        CHECK(v1.bytes[v1_size] == 0xab && v1.bytes[sizeof v1 - 1] == 0xab);
    }
    NULL_ARG(procreg_health(NULL, &h, NULL, 0, NULL));
    NULL_ARG(procreg_health(reg, NULL, NULL, 0, NULL));
    NULL_ARG(procreg_health(reg, &h, NULL, 4, &len));
    h.struct_size = 0;
    CHECK(procreg_health(reg, &h, NULL, 0, NULL) == PROCREG_E_INVALID_ARGUMENT);
    h.struct_size = sizeof h;
    len = 999;
    CHECK(procreg_health(reg, &h, problems, sizeof problems, &len) == PROCREG_OK);
    CHECK(h.healthy && h.live == 3 && h.alive_owners == 3 && h.has_table && h.header_valid);
    CHECK(strcmp(h.backend, s.backend) == 0 && h.liveness_mode == PROCREG_LIVENESS_PROC_START_TIME);
    CHECK(h.problem_count == 0 && problems[0] == 0 && len == 0);
    CHECK(procreg_health(reg, &h, NULL, 0, NULL) == PROCREG_OK && h.healthy);
    CHECK(!h.has_etcd && !h.etcd_session_lost && h.etcd_endpoints == 0 && h.etcd_endpoints_up == 0);
    {
        /* A caller built against version 1 (which ended at stuck_slots). */
        union {
            procreg_health_t h;
            unsigned char bytes[sizeof(procreg_health_t)];
        } v1;
        size_t v1_size = offsetof(procreg_health_t, stuck_slots) + sizeof v1.h.stuck_slots;
        memset(&v1, 0xab, sizeof v1);
        v1.h.struct_size = v1_size;
        CHECK(procreg_health(reg, &v1.h, NULL, 0, NULL) == PROCREG_OK && v1.h.healthy && v1.h.live == 3);
        CHECK(v1.bytes[v1_size] == 0xab && v1.bytes[sizeof v1 - 1] == 0xab);
    }

    /* ---- the handle shared by threads */
    shared_reg = reg;
    for (t = 0; t < 4; t++) pthread_create(&threads[t], NULL, thread_main, (void *)t);
    for (t = 0; t < 4; t++) {
        void *r;
        pthread_join(threads[t], &r);
        CHECK(r == NULL);
    }
    count = 0;
    CHECK(procreg_list(reg, "threads", visit_count, &count) == PROCREG_OK && count == 800);

    /* ---- revisions, waiting, watching, leases, reaping */
    {
        uint64_t rev = 0, rev2 = 0, reclaimed = 7;
        procreg_watcher *w = NULL;
        procreg_reaper *rp = NULL;
        procreg_event ev;
        NULL_ARG(procreg_revision(NULL, &rev));
        NULL_ARG(procreg_revision(reg, NULL));
        CHECK(procreg_revision(reg, &rev) == PROCREG_OK && rev > 0);
        NULL_ARG(procreg_wait_for(NULL, "ns", "a", 10, &e, mbuf, sizeof mbuf, &mlen));
        NULL_ARG(procreg_wait_for(reg, NULL, "a", 10, &e, mbuf, sizeof mbuf, &mlen));
        NULL_ARG(procreg_wait_for(reg, "ns", NULL, 10, &e, mbuf, sizeof mbuf, &mlen));
        NULL_ARG(procreg_wait_for(reg, "ns", "a", 10, NULL, mbuf, sizeof mbuf, &mlen));
        NULL_ARG(procreg_wait_for(reg, "ns", "a", 10, &e, NULL, sizeof mbuf, &mlen));
        NULL_ARG(procreg_wait_for(reg, "ns", "a", 10, &e, mbuf, sizeof mbuf, NULL));
        e.pid = 4242;
        mlen = 999;
        CHECK(procreg_wait_for(reg, "ns", "never", 50, &e, mbuf, sizeof mbuf, &mlen) == PROCREG_E_TIMEOUT);
        CHECK(e.pid == 4242 && mlen == 999);
        CHECK(procreg_wait_for(reg, "ns", "a", 50, &e, NULL, 0, &mlen) == PROCREG_E_BUFFER_TOO_SMALL);
        CHECK(e.pid == 4242 && mlen == 2);
        CHECK(procreg_wait_for(reg, "ns", "a", 50, &e, mbuf, sizeof mbuf, &mlen) == PROCREG_OK);
        CHECK(e.pid == (uint32_t)getpid() && mlen == 2 && strcmp(e.host, this_host) == 0);
        NULL_ARG(procreg_watch(NULL, "ns", rev, &w));
        NULL_ARG(procreg_watch(reg, "ns", rev, NULL));
        CHECK(procreg_watch(reg, long_ns, rev, &w) == PROCREG_E_INVALID_KEY && w == NULL);
        CHECK(procreg_watch(reg, "ns", rev, &w) == PROCREG_OK && w != NULL);
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        NULL_ARG(procreg_watch_next(NULL, 10, &ev));
        NULL_ARG(procreg_watch_next(w, 10, NULL));
        CHECK(procreg_watch_next(w, 20, &ev) == PROCREG_E_TIMEOUT);
        NULL_ARG(procreg_register_with_lease(NULL, "ns", "l", (uint32_t)getpid(), NULL, 0, 50));
        NULL_ARG(procreg_register_with_lease(reg, NULL, "l", (uint32_t)getpid(), NULL, 0, 50));
        NULL_ARG(procreg_register_with_lease(reg, "ns", NULL, (uint32_t)getpid(), NULL, 0, 50));
        NULL_ARG(procreg_register_with_lease(reg, "ns", "l", (uint32_t)getpid(), NULL, 3, 50));
        CHECK(procreg_register_with_lease(reg, "ns", "l", (uint32_t)getpid(), NULL, 0, 0) ==
              PROCREG_E_INVALID_ARGUMENT);
        CHECK(procreg_register_with_lease(reg, "ns", "l", (uint32_t)getpid(), meta, 3, 60000) == PROCREG_OK);
        NULL_ARG(procreg_keepalive(NULL, "ns", "l"));
        NULL_ARG(procreg_keepalive(reg, NULL, "l"));
        NULL_ARG(procreg_keepalive(reg, "ns", NULL));
        CHECK(procreg_keepalive(reg, "ns", "l") == PROCREG_OK);
        CHECK(procreg_keepalive(reg, "ns", "a") == PROCREG_E_INVALID_ARGUMENT); /* no lease */
        CHECK(procreg_keepalive(reg, "ns", "missing") == PROCREG_E_NOT_FOUND);
        CHECK(procreg_watch_next(w, 1000, &ev) == PROCREG_OK);
        CHECK(ev.kind == PROCREG_EVENT_REGISTERED && ev.revision == rev + 1);
        CHECK(strcmp(ev.ns, "ns") == 0 && strcmp(ev.name, "l") == 0 && ev.pid == (uint32_t)getpid());
        CHECK(ev.host != NULL && strcmp(ev.host, this_host) == 0 && ev.struct_size == sizeof ev);
        CHECK(procreg_unregister(reg, "ns", "l") == PROCREG_OK);
        CHECK(procreg_watch_next(w, 1000, &ev) == PROCREG_OK && ev.kind == PROCREG_EVENT_UNREGISTERED);
        CHECK(procreg_revision(reg, &rev2) == PROCREG_OK && rev2 == ev.revision);
        ev.struct_size = 8;
        CHECK(procreg_watch_next(w, 10, &ev) == PROCREG_E_INVALID_ARGUMENT);
        ev.struct_size = sizeof ev;
        procreg_watch_close(w);
        procreg_watch_close(NULL);
        NULL_ARG(procreg_reaper_start(NULL, 1000, &rp));
        NULL_ARG(procreg_reaper_start(reg, 1000, NULL));
        CHECK(procreg_reaper_start(reg, 0, &rp) == PROCREG_E_INVALID_ARGUMENT && rp == NULL);
        CHECK(procreg_reaper_start(reg, 1000, &rp) == PROCREG_OK && rp != NULL);
        NULL_ARG(procreg_reaper_reclaimed(NULL, &reclaimed));
        NULL_ARG(procreg_reaper_reclaimed(rp, NULL));
        CHECK(procreg_reaper_reclaimed(rp, &reclaimed) == PROCREG_OK && reclaimed == 0);
        CHECK(procreg_reaper_stop(rp) == PROCREG_OK);
        CHECK(procreg_reaper_stop(NULL) == PROCREG_OK);
        CHECK(procreg_stats(reg, &s) == PROCREG_OK && s.process_registers >= 3 && s.process_lookup_hits > 0);
    }

    /* ---- a watcher and a reaper outlive the handle they came from */
    {
        procreg *r2 = NULL;
        procreg_watcher *w = NULL;
        procreg_reaper *rp = NULL;
        procreg_event ev;
        uint64_t rev = 0;
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        CHECK(procreg_open(url, NULL, &r2) == PROCREG_OK);
        CHECK(procreg_revision(r2, &rev) == PROCREG_OK);
        CHECK(procreg_watch(r2, "outlive", rev, &w) == PROCREG_OK);
        CHECK(procreg_reaper_start(r2, 1000, &rp) == PROCREG_OK);
        procreg_close(r2);
        CHECK(procreg_register_self(reg, "outlive", "k", NULL, 0) == PROCREG_OK);
        CHECK(procreg_watch_next(w, 1000, &ev) == PROCREG_OK && ev.kind == PROCREG_EVENT_REGISTERED);
        CHECK(strcmp(ev.name, "k") == 0);
        CHECK(procreg_unregister(reg, "outlive", "k") == PROCREG_OK);
        procreg_watch_close(w);
        CHECK(procreg_reaper_stop(rp) == PROCREG_OK);
    }

    /* ---- removal */
    NULL_ARG(procreg_unregister(NULL, "ns", "a"));
    NULL_ARG(procreg_unregister(reg, NULL, "a"));
    NULL_ARG(procreg_unregister(reg, "ns", NULL));
    CHECK(procreg_unregister(reg, "ns", "a") == PROCREG_OK);
    CHECK(procreg_unregister(reg, "ns", "a") == PROCREG_E_NOT_FOUND);
    /* unregister_if_owner: only the owner's pid removes; absent is not an error */
    {
        bool removed = true;
        CHECK(procreg_register_self(reg, "ns", "owned", NULL, 0) == PROCREG_OK);
        NULL_ARG(procreg_unregister_if_owner(NULL, "ns", "owned", (uint32_t)getpid(), &removed));
        NULL_ARG(procreg_unregister_if_owner(reg, NULL, "owned", (uint32_t)getpid(), &removed));
        NULL_ARG(procreg_unregister_if_owner(reg, "ns", NULL, (uint32_t)getpid(), &removed));
        NULL_ARG(procreg_unregister_if_owner(reg, "ns", "owned", (uint32_t)getpid(), NULL));
        CHECK(procreg_unregister_if_owner(reg, "ns", long_name, (uint32_t)getpid(), &removed) ==
              PROCREG_E_INVALID_KEY && removed);
        CHECK(procreg_unregister_if_owner(reg, "ns", bad_utf8, (uint32_t)getpid(), &removed) ==
              PROCREG_E_INVALID_UTF8 && removed);
        CHECK(procreg_unregister_if_owner(reg, "ns", "owned", (uint32_t)child, &removed) == PROCREG_OK);
        CHECK(!removed); /* another pid: kept */
        CHECK(procreg_lookup_pid(reg, "ns", "owned", &pid) == PROCREG_OK && pid == (uint32_t)getpid());
        CHECK(procreg_unregister_if_owner(reg, "ns", "owned", (uint32_t)getpid(), &removed) == PROCREG_OK);
        CHECK(removed);
        CHECK(procreg_lookup_pid(reg, "ns", "owned", &pid) == PROCREG_E_NOT_FOUND);
        removed = true;
        CHECK(procreg_unregister_if_owner(reg, "ns", "owned", (uint32_t)getpid(), &removed) == PROCREG_OK);
        CHECK(!removed); /* not registered */
    }
    /* ---- prepared keys and cached services */
    {
        procreg_key *key = (procreg_key *)0x1, *miss = NULL, *too_long = NULL;
        procreg_service *svc = (procreg_service *)0x1;
        /* another live process: this program's parent */
        NULL_ARG(procreg_key_new(NULL, "svc", &key));
        NULL_ARG(procreg_key_new("ns", NULL, &key));
        NULL_ARG(procreg_key_new("ns", "svc", NULL));
        CHECK(procreg_key_new("ns", "", &key) == PROCREG_E_INVALID_KEY && key == (procreg_key *)0x1);
        CHECK(procreg_key_new("ns", bad_utf8, &key) == PROCREG_E_INVALID_UTF8);
        CHECK(procreg_key_new("ns", "svc", &key) == PROCREG_OK && key != NULL);
        CHECK(procreg_key_new("ns", "nobody", &miss) == PROCREG_OK);
        CHECK(procreg_key_new("ns", long_name, &too_long) == PROCREG_OK); /* fits the format */
        NULL_ARG(procreg_lookup_pid_key(NULL, key, &pid));
        NULL_ARG(procreg_lookup_pid_key(reg, NULL, &pid));
        NULL_ARG(procreg_lookup_pid_key(reg, key, NULL));
        CHECK(procreg_lookup_pid_key(reg, too_long, &pid) == PROCREG_E_INVALID_KEY);
        CHECK(procreg_lookup_pid_key(reg, key, &pid) == PROCREG_E_NOT_FOUND);
        CHECK(procreg_lookup_pid_key(reg, miss, &pid) == PROCREG_E_NOT_FOUND);
        NULL_ARG(procreg_service_open(NULL, "ns", "svc", &svc));
        NULL_ARG(procreg_service_open(reg, NULL, "svc", &svc));
        NULL_ARG(procreg_service_open(reg, "ns", NULL, &svc));
        NULL_ARG(procreg_service_open(reg, "ns", "svc", NULL));
        CHECK(procreg_service_open(reg, "ns", long_name, &svc) == PROCREG_E_INVALID_KEY);
        CHECK(svc == (procreg_service *)0x1);
        CHECK(procreg_service_open(reg, "ns", "svc", &svc) == PROCREG_OK);
        NULL_ARG(procreg_service_pid(NULL, &pid));
        NULL_ARG(procreg_service_pid(svc, NULL));
        CHECK(procreg_service_pid(svc, &pid) == PROCREG_E_NOT_FOUND);
        CHECK(procreg_register(reg, "ns", "svc", (uint32_t)getppid(), NULL, 0) == PROCREG_OK);
        pid = 0;
        CHECK(procreg_lookup_pid_key(reg, key, &pid) == PROCREG_OK && pid == (uint32_t)getppid());
        pid = 0;
        CHECK(procreg_service_pid(svc, &pid) == PROCREG_OK && pid == (uint32_t)getppid());
        pid = 0;
        CHECK(procreg_service_pid(svc, &pid) == PROCREG_OK && pid == (uint32_t)getppid()); /* cached */
        /* replaced by another owner: the next call sees it */
        CHECK(procreg_unregister(reg, "ns", "svc") == PROCREG_OK);
        CHECK(procreg_service_pid(svc, &pid) == PROCREG_E_NOT_FOUND);
        CHECK(procreg_register_self(reg, "ns", "svc", NULL, 0) == PROCREG_OK);
        CHECK(procreg_service_pid(svc, &pid) == PROCREG_OK && pid == (uint32_t)getpid());
        CHECK(procreg_unregister(reg, "ns", "svc") == PROCREG_OK);
        CHECK(procreg_lookup_pid_key(reg, key, &pid) == PROCREG_E_NOT_FOUND);
        procreg_service_close(svc);
        procreg_service_close(NULL);
        procreg_key_free(key);
        procreg_key_free(miss);
        procreg_key_free(too_long);
        procreg_key_free(NULL);
    }
    NULL_ARG(procreg_sweep(NULL, &n));
    NULL_ARG(procreg_sweep(reg, NULL));
    CHECK(procreg_sweep(reg, &n) == PROCREG_OK && n == 0);
    NULL_ARG(procreg_clear_namespace(NULL, "threads", &n));
    NULL_ARG(procreg_clear_namespace(reg, NULL, &n));
    NULL_ARG(procreg_clear_namespace(reg, "threads", NULL));
    CHECK(procreg_clear_namespace(reg, "threads", &n) == PROCREG_OK && n == 800);
    NULL_ARG(procreg_destroy(NULL));
    CHECK(procreg_destroy(bad_utf8) == PROCREG_E_INVALID_UTF8);
    procreg_close(reg);
    CHECK(procreg_destroy(url) == PROCREG_OK);
    CHECK(procreg_destroy(url) == PROCREG_E_NO_SUCH_REGISTRY);

    printf("abi checks passed: %d\n", passed);
    return 0;
}
