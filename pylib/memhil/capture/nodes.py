"""Read a LiteOS bestfit node header (``LosMemCtlNode``) from the bytes before a user pointer.

The layout is the heap walker's (:meth:`memhil.heap.layout.NodeLayout.from_image`, from DWARF); without debug
info a fallback is used (LiteOS 5.0.0 on Cortex-M4 without LEAKCHECK: 16 bytes, magic @0,
taskId:16/moduleId:16 @4, preNode @8, sizeAndFlag @12). ``sizeAndFlag`` is always the header's last
word: size = value & 0x3FFFFFFF, USED 0x80000000, ALIGNED 0x40000000. For an aligned block the word
just before the pointer is ``gap | ALIGNED`` (USED clear) and the node starts ``gap + head`` bytes
before the pointer.

Only the control node right before the user pointer is read (``head`` bytes): a LOSCFG_MEM_HEAD_BACKUP
build's node (``LosMemDynNode``) puts a ``backupNode`` copy before that ``selfNode``, and nothing memhil
takes from a node (size, task, module, link registers) is in the copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from memhil.errors import ElfError
from memhil.heap.layout import NodeLayout

if TYPE_CHECKING:
    from memhil.elf import Image

log = logging.getLogger("memhil.capture")

SIZE_MASK = 0x3FFFFFFF
USED = 0x80000000
ALIGNED = 0x40000000
#: widest alignment gap read together with the header in the same request
MAX_GAP_WINDOW = 1024


@dataclass(frozen=True)
class NodeInfo:
    node_size: int
    module: int
    task: int
    lrs: tuple[int, ...] = ()


class LiteosNodes:
    """Decodes node headers; offsets are relative to the node start."""

    def __init__(self, image: Image | None = None) -> None:
        self.head = 16
        self.size_off = 12
        self.task = (4, 0, 16)  # (byte offset, bit offset, bits)
        self.module = (4, 16, 16)
        self.lr_off = 0
        self.lr_count = 0
        if image is not None:
            self._from_dwarf(image)

    def _from_dwarf(self, image: Image) -> None:
        try:
            layout = NodeLayout.from_image(image)
        except ElfError as exc:
            log.info("LosMemCtlNode layout not in DWARF (%s); using the 16-byte LiteOS 5.0.0 layout", exc.message)
            return
        if layout.size_and_flag.end != layout.head_size:
            log.warning("LosMemCtlNode in DWARF has no trailing sizeAndFlag; using the fallback layout")
            return
        # offsets from the last control node's start (its first member, the free-list union, is at its start)
        base = layout.prev.offset
        self.head = layout.head_size - base
        self.size_off = layout.size_and_flag.offset - base
        for attr, f in (("task", layout.task), ("module", layout.module)):
            if f is not None:
                setattr(self, attr, (f.offset - base, f.bit_offset or 0, f.bit_size or f.size * 8))
        if layout.link_reg is not None:
            self.lr_off = layout.link_reg.offset - base
            self.lr_count = layout.lr_count

    def window(self, ptr: int, boundary: int = 0) -> tuple[int, int]:
        """The (address, size) to read before ``ptr``: the header, plus the alignment gap when small."""
        extra = boundary if 0 < boundary <= MAX_GAP_WINDOW else 0
        return ptr - self.head - extra, self.head + extra

    def decode(self, ptr: int, raw: bytes, raw_addr: int, read: Callable[[int, int], bytes] | None = None) -> NodeInfo | None:
        """Decode the node of user pointer ``ptr`` from ``raw`` (bytes read at ``raw_addr``, ending at ``ptr``).

        When the alignment gap reaches past ``raw``, ``read`` fetches the header (one more request).
        Returns None when the header does not look like a used node.
        """
        word = int.from_bytes(raw[-4:], "little")
        node = ptr - self.head
        if word & ALIGNED and not word & USED:
            node = ptr - (word & SIZE_MASK) - self.head
        start = node - raw_addr
        if start >= 0:
            header = raw[start : start + self.head]
        elif read is not None:
            header = read(node, self.head)
        else:
            return None
        if len(header) < self.head:
            return None
        size_flag = int.from_bytes(header[self.size_off : self.size_off + 4], "little")
        if not size_flag & USED:
            return None
        lrs = tuple(
            v
            for v in (int.from_bytes(header[self.lr_off + 4 * i : self.lr_off + 4 * i + 4], "little") for i in range(self.lr_count))
            if v
        )
        return NodeInfo(size_flag & SIZE_MASK, _field(header, self.module), _field(header, self.task), lrs)


def _field(header: bytes, spec: tuple[int, int, int]) -> int:
    off, bit, bits = spec
    return (int.from_bytes(header[off : off + 4], "little") >> bit) & ((1 << bits) - 1)
