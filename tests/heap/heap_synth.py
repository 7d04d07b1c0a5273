"""Build LiteOS bestfit pools byte by byte for walker tests (layout from NodeLayout, never the firmware)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from memhil.heap.layout import ALIGNED_FLAG, USED_FLAG, NodeLayout


@dataclass
class SynthNode:
    address: int
    size: int
    used: bool
    module: int = 0
    task: int = 0
    lrs: tuple[int, ...] = ()
    gap: int = 0


class PoolBuilder:
    """Nodes are appended in address order; the rest of the pool becomes one free node, then the END node."""

    def __init__(self, layout: NodeLayout, pool: int = 0x20001000, size: int = 2048, *, magic: bool = True) -> None:
        """``magic``: the build sets the used nodes' magic (LOSCFG_MEM_DEBUG); without it a used node's first
        word keeps the free-list link it had."""
        self.layout = layout
        self.magic = magic
        self.pool = pool
        self.size = size
        self.nodes: list[SynthNode] = []
        self.cursor = pool + layout.first_node_offset
        self.stat_used = 0
        self.stat_peak = 0

    @property
    def end(self) -> int:
        return self.pool + self.size - self.layout.head_size

    def alloc(self, user_size: int, module: int = 0, task: int = 0, lrs: tuple[int, ...] = (), gap: int = 0) -> SynthNode:
        size = (user_size + self.layout.head_size + gap + 3) & ~3
        return self._add(SynthNode(self.cursor, size, True, module, task, lrs, gap))

    def free(self, node_size: int) -> SynthNode:
        return self._add(SynthNode(self.cursor, node_size, False))

    def _add(self, node: SynthNode) -> SynthNode:
        assert node.address + node.size <= self.end
        self.nodes.append(node)
        self.cursor += node.size
        return node

    def build(self) -> bytearray:
        L = self.layout
        nodes = list(self.nodes)
        if self.cursor < self.end:
            nodes.append(SynthNode(self.cursor, self.end - self.cursor, False))
        buf = bytearray(self.size)
        base = self.pool
        used_total = sum(n.size for n in nodes if n.used)
        _put(buf, L.pool_pool.offset, self.pool)
        _put(buf, L.pool_size.offset, self.size)
        if L.stat_used is not None:
            _put(buf, L.stat_used.offset, used_total + L.head_size)
        if L.stat_peak is not None:
            _put(buf, L.stat_peak.offset, max(self.stat_peak, used_total + L.head_size))
        heads = base + L.pool_info_size
        for k in range(L.dlink_head_size // 8):  # empty circular lists
            h = heads + 8 * k
            _put(buf, h - base, h)
            _put(buf, h - base + 4, h)
        prev = self.end
        for n in nodes:
            off = n.address - base
            _put(buf, off + L.pre_node.offset, prev)
            flags = (USED_FLAG if n.used else 0) | (ALIGNED_FLAG if n.gap else 0)
            _put(buf, off + L.size_and_flag.offset, n.size | flags)
            if n.used:
                _put(buf, off + L.magic.offset, L.magic_for(n.address) if self.magic else heads)
                if L.task is not None:
                    _put_field(buf, off, L.task, n.task)
                if L.module is not None:
                    _put_field(buf, off, L.module, n.module)
                if L.link_reg is not None:
                    for i, lr in enumerate(n.lrs[: L.lr_count]):
                        _put(buf, off + L.link_reg.offset + 4 * i, lr)
                if n.gap:
                    _put(buf, off + L.head_size + n.gap - 4, n.gap | ALIGNED_FLAG)
            else:  # insert at the head of its size-class list
                k = max(n.size.bit_length() - 1, 4) - 4
                h = heads + 8 * k
                first = _get(buf, h - base + 4)
                link = n.address + L.prev.offset  # &node->selfNode.freeNodeInfo
                _put(buf, link - base, h)
                _put(buf, link - base + 4, first)
                _put(buf, first - base, link)
                _put(buf, h - base + 4, link)
            prev = n.address
        off = self.end - base
        _put(buf, off + L.pre_node.offset, prev)
        _put(buf, off + L.size_and_flag.offset, L.head_size | USED_FLAG)
        if self.magic:
            _put(buf, off + L.magic.offset, L.magic_for(self.end))
        self.all_nodes = nodes
        return buf


def _put(buf: bytearray, off: int, value: int) -> None:
    struct.pack_into("<I", buf, off, value & 0xFFFFFFFF)


def _put_field(buf: bytearray, node_off: int, f, value: int) -> None:
    """Write ``value`` into field ``f`` (bit fields too) of the node at ``node_off``."""
    at = node_off + f.offset
    old = int.from_bytes(buf[at : at + f.size], "little")
    if f.bit_size is None:
        new = value
    else:
        mask = ((1 << f.bit_size) - 1) << (f.bit_offset or 0)
        new = (old & ~mask) | ((value << (f.bit_offset or 0)) & mask)
    buf[at : at + f.size] = (new & ((1 << 8 * f.size) - 1)).to_bytes(f.size, "little")


def _get(buf: bytearray, off: int) -> int:
    return struct.unpack_from("<I", buf, off)[0]


def reader(buf: bytes | bytearray, base: int, *, limit: int | None = None):
    """A read_memory(addr, size) over ``buf`` at ``base``; ``limit`` cuts reads short (a truncated dump)."""
    calls = []

    def read(addr: int, size: int) -> bytes:
        calls.append((addr, size))
        off = addr - base
        end = off + size if limit is None else min(off + size, limit)
        return bytes(buf[off:end])

    read.calls = calls  # type: ignore[attr-defined]
    return read
