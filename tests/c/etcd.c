/* etcd.c: the C ABI on an etcd:// registry (libprocreg built with
 * `cargo build --release --features etcd`). Opens URL, registers this
 * process, looks it up (pid and metadata), lists the namespace, reads the
 * stats and health (backend "etcd", their etcd part, no table part),
 * unregisters, then opens DEAD_URL
 * (an endpoint where nothing listens) and expects PROCREG_E_UNAVAILABLE.
 *
 * Run: ./etcd URL DEAD_URL
 *   e.g. ./etcd 'etcd://127.0.0.1:2379/myapp' 'etcd://127.0.0.1:1/x?timeout=1s'
 * Prints one line per step; exits 0 when every step did what it should.
 */
#define _POSIX_C_SOURCE 200809L
#include "procreg.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, procreg_status st) {
    char msg[512];
    procreg_last_error_message(msg, sizeof msg);
    printf("FAIL %s: %s: %s\n", what, procreg_strerror(st), msg);
    return 1;
}

static int count_entry(const procreg_entry_view *e, void *ctx) {
    (void)e;
    ++*(int *)ctx;
    return 0;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    const char *meta = "port=9090";
    procreg *reg = NULL;
    procreg_entry entry;
    procreg_stats_t stats;
    uint8_t buf[64];
    size_t meta_len = 0;
    uint32_t pid = 0;
    int listed = 0;
    procreg_status st;
    char msg[512];
    double t0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s URL DEAD_URL\n", argv[0]);
        return 2;
    }
    st = procreg_open(argv[1], NULL, &reg);
    if (st != PROCREG_OK) return fail("procreg_open", st);

    st = procreg_register_self(reg, "c-etcd", "svc", (const uint8_t *)meta, strlen(meta));
    if (st != PROCREG_OK) return fail("procreg_register_self", st);
    printf("registered c-etcd/svc as pid %u\n", (unsigned)getpid());

    st = procreg_register_self(reg, "c-etcd", "svc", NULL, 0);
    if (st != PROCREG_E_ALREADY_EXISTS) return fail("second register (want ALREADY_EXISTS)", st);
    printf("second register: %s (pid %u)\n", procreg_strerror(st), (unsigned)procreg_last_error_pid());

    st = procreg_lookup_pid(reg, "c-etcd", "svc", &pid);
    if (st != PROCREG_OK) return fail("procreg_lookup_pid", st);
    printf("lookup_pid: %u\n", (unsigned)pid);

    memset(&entry, 0, sizeof entry);
    entry.struct_size = sizeof entry;
    st = procreg_lookup(reg, "c-etcd", "svc", &entry, buf, sizeof buf, &meta_len);
    if (st != PROCREG_OK) return fail("procreg_lookup", st);
    printf("lookup: pid=%u version=%llu host=%s metadata=%.*s\n", (unsigned)entry.pid,
           (unsigned long long)entry.version, entry.host, (int)meta_len, (const char *)buf);

    st = procreg_list(reg, "c-etcd", count_entry, &listed);
    if (st != PROCREG_OK) return fail("procreg_list", st);
    printf("listed %d entries\n", listed);

    memset(&stats, 0, sizeof stats);
    stats.struct_size = sizeof stats;
    st = procreg_stats(reg, &stats);
    if (st != PROCREG_OK) return fail("procreg_stats", st);
    printf("stats: backend=%s live=%zu has_table=%d\n", stats.backend, stats.live,
           (int)stats.has_table);
    printf("stats etcd part: has_etcd=%d lease_set=%d ttl_ms=%llu own_entries=%zu endpoints=%zu\n",
           (int)stats.has_etcd, stats.etcd_lease != 0, (unsigned long long)stats.etcd_lease_ttl_ms,
           stats.etcd_own_entries, stats.etcd_endpoints);
    {
        procreg_health_t health;
        memset(&health, 0, sizeof health);
        health.struct_size = sizeof health;
        st = procreg_health(reg, &health, NULL, 0, NULL);
        if (st != PROCREG_OK) return fail("procreg_health", st);
        printf("health etcd part: has_etcd=%d has_table=%d session_lost=%d same_lease=%d left_ms_set=%d "
               "endpoints_up=%zu/%zu\n",
               (int)health.has_etcd, (int)health.has_table, (int)health.etcd_session_lost,
               health.etcd_lease == stats.etcd_lease, health.etcd_lease_left_ms > 0,
               health.etcd_endpoints_up, health.etcd_endpoints);
    }

    st = procreg_unregister(reg, "c-etcd", "svc");
    if (st != PROCREG_OK) return fail("procreg_unregister", st);
    st = procreg_lookup_pid(reg, "c-etcd", "svc", &pid);
    printf("after unregister: %s\n", procreg_strerror(st));
    procreg_close(reg);
    if (st != PROCREG_E_NOT_FOUND) return fail("lookup after unregister (want NOT_FOUND)", st);

    reg = NULL;
    t0 = now_ms();
    st = procreg_open(argv[2], NULL, &reg);
    if (st == PROCREG_OK) {
        procreg_close(reg);
        printf("FAIL dead endpoint opened\n");
        return 1;
    }
    if (st != PROCREG_E_UNAVAILABLE) return fail("open of the dead endpoint (want UNAVAILABLE)", st);
    procreg_last_error_message(msg, sizeof msg);
    printf("dead endpoint: %s after %.0f ms: %s\n", procreg_strerror(st), now_ms() - t0, msg);
    return 0;
}
