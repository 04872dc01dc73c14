# What fills each glibc thread arena of a running process: a gdb script.
#
#   gdb -p PID -batch -x tools/bench/heap_walk.py
#
# For every thread arena (not the main one) it walks the arena's heaps chunk by chunk and prints
# the bytes in use and free, then the in-use chunk sizes that take the most bytes, with the first
# bytes of a few chunks of each size (printable text, or the symbol a leading pointer names, such
# as a vtable). Chunks in the fastbins and in the walking thread's tcache carry the "in use" bit
# but are free; they are counted as free. It also groups the 80-byte chunks by their first 12
# bytes (names of ~60 characters land there).
#
# Needs glibc's debug symbols (Debian: libc6-dbg) for thread_arena, main_arena and tcache; assumes
# a 64-bit glibc with safe-linking (2.32 and later: Debian 12 has 2.36) and the default 64 MiB
# heaps. The process is stopped while the script runs (a second or two for a few MiB).
import collections

import gdb

HEAP_MAX = 64 << 20
inferior = gdb.selected_inferior()


def u64(addr):
    return int.from_bytes(bytes(inferior.read_memory(addr, 8)), "little")


def printable(data):
    return "".join(chr(c) if 32 <= c < 127 else "." for c in data)


def demangle(pos, value):  # glibc's PROTECT_PTR, undone
    return value ^ (pos >> 12)


def cached_chunks(arena):
    """Chunks that look in use but sit in the arena's fastbins or this thread's tcache."""
    cached = set()
    for i in range(10):
        chunk, n = int(arena["fastbinsY"][i]), 0
        while chunk and n < 100000:
            cached.add(chunk)
            n += 1
            chunk = demangle(chunk + 16, u64(chunk + 16))
    try:
        tcache = gdb.parse_and_eval("tcache")
        if int(tcache):
            for i in range(64):
                entry, n = int(tcache["entries"][i]), 0
                while entry and n < 1000:
                    cached.add(entry - 16)
                    n += 1
                    entry = demangle(entry, u64(entry))
    except gdb.error:
        pass
    return cached


def walk(thread, arena):
    address = int(arena)
    top = int(arena["top"])
    heaps = []
    heap = top & ~(HEAP_MAX - 1)
    while heap:  # heap_info: ar_ptr, prev, size, ...
        heaps.append((heap, u64(heap + 16)))
        heap = u64(heap + 8)
    cached = cached_chunks(arena)
    sizes, samples = collections.Counter(), collections.defaultdict(list)
    in_use = free = 0
    malloc_state = int(gdb.parse_and_eval("sizeof(struct malloc_state)"))
    for heap, size in heaps:
        # The arena's first heap holds the malloc_state after heap_info; the others only heap_info.
        start = address + malloc_state if heap == (address & ~(HEAP_MAX - 1)) else heap + 32
        chunk, end = (start + 15) & ~15, heap + size
        while chunk < end and chunk != top:
            chunk_size = u64(chunk + 8) & ~7
            if chunk_size < 16:
                break
            following = chunk + chunk_size
            used = (u64(following + 8) & 1) if following < end else 1
            if used and chunk not in cached:
                sizes[chunk_size] += 1
                in_use += chunk_size
                if len(samples[chunk_size]) < (400 if chunk_size == 80 else 3):
                    data = bytes(inferior.read_memory(chunk + 16, min(48, chunk_size - 16)))
                    first = int.from_bytes(data[:8], "little")
                    symbol = ""
                    if first > 0x1000:
                        symbol = gdb.execute("info symbol 0x%x" % first, to_string=True).strip()
                        if "No symbol" in symbol:
                            symbol = ""
                    samples[chunk_size].append((printable(data), symbol[:60]))
            else:
                free += chunk_size
            chunk = following
    print("=== thread %d (LWP %d) arena 0x%x: system %.2f MiB, %d heap(s), in use %.2f MiB, "
          "free %.2f MiB" % (thread.num, thread.ptid[1], address,
                             int(arena["system_mem"]) / 2**20, len(heaps), in_use / 2**20,
                             free / 2**20))
    if samples[80]:
        kinds = collections.Counter(text[:12] for text, _ in samples[80])
        print("  80-byte chunks by their first 12 bytes:", kinds.most_common(8))
    for size, count in sorted(sizes.items(), key=lambda item: -item[0] * item[1])[:12]:
        print("  size %6d x %6d = %8.1f KiB" % (size, count, size * count / 1024))
        for text, symbol in samples[size][:3]:
            print("      %s  %s" % (text, symbol))


def main():
    main_arena = int(gdb.parse_and_eval("&main_arena"))
    seen = set()
    for thread in inferior.threads():
        thread.switch()
        try:
            arena = gdb.parse_and_eval("thread_arena")
        except gdb.error:
            continue
        address = int(arena)
        if address in (0, main_arena) or address in seen:
            continue
        seen.add(address)
        walk(thread, arena)


main()
