/* hello.c: register this process under ("examples", "hello-c"), look it up,
 * list the namespace, wait for Ctrl-C (or SIGTERM), unregister, and remove
 * the registry if this program created it (one that already existed is
 * left to its creator).
 *
 * Build (after `scripts/install-c --prefix ~/.local`, see the README):
 *   export PKG_CONFIG_PATH=~/.local/lib/pkgconfig
 *   cc -std=c99 -Wall -Wextra -pedantic examples/c/hello.c \
 *      $(pkg-config --cflags --libs procreg) -o hello
 * Run: LD_LIBRARY_PATH=~/.local/lib ./hello [URL]   (default URL: shm:hello-c)
 */
#define _POSIX_C_SOURCE 200809L
#include "procreg.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop = 0;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static int failed(const char *what, procreg_status st) {
    char msg[512];
    procreg_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s failed: %s: %s\n", what, procreg_strerror(st), msg);
    return 1;
}

static int print_entry(const procreg_entry_view *e, void *ctx) {
    int *count = (int *)ctx;
    ++*count;
    printf("  %s/%s pid=%u host=%s version=%llu metadata=%.*s\n", e->ns, e->name, e->pid, e->host,
           (unsigned long long)e->version, (int)e->metadata_len, (const char *)e->metadata);
    return 0; /* go on */
}

/* Creates the registry at `url`, or opens it if another program already
 * did; `*created` tells which, so that only the creator removes it. */
static procreg_status create_or_join(const char *url, procreg **reg, int *created) {
    procreg_options o;
    procreg_status st;
    o.struct_size = sizeof o; /* extensible struct: set its size first */
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

static int run(procreg *reg);

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "shm:hello-c";
    procreg *reg = NULL;
    int created = 0, rc;
    procreg_status st;

    printf("procreg %s (header %d.%d.%d)\n", procreg_version(), PROCREG_VERSION_MAJOR,
           PROCREG_VERSION_MINOR, PROCREG_VERSION_PATCH);
    st = create_or_join(url, &reg, &created);
    if (st != PROCREG_OK) return failed("procreg_open", st);
    rc = run(reg);
    procreg_close(reg);
    if (created) { /* also after a failure: leave nothing in /dev/shm */
        st = procreg_destroy(url);
        if (st != PROCREG_OK) return failed("procreg_destroy", st);
        printf("removed the registry\n");
    }
    return rc;
}

static int run(procreg *reg) {
    const char *meta = "port=8080";
    procreg_entry entry;
    uint8_t small[4], *meta_buf = small;
    size_t meta_cap = sizeof small, meta_len = 0;
    uint32_t pid = 0;
    int count = 0;
    procreg_status st;
    sigset_t block, old;
    struct sigaction sa;

    /* Block the signals before registering, so none is lost before we wait. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);

    st = procreg_register_self(reg, "examples", "hello-c", (const uint8_t *)meta, strlen(meta));
    if (st != PROCREG_OK) return failed("procreg_register_self", st);
    printf("registered examples/hello-c as pid %ld\n", (long)getpid());

    st = procreg_lookup_pid(reg, "examples", "hello-c", &pid);
    if (st != PROCREG_OK) return failed("procreg_lookup_pid", st);
    printf("lookup_pid: %u\n", pid);

    /* Metadata of any length: a too-small buffer (4 bytes here, on purpose)
     * gets PROCREG_E_BUFFER_TOO_SMALL and the length needed; retry with it. */
    entry.struct_size = sizeof entry;
    while ((st = procreg_lookup(reg, "examples", "hello-c", &entry, meta_buf, meta_cap,
                                &meta_len)) == PROCREG_E_BUFFER_TOO_SMALL) {
        if (meta_buf != small) free(meta_buf);
        meta_cap = meta_len;
        meta_buf = malloc(meta_cap);
        if (meta_buf == NULL) return 1;
    }
    if (st != PROCREG_OK) return failed("procreg_lookup", st);
    printf("lookup: pid=%u host=%s version=%llu metadata=%.*s\n", entry.pid, entry.host,
           (unsigned long long)entry.version, (int)meta_len, (const char *)meta_buf);
    if (meta_buf != small) free(meta_buf);

    printf("namespace examples:\n");
    st = procreg_list(reg, "examples", print_entry, &count);
    if (st != PROCREG_OK) return failed("procreg_list", st);
    printf("listed %d entries\n", count);

    printf("waiting for Ctrl-C\n");
    fflush(stdout);
    while (!stop) sigsuspend(&old);

    st = procreg_unregister(reg, "examples", "hello-c");
    if (st != PROCREG_OK) return failed("procreg_unregister", st);
    st = procreg_lookup_pid(reg, "examples", "hello-c", &pid);
    printf("unregistered; lookup now says: %s\n", procreg_strerror(st));
    return st == PROCREG_E_NOT_FOUND ? 0 : 1;
}
