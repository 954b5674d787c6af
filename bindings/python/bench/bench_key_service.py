"""Per-call time of procreg's lookups from Python: the plain lookup, a
prepared Key and a cached Service, beside a dict lookup, in one process
(timeit, best of 7 repeats of 500,000 calls each).

    python bindings/python/bench/bench_key_service.py
"""

from __future__ import annotations

import timeit

import procreg


def main() -> None:
    reg = procreg.Registry("mem:")
    reg.register("web", "api")
    g = {
        "reg": reg,
        "hit": procreg.Key("web", "api"),
        "miss": procreg.Key("web", "nope"),
        "svc": reg.service("web", "api"),
        "d": {("web", "api"): 1},
    }
    n = 500_000
    for label, stmt in [
        ("empty statement", "pass"),
        ("dict[(ns, name)] hit", "d[('web', 'api')]"),
        ("reg.lookup_pid hit", "reg.lookup_pid('web', 'api')"),
        ("reg.lookup_pid miss", "reg.lookup_pid('web', 'nope')"),
        ("reg.lookup_pid_key hit", "reg.lookup_pid_key(hit)"),
        ("reg.lookup_pid_key miss", "reg.lookup_pid_key(miss)"),
        ("svc.pid() hit (cached)", "svc.pid()"),
    ]:
        best = min(timeit.repeat(stmt, number=n, repeat=7, globals=g)) / n * 1e9
        print(f"{label:28} {best:6.0f} ns")


if __name__ == "__main__":
    main()
