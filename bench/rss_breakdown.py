"""`python -m bench.rss_breakdown PID`: where a running process's RSS lives, from
/proc/PID/smaps, without touching the process (safe on a worker under a bench).

Kinds: the main heap (`[heap]`, glibc's main arena), glibc's per-thread arenas (an
anonymous mapping starting on a 64 MiB boundary: glibc aligns each arena heap to its
maximum size), thread stacks (8 MiB anonymous mappings behind a guard page), other
anonymous memory (mmaps: pymalloc's arenas, big blocks, the Rust core's allocations
that glibc served by mmap), and file-backed pages (the code of libraries and the
interpreter, shared with other processes that map the same files).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass

ARENA_ALIGN = 64 << 20
STACK_KIB = 8192
HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$")


@dataclass
class Mapping:
    start: int
    end: int
    perms: str
    inode: int
    name: str
    rss_kib: int = 0

    @property
    def size_kib(self) -> int:
        return (self.end - self.start) >> 10


def read_smaps(pid: int) -> list[Mapping]:
    maps: list[Mapping] = []
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            header = HEADER.match(line)
            if header:
                start, end, perms, inode, name = header.groups()
                maps.append(Mapping(int(start, 16), int(end, 16), perms, int(inode), name))
            elif line.startswith("Rss:"):
                maps[-1].rss_kib = int(line.split()[1])
    return maps


def classify(maps: list[Mapping]) -> Counter[str]:
    """RSS in KiB per kind, plus `<kind> count` entries."""
    out: Counter[str] = Counter()
    for i, m in enumerate(maps):
        guarded = i > 0 and maps[i - 1].perms.startswith("---") and maps[i - 1].end == m.start
        if m.name == "[heap]":
            kind = "main heap"
        elif m.name.startswith("["):
            kind = "other"  # [stack], [vvar], [vdso]
        elif m.inode or m.name:
            kind = "file-backed"
        elif m.perms.startswith("rw") and m.start % ARENA_ALIGN == 0:
            kind = "glibc thread arenas"
        elif m.perms.startswith("rw") and guarded and m.size_kib == STACK_KIB:
            kind = "thread stacks"
        else:
            kind = "other anonymous"
        out[kind] += m.rss_kib
        out[f"{kind} count"] += 1
    return out


def main() -> None:
    pid = int(sys.argv[1])
    kinds = classify(read_smaps(pid))
    total = sum(v for k, v in kinds.items() if not k.endswith(" count"))
    print(f"pid {pid}: RSS {total / 1024:.1f} MiB")
    for kind, kib in sorted(kinds.items(), key=lambda kv: -kv[1]):
        if not kind.endswith(" count"):
            print(f"  {kind:<22} {kib / 1024:7.1f} MiB in {kinds[kind + ' count']} mappings")


if __name__ == "__main__":
    main()
