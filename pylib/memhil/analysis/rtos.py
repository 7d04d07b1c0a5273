"""Task stacks from the RTOS's own task records, read through DWARF, and the RTOS's list links.

**FreeRTOS** (tasks.c, list.h): every task's ``TCB_t`` is on one of the kernel's state lists
(``pxReadyTasksLists[]``, ``xDelayedTaskList1/2``, ``xPendingReadyList``, ``xSuspendedTaskList``,
``xTasksWaitingTermination``) or is ``pxCurrentTCB``. A list is ``List_t {uxNumberOfItems, pxIndex, xListEnd}``
and each ``ListItem_t {xItemValue, pxNext, pxPrevious, pvOwner, pxContainer}`` names its owner. A task's stack
is ``pxStack`` (lowest address) up to its top (``pxEndOfStack`` when the build records it, else the end of the
heap block or ELF object holding ``pxStack``); a task that is not running saved its context at ``pxTopOfStack``,
so its live stack is ``[pxTopOfStack, top)``. Tasks awaiting termination have no live stack.

**LiteOS** (los_task_pri.h): ``g_taskCBArray[g_taskMaxNum]`` of ``LosTaskCB {stackPointer, taskStatus, ...,
stackSize, topOfStack, taskName}`` (a pointer to the array with LOSCFG_BASE_CORE_TASK_DYN_MEM, else the array);
``topOfStack`` is the lowest address of the stack, ``stackSize`` its size, ``stackPointer`` the saved SP; status
``OS_TASK_STATUS_UNUSED`` (0x0001) marks a free entry; the running task is ``g_losTask.runTask`` (else the entry
with ``OS_TASK_STATUS_RUNNING``, 0x0010).

FreeRTOS links its objects (tasks, timers, queues' waiting lists) by list items embedded in them, so the kernel's
pointers land *inside* the blocks. memcheck would call such blocks "possibly lost"; like memcheck's own
``--leak-check-heuristics``, :class:`ListHeuristic` accepts an interior pointer as a start pointer when it lands on
an embedded ``ListItem_t`` whose ``pvOwner`` is that block, or on an embedded ``List_t`` (its end marker holds the
maximum item value and its index links back to it). Such blocks are "still reachable" (via heuristic "rtos-list").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from memhil.errors import ElfError
from memhil.heap.model import LiveBlock

if TYPE_CHECKING:
    from memhil.elf import Image

ReadMemory = Callable[[int, int], bytes]
ReadWord = Callable[[int], "int | None"]

FREERTOS_STATE_LISTS = ("pxReadyTasksLists", "xDelayedTaskList1", "xDelayedTaskList2", "xPendingReadyList", "xSuspendedTaskList")
FREERTOS_TERMINATING = "xTasksWaitingTermination"
#: list walks stop here (a corrupted list must not loop forever)
MAX_LIST_ITEMS = 1024
LITEOS_UNUSED = 0x0001
LITEOS_RUNNING = 0x0010
MAX_TASKS = 1024


@dataclass(frozen=True)
class TaskStack:
    """One task's stack as its record says: storage ``[base, top)``, saved SP, running or not."""

    name: str
    base: int
    top: int
    saved_sp: int
    running: bool
    source: str  # "freertos" | "liteos"
    record: int = 0  # address of the TCB


@dataclass
class TaskScan:
    stacks: list[TaskStack] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    heuristic: "ListHeuristic | None" = None
    rtos: str | None = None


def find_tasks(image: Image, read_memory: ReadMemory, blocks: list[LiveBlock]) -> TaskScan:
    """The task stacks of whichever RTOS the ELF has (FreeRTOS or LiteOS), or none for bare-metal firmware."""
    if image.find_symbol("pxCurrentTCB") is not None:
        return _freertos(image, read_memory, blocks)
    if image.find_symbol("g_taskCBArray") is not None:
        return _liteos(image, read_memory, blocks)
    return TaskScan()


def _u32(raw: bytes, off: int, size: int = 4) -> int:
    return int.from_bytes(raw[off : off + size], "little")


def block_holding(blocks: list[LiveBlock], address: int) -> LiveBlock | None:
    """The live block whose requested bytes hold ``address`` (a zero-size block holds its own start)."""
    return next((b for b in blocks if b.ptr <= address < b.ptr + max(b.size, 1)), None)


def _stack_top(image: Image, blocks: list[LiveBlock], base: int) -> int | None:
    """End of the heap block or ELF object that holds a stack starting at ``base``."""
    holder = block_holding(blocks, base)
    if holder is not None:
        return holder.ptr + holder.size
    sym = image.symbol_at(base)
    if sym is not None and sym.kind == "object" and sym.size:
        return sym.end
    return None


def _c_string(read_memory: ReadMemory, address: int, size: int) -> str:
    try:
        raw = bytes(read_memory(address, size))
    except Exception:  # noqa: BLE001 - a name is a nicety
        return ""
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def _layout(image: Image, *names: str):
    for name in names:
        try:
            return image.struct_layout(name)
        except ElfError:
            continue
    raise ElfError(
        f"the ELF has the RTOS's variables but no DWARF type {names[0]} (or {', '.join(names[1:])})",
        hint="use the ELF built with -g (debug info), not a stripped copy",
    )


# -- FreeRTOS ------------------------------------------------------------------------------------------------
def _freertos(image: Image, read_memory: ReadMemory, blocks: list[LiveBlock]) -> TaskScan:
    scan = TaskScan(rtos="freertos")
    tcb_t = _layout(image, "TCB_t", "tskTCB", "tskTaskControlBlock")
    list_t = _layout(image, "List_t", "xLIST")
    item_t = _layout(image, "ListItem_t", "xLIST_ITEM")
    heur = ListHeuristic(
        item_owner=item_t.member("pvOwner").offset,
        item_container=item_t.member("pxContainer").offset,
        list_index=list_t.member("pxIndex").offset,
        list_end=list_t.member("xListEnd").offset,
        end_value_size=list_t.member("xListEnd.xItemValue").size,
        list_size=list_t.size,
    )
    scan.heuristic = heur
    next_off = item_t.member("pxNext").offset
    end_next = list_t.member("xListEnd.pxNext").offset

    def walk_list(addr: int) -> list[int]:
        owners = []
        raw = bytes(read_memory(addr, list_t.size))
        end = addr + heur.list_end
        item = _u32(raw, end_next)
        for _ in range(MAX_LIST_ITEMS):
            if item == end or item == 0:
                return owners
            it = bytes(read_memory(item, item_t.size))
            owners.append(_u32(it, heur.item_owner))
            item = _u32(it, next_off)
        scan.notes.append(f"FreeRTOS list at {addr:#010x} has more than {MAX_LIST_ITEMS} items or loops: stopped there")
        return owners

    tcbs: dict[int, bool] = {}  # TCB -> terminating
    for name in FREERTOS_STATE_LISTS + (FREERTOS_TERMINATING,):
        sym = image.find_symbol(name)
        if sym is None:
            continue
        count = max(1, sym.size // list_t.size) if sym.size else 1
        for i in range(count):
            for owner in walk_list(sym.address + i * list_t.size):
                if owner:
                    tcbs[owner] = name == FREERTOS_TERMINATING or tcbs.get(owner, False)
    current = _u32(bytes(read_memory(image.symbol("pxCurrentTCB").address, 4)), 0)
    if current and current not in tcbs:
        tcbs[current] = False
    top_m, stack_m = tcb_t.member("pxTopOfStack"), tcb_t.member("pxStack")
    end_m = tcb_t.members.get("pxEndOfStack")
    name_m = tcb_t.members.get("pcTaskName")
    for tcb, terminating in tcbs.items():
        raw = bytes(read_memory(tcb, tcb_t.size))
        saved, base = _u32(raw, top_m.offset), _u32(raw, stack_m.offset)
        name = _c_string(read_memory, tcb + name_m.offset, name_m.size) if name_m is not None else ""
        name = name or f"tcb@{tcb:#x}"
        top = _stack_top(image, blocks, base)
        if top is None and end_m is not None:
            top = _u32(raw, end_m.offset) + 4
        if top is None or top <= base:
            scan.notes.append(f"FreeRTOS task {name}: the top of its stack (pxStack {base:#010x}) is not known: stack not scanned")
            continue
        if terminating:
            saved = top  # deleted: nothing on its stack is live
        scan.stacks.append(TaskStack(name, base, top, saved, tcb == current, "freertos", tcb))
    return scan


@dataclass(frozen=True)
class ListHeuristic:
    """Accepts an interior pointer into a block when it lands on a FreeRTOS list structure embedded in it."""

    item_owner: int
    item_container: int
    list_index: int
    list_end: int
    end_value_size: int
    list_size: int
    name: str = "rtos-list"

    def __call__(self, block: LiveBlock, value: int, read_word: ReadWord) -> str | None:
        owner = read_word(value + self.item_owner)
        if owner == block.ptr and read_word(value + self.item_container):
            return self.name  # an embedded ListItem_t naming this block as its owner
        for list_addr in (value, value - self.list_end):
            if list_addr < block.ptr:
                continue
            if self._is_list(list_addr, read_word):
                return self.name
        return None

    def _is_list(self, addr: int, read_word: ReadWord) -> bool:
        end = addr + self.list_end
        marker = read_word(end)
        if marker is None or marker & ((1 << (8 * self.end_value_size)) - 1) != (1 << (8 * self.end_value_size)) - 1:
            return False
        index = read_word(addr + self.list_index)
        if index == end:
            return True
        return index is not None and read_word(index + self.item_container) == addr


# -- LiteOS --------------------------------------------------------------------------------------------------
def _liteos(image: Image, read_memory: ReadMemory, blocks: list[LiveBlock]) -> TaskScan:
    scan = TaskScan(rtos="liteos")
    cb = _layout(image, "LosTaskCB")
    sym = image.symbol("g_taskCBArray")
    array = sym.address if sym.size > 4 else _u32(bytes(read_memory(sym.address, 4)), 0)
    count_sym = image.find_symbol("g_taskMaxNum")
    if not array or count_sym is None:
        scan.notes.append("LiteOS: g_taskCBArray is NULL or g_taskMaxNum is missing (tasks not initialised): no task stack scanned")
        return scan
    count = _u32(bytes(read_memory(count_sym.address, 4)), 0)
    if not 0 < count <= MAX_TASKS:
        scan.notes.append(f"LiteOS: g_taskMaxNum is {count}: no task stack scanned")
        return scan
    run_sym = image.find_symbol("g_losTask")
    run_task = _u32(bytes(read_memory(run_sym.address, 4)), 0) if run_sym is not None else None
    sp_m, status_m = cb.member("stackPointer"), cb.member("taskStatus")
    size_m, low_m = cb.member("stackSize"), cb.member("topOfStack")
    name_m = cb.members.get("taskName")
    raw_all = bytes(read_memory(array, cb.size * count))
    for i in range(count):
        raw = raw_all[i * cb.size : (i + 1) * cb.size]
        status = _u32(raw, status_m.offset, status_m.size)
        if status & LITEOS_UNUSED:
            continue
        base, size, saved = _u32(raw, low_m.offset), _u32(raw, size_m.offset), _u32(raw, sp_m.offset)
        name = ""
        if name_m is not None:
            ptr = _u32(raw, name_m.offset)
            name = _c_string(read_memory, ptr, 16) if ptr else ""
        name = name or f"task {i}"
        if not base or not size:
            scan.notes.append(f"LiteOS task {name}: no stack recorded (topOfStack {base:#010x}, stackSize {size})")
            continue
        record = array + i * cb.size
        running = record == run_task if run_task else bool(status & LITEOS_RUNNING)
        scan.stacks.append(TaskStack(name, base, base + size, saved, running, "liteos", record))
    return scan
