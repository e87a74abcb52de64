"""bench/rss_breakdown.py sorts a process's mappings into the kinds the memory issue asks about."""

from __future__ import annotations

import os

from bench.rss_breakdown import ARENA_ALIGN, STACK_KIB, Mapping, classify, read_smaps

MIB = 1 << 20


def test_mappings_are_sorted_by_kind() -> None:
    stack_at = 3 * ARENA_ALIGN + 4096
    maps = [
        Mapping(0x1000, 0x2000, "r-xp", 42, "/usr/lib/libc.so.6", rss_kib=4),
        Mapping(0x10000, 0x20000, "rw-p", 0, "[heap]", rss_kib=64),
        # A thread arena: its heap starts on the 64 MiB boundary; the rest is reserved.
        Mapping(ARENA_ALIGN, ARENA_ALIGN + MIB, "rw-p", 0, "", rss_kib=900),
        Mapping(ARENA_ALIGN + MIB, 2 * ARENA_ALIGN, "---p", 0, "", rss_kib=0),
        # A thread stack behind its guard page.
        Mapping(stack_at - 4096, stack_at, "---p", 0, "", rss_kib=0),
        Mapping(stack_at, stack_at + STACK_KIB * 1024, "rw-p", 0, "", rss_kib=40),
        Mapping(5 * ARENA_ALIGN + 4096, 5 * ARENA_ALIGN + 4096 + MIB, "rw-p", 0, "", rss_kib=1000),
    ]
    kinds = classify(maps)
    assert kinds["file-backed"] == 4
    assert kinds["main heap"] == 64
    assert kinds["glibc thread arenas"] == 900 and kinds["glibc thread arenas count"] == 1
    assert kinds["thread stacks"] == 40
    assert kinds["other anonymous"] == 1000  # pymalloc arenas, big blocks


def test_own_process_adds_up_to_its_rss() -> None:
    kinds = classify(read_smaps(os.getpid()))
    total_kib = sum(v for k, v in kinds.items() if not k.endswith(" count"))
    status = open(f"/proc/{os.getpid()}/status").read()
    vm_rss_kib = int(status.split("VmRSS:")[1].split()[0])
    assert abs(total_kib - vm_rss_kib) < 0.1 * vm_rss_kib
