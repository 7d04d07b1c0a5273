"""memhil: hardware-in-the-loop testing of firmware memory behaviour.

Firmware built with a LiteOS-style bestfit allocator runs in an emulator (QEMU by
default, Renode where installed); memhil hooks the allocator through the emulator,
keeps a ledger of live blocks per module and task, walks the heap, finds leaks by
call stack and keeps a timeline of long runs.
"""

from memhil.errors import MemhilError

__version__ = "0.1.0"
__all__ = ["MemhilError", "__version__"]
