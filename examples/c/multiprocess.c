/* multiprocess.c: fork 4 children that register themselves; the parent looks
 * them up, kills one with SIGKILL, sweeps, and checks its entry is reclaimed.
 * Exits 0 when everything held. The parent creates the registry and removes
 * it at the end, also after a failure (a registry that already exists is
 * joined and left in place). Usage: ./multiprocess URL
 */
#define _POSIX_C_SOURCE 200809L
#include "procreg.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 4

static int failed(const char *what, procreg_status st) {
    char msg[512];
    procreg_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s failed: %s: %s\n", what, procreg_strerror(st), msg);
    return 1;
}

static int count_entry(const procreg_entry_view *e, void *ctx) {
    (void)e;
    ++*(int *)ctx;
    return 0;
}

/* A child: its own handle, one registration, then wait to be killed. */
static void worker(const char *url, int i, int ready_fd) {
    procreg *reg = NULL;
    char name[32], meta[32];
    procreg_status st = procreg_open(url, NULL, &reg);
    if (st != PROCREG_OK) _exit(failed("worker procreg_open", st));
    snprintf(name, sizeof name, "worker-%d", i);
    snprintf(meta, sizeof meta, "index=%d", i);
    st = procreg_register_self(reg, "workers", name, (const uint8_t *)meta, strlen(meta));
    if (st != PROCREG_OK) _exit(failed("worker procreg_register_self", st));
    if (write(ready_fd, "r", 1) != 1) _exit(1);
    for (;;) pause();
}

/* Creates the registry at `url`, or opens it if another program already
 * did; `*created` tells which, so that only the creator removes it. */
static procreg_status create_or_join(const char *url, procreg **reg, int *created) {
    procreg_options o;
    procreg_status st;
    o.struct_size = sizeof o;
    procreg_options_default(&o);
    o.create = PROCREG_CREATE;
    st = procreg_open(url, &o, reg);
    *created = st == PROCREG_OK;
    if (st == PROCREG_E_REGISTRY_EXISTS) {
        o.create = PROCREG_OPEN;
        st = procreg_open(url, &o, reg);
    }
    return st;
}

/* Workers still running (0: none or reaped). */
static pid_t kids[WORKERS];

static int run(const char *url, procreg *reg) {
    int fds[2], i, count = 0;
    char buf[WORKERS];
    size_t reclaimed = 0, got = 0;
    procreg_entry e;
    uint8_t meta[64];
    size_t meta_len = 0;
    uint32_t pid;
    procreg_status st;

    if (pipe(fds) != 0) return 1;
    for (i = 0; i < WORKERS; i++) {
        kids[i] = fork();
        if (kids[i] < 0) return 1;
        if (kids[i] == 0) {
            close(fds[0]);
            worker(url, i, fds[1]);
        }
    }
    close(fds[1]);
    while (got < WORKERS) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0) {
            fprintf(stderr, "a worker failed before registering\n");
            return 1;
        }
        got += (size_t)n;
    }

    for (i = 0; i < WORKERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "worker-%d", i);
        e.struct_size = sizeof e;
        st = procreg_lookup(reg, "workers", name, &e, meta, sizeof meta, &meta_len);
        if (st != PROCREG_OK) return failed("procreg_lookup", st);
        if (e.pid != (uint32_t)kids[i]) {
            fprintf(stderr, "%s: pid %u, expected %ld\n", name, e.pid, (long)kids[i]);
            return 1;
        }
        printf("found %s pid=%u metadata=%.*s host=%s\n", name, e.pid, (int)meta_len,
               (const char *)meta, e.host);
    }
    st = procreg_list(reg, "workers", count_entry, &count);
    if (st != PROCREG_OK) return failed("procreg_list", st);
    printf("listed %d workers\n", count);

    kill(kids[0], SIGKILL);
    waitpid(kids[0], NULL, 0);
    kids[0] = 0;
    printf("killed worker-0 with SIGKILL\n");
    st = procreg_sweep(reg, &reclaimed);
    if (st != PROCREG_OK) return failed("procreg_sweep", st);
    printf("sweep reclaimed %zu\n", reclaimed);
    st = procreg_lookup_pid(reg, "workers", "worker-0", &pid);
    printf("worker-0 after sweep: %s\n", procreg_strerror(st));
    if (st != PROCREG_E_NOT_FOUND || reclaimed != 1) return 1;
    st = procreg_lookup_pid(reg, "workers", "worker-1", &pid);
    if (st != PROCREG_OK || pid != (uint32_t)kids[1]) return failed("worker-1 still there", st);

    for (i = 1; i < WORKERS; i++) {
        kill(kids[i], SIGTERM);
        waitpid(kids[i], NULL, 0);
        kids[i] = 0;
    }
    st = procreg_sweep(reg, &reclaimed);
    if (st != PROCREG_OK) return failed("procreg_sweep", st);
    count = 0;
    procreg_list(reg, "workers", count_entry, &count);
    printf("after stopping the rest: sweep reclaimed %zu, %d left\n", reclaimed, count);
    return count == 0 && reclaimed == WORKERS - 1 ? 0 : 1;
}

int main(int argc, char **argv) {
    procreg *reg = NULL;
    procreg_status st;
    int created = 0, rc, i;

    if (argc != 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    st = create_or_join(argv[1], &reg, &created);
    if (st != PROCREG_OK) return failed("procreg_open", st);
    rc = run(argv[1], reg);
    for (i = 0; i < WORKERS; i++) { /* after a failure: stop the workers left */
        if (kids[i] > 0) {
            kill(kids[i], SIGTERM);
            waitpid(kids[i], NULL, 0);
        }
    }
    procreg_close(reg);
    if (created) {
        st = procreg_destroy(argv[1]);
        if (st != PROCREG_OK) return failed("procreg_destroy", st);
        printf("removed the registry\n");
    }
    return rc;
}
