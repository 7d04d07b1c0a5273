"""Walk a LiteOS 5.0.0 bestfit pool from a memory snapshot, with its integrity check.

The pool is read in one bulk read and parsed from a memoryview. The walk follows
``OS_MEM_NEXT_NODE`` (node + size) from ``OS_MEM_FIRST_NODE`` to the END node at
``pool + poolSize - head``, checking each node as ``LOS_MemIntegrityCheck`` does: the magic of
used nodes (``magic == &magic ^ ~0``) where the build sets it, free-list links inside the pool,
plausible sizes, the ``preNode`` back-chain, and the END node.

LiteOS 5.0.0 sets the magic only with LOSCFG_MEM_DEBUG (``OsMemSetMagicNumAndTaskID``); without it a used
node's first word still holds the free-list link it had, never ``&magic ^ ~0`` (a pool address XOR ~0 is not a
pool address). So ``magic="auto"`` (the default) checks the magic when any used node of the pool carries a valid
one, and then every used node must; ``"always"`` and ``"never"`` force the choice. The first broken node stops the walk; it is reported
with its neighbours and a 64-byte dump, and everything read before it is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from memhil.heap.layout import ALIGNED_FLAG, SIZE_MASK, USED_FLAG, NodeLayout
from memhil.heap.model import LiveBlock, Snapshot
from memhil.errors import ConfigError, HeapCorruptionError


class HeapLayoutError(ConfigError):
    """The firmware's allocator build lacks what was asked (module ids, statistics)."""

log = logging.getLogger("memhil.trace.walk")

ReadMemory = Callable[[int, int], bytes]

#: refuse pool sizes above this: a garbage poolSize must not make us read the whole address space
MAX_POOL_SIZE = 1 << 28
_DUMP_BYTES = 64


@dataclass(slots=True)
class HeapNode:
    """One node of the pool. ``ptr`` is the user pointer (past the header, and the alignment gap
    for nodes allocated by LOS_MemAllocAlign)."""

    address: int
    size: int
    used: bool
    aligned: bool = False
    ptr: int = 0
    module: int = 0
    task: int = 0
    lrs: tuple[int, ...] = ()
    pre_node: int = 0


@dataclass(frozen=True, slots=True)
class HeapError:
    """The first broken node: what is wrong (``kind``), its last good neighbour before it and the
    node after it (when its size allows knowing it), and the raw bytes at the node."""

    address: int
    kind: str  # "pool-header" | "truncated" | "size" | "pre-node" | "magic" | "free-link" | "end-node"
    detail: str
    prev: int | None = None
    next: int | None = None
    dump: bytes = b""

    def __str__(self) -> str:
        around = []
        if self.prev is not None:
            around.append(f"previous node {self.prev:#010x}")
        if self.next is not None:
            around.append(f"next node {self.next:#010x}")
        text = f"broken node head {self.address:#010x} ({self.kind}): {self.detail}"
        if around:
            text += " [" + ", ".join(around) + "]"
        if self.dump:
            text += "\n" + _hexdump(self.address, self.dump)
        return text


@dataclass(frozen=True, slots=True)
class Fragmentation:
    """Free space: bytes, block count, largest block, and a histogram ``floor(log2(size)) -> blocks``."""

    free_bytes: int
    free_blocks: int
    largest_free: int
    histogram: dict[int, int]

    @property
    def ratio(self) -> float:
        """1 - largest/free: 0 when all free space is one block, near 1 when it is scattered."""
        return 0.0 if not self.free_bytes else 1.0 - self.largest_free / self.free_bytes


@dataclass
class HeapWalk:
    """Every node read from one pool, the pool's own statistics, and integrity errors (if any)."""

    pool: int
    pool_size: int
    head_size: int
    lr_count: int
    nodes: list[HeapNode] = field(default_factory=list)
    errors: list[HeapError] = field(default_factory=list)
    end_node: int = 0
    stat_used: int | None = None
    stat_peak: int | None = None
    has_modules: bool = True
    magic_checked: bool = False
    #: every pool this walk covers, ``(pool, poolSize)``: one for a single pool, several for :func:`combine_walks`
    pools: tuple[tuple[int, int], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def used_nodes(self) -> list[HeapNode]:
        return [n for n in self.nodes if n.used]

    @property
    def free_nodes(self) -> list[HeapNode]:
        return [n for n in self.nodes if not n.used]

    @property
    def used(self) -> int:
        """Bytes in used nodes (headers included), END node excluded."""
        return sum(n.size for n in self.nodes if n.used)

    @property
    def free(self) -> int:
        return sum(n.size for n in self.nodes if not n.used)

    @property
    def peak(self) -> int | None:
        return self.stat_peak

    @property
    def fragmentation(self) -> Fragmentation:
        hist: dict[int, int] = {}
        largest = total = count = 0
        for n in self.nodes:
            if n.used:
                continue
            total += n.size
            count += 1
            largest = max(largest, n.size)
            k = n.size.bit_length() - 1
            hist[k] = hist.get(k, 0) + 1
        return Fragmentation(total, count, largest, dict(sorted(hist.items())))

    @property
    def modules(self) -> dict[int, int]:
        """Bytes per module id, whole nodes (as ``g_moduleMemUsedSize`` counts them).

        Raises :class:`HeapCorruptionError` when the walk stopped at a broken node, and :class:`HeapLayoutError`
        when the build's nodes carry no module id: never a figure memhil could not read."""
        self.raise_for_errors()
        if not self.has_modules:
            raise HeapLayoutError(
                "this firmware's heap nodes carry no module id (LosMemCtlNode has no moduleId: built without LOSCFG_MEM_MUL_MODULE)",
                hint="build with LOSCFG_MEM_MUL_MODULE for per-module figures, or ask for the pool's totals instead",
                pool=self.pool,
            )
        out: dict[int, int] = {}
        for n in self.nodes:
            if n.used:
                out[n.module] = out.get(n.module, 0) + n.size
        return dict(sorted(out.items()))

    def module_used(self, module: int) -> int:
        return self.modules.get(module, 0)

    def to_snapshot(self, name: str = "", t_us: int = 0) -> Snapshot:
        """Live blocks of this walk (source ``"walk"``); the requested size is unknown, so it is the node size minus
        the header. Raises :class:`HeapCorruptionError` when the walk stopped at a broken node (what it read is in
        :attr:`nodes`): a snapshot of part of a pool would report the rest as freed."""
        self.raise_for_errors()
        blocks = {
            n.ptr: LiveBlock(n.ptr, n.address + n.size - n.ptr, n.size, n.module, n.task, lrs=n.lrs)
            for n in self.nodes
            if n.used
        }
        return Snapshot(name, t_us, blocks, source="walk", modules=self.modules if self.has_modules else None)

    def memused_text(self) -> str:
        """The shell's ``memused`` listing (OsMemUsedNodeShow): header, then each used node with its LRs.

        Rows use ``%010p`` as the firmware's printf renders it: ``0x`` then 8 hex digits."""
        lines = ["node        " + "".join(f"    LR[{i}]   " for i in range(self.lr_count))]
        for n in self.nodes:
            if n.used:
                lines.append(f"0x{n.address:08x}: " + "".join(f" 0x{lr:08x} " for lr in n.lrs))
        return "\n".join(lines) + "\n"

    def raise_for_errors(self) -> None:
        """Raise :class:`HeapCorruptionError` describing the first broken node, if any."""
        if self.errors:
            err = self.errors[0]
            raise HeapCorruptionError(
                str(err),
                hint="the firmware overwrote a heap node header (buffer overrun or use after free); look at the code that owns the previous node",
                pool=self.pool,
                node=err.address,
                nodes_read=len(self.nodes),
            )


def combine_walks(walks: list[HeapWalk]) -> HeapWalk:
    """One walk of several pools (the system pool first): their nodes and errors in pool order, the statistics
    summed (None when any pool has none). A single walk is returned as it is."""
    if not walks:
        raise ValueError("combine_walks needs at least one walk")
    if len(walks) == 1:
        return walks[0]
    first = walks[0]
    used = [w.stat_used for w in walks]
    peak = [w.stat_peak for w in walks]
    return HeapWalk(
        first.pool, first.pool_size, first.head_size, first.lr_count,
        nodes=[n for w in walks for n in w.nodes], errors=[e for w in walks for e in w.errors], end_node=first.end_node,
        stat_used=None if None in used else sum(used),  # type: ignore[arg-type]
        stat_peak=None if None in peak else sum(peak),  # type: ignore[arg-type]
        has_modules=all(w.has_modules for w in walks), magic_checked=any(w.magic_checked for w in walks),
        pools=tuple(p for w in walks for p in (w.pools or ((w.pool, w.pool_size),))),
    )


class HeapWalker:
    """Walks pools laid out as ``layout`` says. Never raises on a broken heap: see :attr:`HeapWalk.errors`."""

    def __init__(self, layout: NodeLayout, *, magic: str = "auto") -> None:
        if magic not in ("auto", "always", "never"):
            raise ConfigError(f"unknown magic check {magic!r}", hint="use auto, always or never")
        self.layout = layout
        self.magic = magic

    def walk_pools(self, read_memory: ReadMemory, first_pool: int, *, limit: int = 64) -> list[HeapWalk]:
        """Every pool from ``first_pool`` on, following ``LosMemPoolInfo.nextPool`` (LOSCFG_MEM_MUL_POOL)."""
        return [self.walk(read_memory, pool) for pool in self.pool_chain(read_memory, first_pool, limit=limit)]

    def pool_chain(self, read_memory: ReadMemory, first_pool: int, *, limit: int = 64) -> list[int]:
        """The addresses of ``first_pool`` and the pools chained after it (``nextPool``), read from the headers
        alone: no pool is walked."""
        pools = [first_pool]
        L = self.layout
        while L.next_pool is not None and len(pools) < limit:
            nxt = L.next_pool.get(bytes(read_memory(pools[-1], L.pool_info_size)))
            if not nxt or nxt in pools:
                break
            pools.append(nxt)
        return pools

    def pool_header(self, read_memory: ReadMemory, pool_addr: int) -> tuple[int, str | None]:
        """``(poolSize, problem)`` read from the pool header at ``pool_addr``: problem is None for a valid header
        (its ``pool`` field is its own address, its size plausible), else what is wrong with it."""
        L = self.layout
        info = bytes(read_memory(pool_addr, L.pool_info_size))
        if len(info) < L.pool_info_size:
            return 0, f"read {len(info)} of {L.pool_info_size} bytes of the pool header"
        return self._header(info, pool_addr)

    def _header(self, info: bytes, pool_addr: int) -> tuple[int, str | None]:
        """``(poolSize, problem)`` of a whole pool header ``info`` read at ``pool_addr`` (see :meth:`pool_header`)."""
        L = self.layout
        pool_field, pool_size = L.pool_pool.get(info), L.pool_size.get(info)
        minimum = L.first_node_offset + 2 * L.head_size
        if pool_field != pool_addr or not minimum <= pool_size <= MAX_POOL_SIZE:
            return pool_size, (f"pool header says pool={pool_field:#010x} poolSize={pool_size}; expected pool={pool_addr:#010x} "
                               f"and {minimum} <= poolSize <= {MAX_POOL_SIZE} (pool not initialised, wrong address, or overwritten)")
        return pool_size, None

    def walk(self, read_memory: ReadMemory, pool_addr: int) -> HeapWalk:
        L = self.layout
        head = L.head_size
        info = bytes(read_memory(pool_addr, L.pool_info_size))
        walk = HeapWalk(pool_addr, 0, head, L.lr_count, has_modules=L.has_modules)
        if len(info) < L.pool_info_size:
            walk.errors.append(HeapError(pool_addr, "truncated", f"read {len(info)} of {L.pool_info_size} bytes of the pool header"))
            return walk
        pool_size, problem = self._header(info, pool_addr)
        walk.pool_size = pool_size
        walk.pools = ((pool_addr, pool_size),)
        if L.stat_used is not None:
            walk.stat_used = L.stat_used.get(info)
        if L.stat_peak is not None:
            walk.stat_peak = L.stat_peak.get(info)
        if problem is not None:
            walk.errors.append(HeapError(pool_addr, "pool-header", problem, dump=info[:_DUMP_BYTES]))
            return walk
        data = memoryview(bytes(read_memory(pool_addr, pool_size)))
        self._walk_nodes(walk, data)
        log.debug("walked pool %#x: %d nodes, %d errors", pool_addr, len(walk.nodes), len(walk.errors))
        return walk

    def _walk_nodes(self, walk: HeapWalk, data: memoryview) -> None:
        L = self.layout
        head = L.head_size
        pool = walk.pool
        end = pool + walk.pool_size - head
        walk.end_node = end
        avail = len(data)
        addr = pool + L.first_node_offset
        prev: int | None = None
        expected_pre = end  # the first node's preNode is the END node (OsMemInit)
        saf_f, pre_f, magic_f = L.size_and_flag, L.pre_node, L.magic
        module_f, task_f = L.module, L.task
        valid_magic = 0
        first_bad: tuple[int, int, int, int | None, int] | None = None  # (node index, address, magic, prev, size)

        def fail(at: int, kind: str, detail: str, nxt: int | None = None) -> None:
            off = at - pool
            walk.errors.append(HeapError(at, kind, detail, prev, nxt, bytes(data[off : off + _DUMP_BYTES])))

        while addr < end:
            off = addr - pool
            if off + head > avail:
                fail(addr, "truncated", f"memory read ends at {pool + avail:#010x}, inside the node header (asked for {walk.pool_size} bytes)")
                return
            saf = saf_f.get(data, off)
            size = saf & SIZE_MASK
            if size < head or size % 4 or addr + size > end:
                fail(addr, "size", f"node size {size} (sizeAndFlag {saf:#010x}) is below the {head}-byte header, unaligned, or runs past the END node {end:#010x}")
                return
            pre = pre_f.get(data, off)
            if pre != expected_pre:
                fail(addr, "pre-node", f"preNode is {pre:#010x}, expected {expected_pre:#010x}", addr + size)
                return
            used = bool(saf & USED_FLAG)
            if used:
                if self.magic != "never":
                    magic = magic_f.get(data, off)
                    if magic == L.magic_for(addr):
                        valid_magic += 1
                    elif self.magic == "always":
                        fail(addr, "magic", f"used node magic is {magic:#010x}, expected {L.magic_for(addr):#010x}", addr + size)
                        return
                    elif first_bad is None:
                        first_bad = (len(walk.nodes), addr, magic, prev, size)
            else:
                problem = self._free_links(data, pool, end, addr)
                if problem:
                    fail(addr, "free-link", problem, addr + size)
                    return
            aligned = bool(saf & ALIGNED_FLAG)
            ptr = addr + head
            if aligned and used:
                ptr += self._gap(data, off + head, size - head)
            walk.nodes.append(
                HeapNode(
                    addr,
                    size,
                    used,
                    aligned,
                    ptr,
                    module_f.get(data, off) if used and module_f is not None else 0,
                    task_f.get(data, off) if used and task_f is not None else 0,
                    L.lrs(data, off),
                    pre,
                )
            )
            prev = addr
            expected_pre = addr
            addr += size
        walk.magic_checked = self.magic == "always" or (self.magic == "auto" and valid_magic > 0)
        if walk.magic_checked and first_bad is not None:
            # the build sets the magic (other used nodes carry it): this node's header was overwritten
            index, at, magic, prev, size = first_bad
            del walk.nodes[index:]
            fail(at, "magic", f"used node magic is {magic:#010x}, expected {L.magic_for(at):#010x} "
                 f"({valid_magic} other used node(s) carry a valid magic)", at + size)
            return
        self._check_end(walk, data, addr, end, expected_pre, fail)

    def _check_end(self, walk: HeapWalk, data: memoryview, addr: int, end: int, expected_pre: int, fail: Callable[..., None]) -> None:
        L = self.layout
        head = L.head_size
        off = end - walk.pool
        if off + head > len(data):
            fail(end, "truncated", f"memory read ends at {walk.pool + len(data):#010x}, before the END node")
            return
        saf = L.size_and_flag.get(data, off)
        if saf != head | USED_FLAG:
            fail(end, "end-node", f"END node sizeAndFlag is {saf:#010x}, expected {head | USED_FLAG:#010x}")
            return
        pre = L.pre_node.get(data, off)
        if pre != expected_pre:
            fail(end, "end-node", f"END node preNode is {pre:#010x}, expected the last node {expected_pre:#010x}")

    def _free_links(self, data: memoryview, pool: int, end: int, addr: int) -> str | None:
        """A free node's list links must point inside the pool, past the pool header, aligned, and back
        at the node (``pstPrev->pstNext == node`` and ``pstNext->pstPrev == node``)."""
        L = self.layout
        lo = pool + L.pool_info_size
        link_at = addr + L.prev.offset  # &node->freeNodeInfo
        off = addr - pool
        for name, f, back_name, back in (("pstPrev", L.prev, "pstNext", L.next), ("pstNext", L.next, "pstPrev", L.prev)):
            link = f.get(data, off)
            if not lo <= link < end or link % L.ptr_size:
                return f"free node {name} {link:#010x} is outside the pool lists [{lo:#010x}, {end:#010x}) or unaligned"
            # the list entry at ``link`` is a LOS_DL_LIST; its fields sit at the same offsets as in the node
            entry = link - L.prev.offset - pool
            if entry + L.head_size > len(data):
                continue  # beyond a truncated read: cannot check, the walk reports the truncation itself
            if back.get(data, entry) != link_at:
                return f"free node {name} {link:#010x} does not link back ({back_name} is {back.get(data, entry):#010x})"
        return None

    @staticmethod
    def _gap(data: memoryview, user_off: int, room: int) -> int:
        """The LOS_MemAllocAlign gap: the word at ``aligned_ptr - 4`` holds ``gap | ALIGNED``."""
        for gap in range(4, room + 1, 4):
            word = int.from_bytes(data[user_off + gap - 4 : user_off + gap], "little")
            if word == gap | ALIGNED_FLAG:
                return gap
        return 0


def _hexdump(address: int, raw: bytes) -> str:
    rows = []
    for i in range(0, len(raw), 16):
        chunk = raw[i : i + 16]
        words = " ".join(chunk[j : j + 4][::-1].hex() for j in range(0, len(chunk), 4))
        rows.append(f"  {address + i:#010x}: {words}")
    return "\n".join(rows)
