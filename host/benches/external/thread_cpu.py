#!/usr/bin/env python3
"""CPU time of a process by thread name, so a bench can say which threads a cost lands on
(the async workers, the span exporter, the blocking pool):

    thread_cpu.py snapshot PID > before.tsv
    thread_cpu.py per-unit BEFORE.tsv AFTER.tsv UNITS [UNIT]   # µs of CPU per unit, by thread name

A thread that started after the first snapshot counts in full; one that ended before the
second is missing from both and not counted.
"""
import collections
import os
import sys


def snapshot(pid):
    ticks = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime and stime, fields 14 and 15 of stat(5), in clock ticks.
        micros = (int(fields[11]) + int(fields[12])) * 1_000_000 // ticks
        print(f"{tid}\t{micros}\t{name}")


def read(path):
    with open(path) as f:
        return {tid: (int(micros), name) for tid, micros, name in (line.rstrip("\n").split("\t", 2) for line in f)}


def per_unit(before, after, units, unit):
    before, after = read(before), read(after)
    by_name = collections.Counter()
    for tid, (micros, name) in after.items():
        by_name[name] += micros - before.get(tid, (0, name))[0]
    total = sum(by_name.values())
    shares = ", ".join(f"{name} {micros / units:.1f}" for name, micros in by_name.most_common() if micros)
    print(f"hub CPU per {unit} by thread (µs): {shares}; all {total / units:.1f}")


if sys.argv[1] == "snapshot":
    snapshot(sys.argv[2])
else:
    per_unit(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else "webhook")
