/* bench_lookup.c: cost of procreg_lookup_pid called from C, measured the same
 * way as examples/lookup_loop.rs measures Registry::lookup_pid from Rust (the
 * pair is run by scripts/bench-c; figures in BENCHMARKS.md).
 *
 * A fresh shm segment of capacity 4096 is filled to 75% with 24-byte keys
 * ("bench-ns" + 16-byte names); the probe keys sit in one contiguous array in
 * a pseudo-random order and are walked cyclically. 21 batches of 100 passes
 * over the 3072 keys; prints the median and best ns per lookup, for hits,
 * for misses (keys of the same length, absent) and for procreg_lookup hits
 * (entry and metadata copied out). KIND measures one of them only; PASSES
 * (default 100) sets the batch size, e.g. 1 and 2 under callgrind, whose
 * difference divided by 21 * 3072 is the instructions of one call.
 * Usage: ./bench_lookup URL [hit|miss|lookup [PASSES]]
 */
#define _POSIX_C_SOURCE 200809L
#include "procreg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAPACITY 4096
#define KEYS (CAPACITY * 3 / 4)
#define NAME_LEN 16
#define PASSES 100 /* per batch, unless given */
#define BATCHES 21

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    static char names[KEYS][NAME_LEN + 1];
    static char probes[KEYS][NAME_LEN + 1];
    static char absent[KEYS][NAME_LEN + 1];
    procreg_entry e;
    uint8_t meta[256];
    size_t meta_len = 0;
    int kind, only = -1, passes = PASSES;
    double per_op[BATCHES];
    procreg_options o;
    procreg *reg = NULL;
    uint64_t seed = 42, sink = 0;
    int i, b, p;

    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s URL [hit|miss|lookup [PASSES]]\n", argv[0]);
        return 2;
    }
    if (argc > 2) {
        only = strcmp(argv[2], "hit") == 0 ? 0 : strcmp(argv[2], "miss") == 0 ? 1
             : strcmp(argv[2], "lookup") == 0 ? 2 : -2;
        if (only == -2) {
            fprintf(stderr, "%s: measure hit, miss or lookup, not %s\n", argv[0], argv[2]);
            return 2;
        }
    }
    if (argc > 3) passes = atoi(argv[3]);
    if (passes < 1) return 2;
    o.struct_size = sizeof o; /* extensible struct: set its size first */
    e.struct_size = sizeof e;
    procreg_options_default(&o);
    o.capacity = CAPACITY;
    o.create = PROCREG_CREATE;
    if (procreg_open(argv[1], &o, &reg) != PROCREG_OK) {
        fprintf(stderr, "cannot create %s\n", argv[1]);
        return 1;
    }
    for (i = 0; i < KEYS; i++) {
        snprintf(names[i], sizeof names[i], "h%015d", i);
        if (procreg_register_self(reg, "bench-ns", names[i], (const uint8_t *)"port=5432", 9) != PROCREG_OK) {
            fprintf(stderr, "register %s failed\n", names[i]);
            return 1;
        }
    }
    /* Probe order: a Fisher-Yates permutation, copied into one contiguous array. */
    {
        static int order[KEYS];
        for (i = 0; i < KEYS; i++) order[i] = i;
        for (i = KEYS - 1; i > 0; i--) {
            int j = (int)(splitmix(&seed) % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (i = 0; i < KEYS; i++) memcpy(probes[i], names[order[i]], NAME_LEN + 1);
    }
    /* Absent keys of the same length: the probe names with another first letter. */
    for (i = 0; i < KEYS; i++) {
        memcpy(absent[i], probes[i], NAME_LEN + 1);
        absent[i][0] = 'm';
    }
    for (kind = 0; kind < 3; kind++) {
        if (only >= 0 && kind != only) continue;
        static const char *what[] = {"procreg_lookup_pid", "procreg_lookup_pid miss",
                                     "procreg_lookup (entry + metadata)"};
        for (b = 0; b < BATCHES; b++) {
            double t0 = now_ns();
            for (p = 0; p < passes; p++) {
                for (i = 0; i < KEYS; i++) {
                    uint32_t pid = 0;
                    if (kind == 0) {
                        if (procreg_lookup_pid(reg, "bench-ns", probes[i], &pid) != PROCREG_OK) return 1;
                    } else if (kind == 1) {
                        if (procreg_lookup_pid(reg, "bench-ns", absent[i], &pid) != PROCREG_E_NOT_FOUND)
                            return 1;
                    } else {
                        if (procreg_lookup(reg, "bench-ns", probes[i], &e, meta, sizeof meta, &meta_len) !=
                            PROCREG_OK)
                            return 1;
                        pid = e.pid + (uint32_t)meta_len;
                    }
                    sink += pid;
                }
            }
            per_op[b] = (now_ns() - t0) / ((double)passes * KEYS);
        }
        qsort(per_op, BATCHES, sizeof per_op[0], cmp_double);
        printf("c %s: median %.1f ns/op, best %.1f ns/op (%d batches of %d lookups; sink %llu)\n", what[kind],
               per_op[BATCHES / 2], per_op[0], BATCHES, passes * KEYS, (unsigned long long)(sink & 1));
    }
    procreg_close(reg);
    procreg_destroy(argv[1]);
    return 0;
}
