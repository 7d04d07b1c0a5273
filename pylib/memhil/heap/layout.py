"""Byte layout of the LiteOS 5.0.0 bestfit pool and node headers, read from DWARF.

The walker never hard-codes offsets: :meth:`NodeLayout.from_image` takes them from the
firmware's DWARF 4 type information (section 5.5, structure types and DW_TAG_member, bit
fields by DW_AT_data_bit_offset) for ``LosMemDynNode`` (when the build has it), ``LosMemCtlNode``,
``LosMemPoolInfo`` and ``LosMultipleDlinkHead``, so every LiteOS 5.0.0 build option is read as built:

- LOSCFG_MEM_MUL_MODULE off: no ``moduleId`` bit field; the walk works, module figures are refused;
- LOSCFG_MEM_LEAKCHECK: ``linkReg[LOS_RECORD_LR_CNT]`` before ``sizeAndFlag``;
- LOSCFG_MEM_HEAD_BACKUP: ``LosMemDynNode {backupNode; selfNode}``, two control nodes per header (72 bytes
  with LEAKCHECK on Cortex-M4); the node's fields are those of ``selfNode``;
- LOSCFG_MEM_DEBUG: the magic (``OS_MEM_SET_MAGIC``: the address of the magic field XOR ~0) is set only in
  debug builds, so the walker checks it only where the pool carries it (:class:`memhil.heap.walker.HeapWalker`);
- LOSCFG_MEM_MUL_POOL: ``LosMemPoolInfo.nextPool`` chains every pool. :meth:`NodeLayout.liteos_default` gives the layout the reference
measured with arm-none-eabi-gcc for Cortex-M4 and exists only for synthetic tests.

Pool memory, as LiteOS lays it out::

    pool: [LosMemPoolInfo][LosMultipleDlinkHead][first node ...][end node]
    node: [union{freeNodeInfo | magic, taskId:16, moduleId:16}][preNode][linkReg[n]?][sizeAndFlag] user data...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from memhil.errors import DebugInfoMissingError, ElfError

if TYPE_CHECKING:
    from memhil.elf import Image

USED_FLAG = 0x80000000
ALIGNED_FLAG = 0x40000000
SIZE_MASK = ~(USED_FLAG | ALIGNED_FLAG) & 0xFFFFFFFF

_DEBUG_HINT = "use the ELF with debug info (built with -g, e.g. firmware/build/stm32f4/debug/<app>.elf), not a stripped copy"


@dataclass(frozen=True, slots=True)
class Field:
    """Where an integer lives inside a header: byte ``offset``, ``size`` bytes, optional bit field."""

    offset: int
    size: int = 4
    bit_offset: int | None = None
    bit_size: int | None = None

    def get(self, buf: bytes | memoryview, base: int = 0) -> int:
        start = base + self.offset
        value = int.from_bytes(buf[start : start + self.size], "little")
        if self.bit_size is not None:
            value = (value >> (self.bit_offset or 0)) & ((1 << self.bit_size) - 1)
        return value

    @property
    def end(self) -> int:
        return self.offset + self.size


class _Member(Protocol):
    offset: int
    size: int
    bit_offset: int | None
    bit_size: int | None
    count: int | None


@dataclass(frozen=True)
class NodeLayout:
    """Offsets inside ``LosMemCtlNode`` (``head_size`` bytes) and ``LosMemPoolInfo``.

    ``link_reg`` is the first ``linkReg`` element (``lr_count`` of them, ``link_reg.size``
    bytes each) when the firmware was built with LOSCFG_MEM_LEAKCHECK, else None.
    ``module`` is None without LOSCFG_MEM_MUL_MODULE, ``task`` None where the build has no task id.
    ``stat_used``/``stat_peak`` are None when the pool has no statistics, ``next_pool`` without
    LOSCFG_MEM_MUL_POOL. ``backup`` is True for LOSCFG_MEM_HEAD_BACKUP (all offsets are from the node start).
    """

    head_size: int
    prev: Field
    next: Field
    magic: Field
    task: Field | None
    module: Field | None
    pre_node: Field
    size_and_flag: Field
    link_reg: Field | None
    lr_count: int
    pool_info_size: int
    pool_pool: Field
    pool_size: Field
    stat_used: Field | None
    stat_peak: Field | None
    dlink_head_size: int
    ptr_size: int = 4
    next_pool: Field | None = None
    backup: bool = False

    @property
    def has_modules(self) -> bool:
        return self.module is not None

    def magic_for(self, node: int) -> int:
        """The magic a debug build stores in the used node at ``node`` (``OS_MEM_SET_MAGIC``)."""
        return (node + self.magic.offset) ^ 0xFFFFFFFF

    @property
    def leakcheck(self) -> bool:
        return self.link_reg is not None and self.lr_count > 0

    @property
    def first_node_offset(self) -> int:
        """Offset of the first node from the pool start (OS_MEM_FIRST_NODE)."""
        return self.pool_info_size + self.dlink_head_size

    def lrs(self, buf: bytes | memoryview, base: int) -> tuple[int, ...]:
        if self.link_reg is None:
            return ()
        step = self.link_reg.size
        start = base + self.link_reg.offset
        return tuple(int.from_bytes(buf[start + i * step : start + (i + 1) * step], "little") for i in range(self.lr_count))

    # ------------------------------------------------------------------ construction

    @classmethod
    def liteos_default(cls, leakcheck: bool) -> "NodeLayout":
        """The Cortex-M4 layout of the reference (16-byte header, 28 with linkReg[3]). Synthetic tests only."""
        size_off = 24 if leakcheck else 12
        return cls(
            head_size=28 if leakcheck else 16,
            prev=Field(0),
            next=Field(4),
            magic=Field(0),
            task=Field(4, 4, 0, 16),
            module=Field(4, 4, 16, 16),
            pre_node=Field(8),
            size_and_flag=Field(size_off),
            link_reg=Field(12) if leakcheck else None,
            lr_count=3 if leakcheck else 0,
            pool_info_size=16,
            pool_pool=Field(0),
            pool_size=Field(4),
            stat_used=Field(8),
            stat_peak=Field(12),
            dlink_head_size=26 * 8,
        )

    @classmethod
    def from_image(cls, image: "Image") -> "NodeLayout":
        """Read the layout from the firmware's DWARF; :class:`DebugInfoMissingError` for a stripped ELF."""
        if not image.has_dwarf:
            raise DebugInfoMissingError(
                "the ELF has no DWARF debug info, so the heap node layout (LosMemCtlNode) cannot be known",
                hint=_DEBUG_HINT,
                path=str(getattr(image, "path", "")),
            )
        node = image.struct_layout("LosMemCtlNode")
        pool = image.struct_layout("LosMemPoolInfo")
        heads = image.struct_layout("LosMultipleDlinkHead")
        nm, pm = node.members, pool.members
        base, head_size, backup = 0, node.size, False
        dyn = _optional_struct(image, "LosMemDynNode")
        if dyn is not None and "selfNode" in dyn.members:
            base, head_size = dyn.members["selfNode"].offset, dyn.size
            backup = "backupNode" in dyn.members

        def need(members: dict[str, _Member], struct: str, *names: str) -> _Member:
            for name in names:
                if name in members:
                    return members[name]
            raise ElfError(
                f"{struct} has no member {names[0]!r}; the firmware's allocator is not the LiteOS 5.0.0 bestfit layout memhil walks",
                hint=f"members found: {', '.join(members)}; check the firmware's los_memory headers",
                struct=struct,
            )

        def field(m: _Member, at: int = base) -> Field:
            return Field(at + m.offset, m.size, m.bit_offset, m.bit_size)

        def optional(*names: str) -> Field | None:
            for name in names:
                if name in nm:
                    return field(nm[name])
            return None

        prev = need(nm, "LosMemCtlNode", "freeNodeInfo.pstPrev")
        nxt = need(nm, "LosMemCtlNode", "freeNodeInfo.pstNext")
        link = nm.get("linkReg")
        link_field = None
        lr_count = 0
        if link is not None:
            lr_count = link.count or 1
            link_field = Field(base + link.offset, link.size // lr_count)
        stat_used = pm.get("stat.memTotalUsed")
        stat_peak = pm.get("stat.memTotalPeak")
        return cls(
            head_size=head_size,
            prev=field(prev),
            next=field(nxt),
            magic=field(need(nm, "LosMemCtlNode", "magic")),
            task=optional("taskId", "taskID"),
            module=optional("moduleId", "moduleID"),
            pre_node=field(need(nm, "LosMemCtlNode", "preNode")),
            size_and_flag=field(need(nm, "LosMemCtlNode", "sizeAndFlag")),
            link_reg=link_field,
            lr_count=lr_count,
            pool_info_size=pool.size,
            pool_pool=field(need(pm, "LosMemPoolInfo", "pool"), 0),
            pool_size=field(need(pm, "LosMemPoolInfo", "poolSize"), 0),
            stat_used=field(stat_used, 0) if stat_used is not None else None,
            stat_peak=field(stat_peak, 0) if stat_peak is not None else None,
            dlink_head_size=heads.size,
            ptr_size=prev.size,
            next_pool=field(pm["nextPool"], 0) if "nextPool" in pm else None,
            backup=backup,
        )


def _optional_struct(image: "Image", name: str):
    try:
        return image.struct_layout(name)
    except ElfError:
        return None
