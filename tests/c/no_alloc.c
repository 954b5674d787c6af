/* no_alloc.c: N rounds of the calls that must not allocate once warm:
 * misses of procreg_lookup_pid, procreg_lookup, procreg_lookup_metadata and
 * procreg_unregister, and hits of procreg_lookup_pid, procreg_lookup and
 * procreg_lookup_metadata. tests/c_abi.rs runs
 * it under valgrind for two values of N and compares the number of heap
 * allocations: they must be equal. Destroys its registry at the end.
 * Usage: ./no_alloc URL N
 */
#include "procreg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                      \
            return 1;                                                      \
        }                                                                  \
    } while (0)

int main(int argc, char **argv) {
    procreg *reg = NULL;
    procreg_entry e;
    uint8_t meta[64];
    size_t len = 0;
    uint32_t pid = 0;
    procreg_key *khit = NULL, *kmiss = NULL;
    procreg_service *shit = NULL, *smiss = NULL;
    long i, n;
    int rc = 0;
    if (argc != 3) {
        fprintf(stderr, "usage: %s URL N\n", argv[0]);
        return 2;
    }
    n = atol(argv[2]);
    CHECK(procreg_open(argv[1], NULL, &reg) == PROCREG_OK);
    CHECK(procreg_register_self(reg, "alloc", "hit", (const uint8_t *)"port=1", 6) == PROCREG_OK);
    e.struct_size = sizeof e;
    /* Keys and services are made once, outside the counted rounds. */
    CHECK(procreg_key_new("alloc", "hit", &khit) == PROCREG_OK);
    CHECK(procreg_key_new("alloc", "missing", &kmiss) == PROCREG_OK);
    CHECK(procreg_service_open(reg, "alloc", "hit", &shit) == PROCREG_OK);
    CHECK(procreg_service_open(reg, "alloc", "missing", &smiss) == PROCREG_OK);
    for (i = 0; i < n && rc == 0; i++) {
        /* misses, of two keys of different lengths */
        if (procreg_lookup_pid(reg, "alloc", "missing", &pid) != PROCREG_E_NOT_FOUND ||
            procreg_lookup_pid(reg, "alloc-longer-namespace", "x", &pid) != PROCREG_E_NOT_FOUND ||
            procreg_lookup(reg, "alloc", "missing", &e, meta, sizeof meta, &len) != PROCREG_E_NOT_FOUND ||
            procreg_lookup_metadata(reg, "alloc", "missing", meta, sizeof meta, &len) !=
                PROCREG_E_NOT_FOUND ||
            procreg_unregister(reg, "alloc", "missing") != PROCREG_E_NOT_FOUND ||
            procreg_lookup_pid_key(reg, kmiss, &pid) != PROCREG_E_NOT_FOUND ||
            procreg_service_pid(smiss, &pid) != PROCREG_E_NOT_FOUND)
            rc = 3;
        /* hits */
        else if (procreg_lookup_pid(reg, "alloc", "hit", &pid) != PROCREG_OK ||
                 procreg_lookup(reg, "alloc", "hit", &e, meta, sizeof meta, &len) != PROCREG_OK ||
                 len != 6 || e.pid != pid || e.host == NULL ||
                 procreg_lookup_metadata(reg, "alloc", "hit", meta, sizeof meta, &len) != PROCREG_OK ||
                 memcmp(meta, "port=1", 6) != 0 ||
                 procreg_lookup_pid_key(reg, khit, &pid) != PROCREG_OK ||
                 procreg_service_pid(shit, &pid) != PROCREG_OK)
            rc = 4;
    }
    CHECK(rc == 0);
    /* The message of the last miss is still there, and right. */
    {
        char m[128];
        CHECK(procreg_lookup_pid(reg, "alloc", "missing", &pid) == PROCREG_E_NOT_FOUND);
        procreg_last_error_message(m, sizeof m);
        CHECK(strcmp(m, "key \"missing\" in namespace \"alloc\" is not registered") == 0);
    }
    CHECK(procreg_unregister(reg, "alloc", "hit") == PROCREG_OK);
    procreg_service_close(shit);
    procreg_service_close(smiss);
    procreg_key_free(khit);
    procreg_key_free(kmiss);
    procreg_close(reg);
    CHECK(procreg_destroy(argv[1]) == PROCREG_OK);
    printf("%ld rounds\n", n);
    return 0;
}
