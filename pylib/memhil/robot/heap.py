"""Keywords about module statistics, snapshots and heap integrity."""

from __future__ import annotations

from assertionengine import AssertionOperator, int_str_verify_assertion
from robotlibcore import keyword

from memhil.errors import AssertionFailure
from memhil.robot.base import LibraryContext, to_bytes


class HeapKeywords:
    def __init__(self, ctx: LibraryContext) -> None:
        self.ctx = ctx

    def _verify(self, value: int, op: AssertionOperator | None, expected, message: str) -> int:
        if op is None:
            return value
        if op in (AssertionOperator["validate"], AssertionOperator["then"]):
            return int_str_verify_assertion(value, op, expected, message)
        return int_str_verify_assertion(value, op, to_bytes(expected), message)

    @keyword
    def get_module_used(self, module: str, assertion_operator: AssertionOperator | None = None,
                        assertion_expected: str | None = None, source: str = "auto") -> int:
        """Returns the bytes ``module`` uses now (whole nodes, as LiteOS counts them), optionally asserting them.

        ``module`` is a name (``NET``) or an id (``1``). ``source`` is ``ledger`` (the host's record of every
        call), ``walk`` (a walk of the target's heap), ``firmware`` (``g_moduleMemUsedSize``) or ``auto``.

        | Get Module Used    NET    <=    4 KiB
        | ${used} =    Get Module Used    1
        """
        session = self.ctx.current()
        value = session.module_used(module, source=source)
        name = session.options.modules.name(session.options.modules.id(module))
        return self._verify(value, assertion_operator, assertion_expected, f"Module {name} used bytes")

    @keyword
    def get_module_peak(self, module: str, assertion_operator: AssertionOperator | None = None,
                        assertion_expected: str | None = None) -> int:
        """Returns the highest bytes ``module`` used since the capture started, optionally asserting it."""
        session = self.ctx.current()
        value = session.module_peak(module)
        name = session.options.modules.name(session.options.modules.id(module))
        return self._verify(value, assertion_operator, assertion_expected, f"Module {name} peak bytes")

    @keyword
    def get_firmware_module_used(self, module: str, assertion_operator: AssertionOperator | None = None,
                                 assertion_expected: str | None = None) -> int:
        """Returns the firmware's own figure for ``module`` (``LOS_MemMusedGet``), optionally asserting it."""
        value = self.ctx.current().firmware_module_used(module)
        return self._verify(value, assertion_operator, assertion_expected, f"Firmware module {module} used bytes")

    @keyword
    def module_usage_should_match_firmware(self, *modules: str) -> None:
        """Fails if the host's figure for any of ``modules`` (all known modules when none given) differs from the
        firmware's by more than the blocks taken with plain ``LOS_MemAlloc``, which module statistics do not count
        (LiteOS charges module statistics only in ``LOS_MemMalloc``). The failure lists each difference and the blocks involved.
        """
        check = self.ctx.current().crosscheck(*modules)
        unexplained = [m for m in check.modules if not m.explained]
        if unexplained:
            raise AssertionFailure("module statistics differ: " + "; ".join(m.describe() for m in unexplained),
                                   hint="see the heap report attached to the test")

    @keyword
    def take_heap_snapshot(self, name: str, source: str = "auto") -> int:
        """Records the live blocks now under ``name``; returns their total bytes."""
        return self.ctx.current().take_snapshot(name, source=source).total

    @keyword
    def heap_should_be_intact(self) -> None:
        """Walks the target's heap and fails with the first broken node if it is corrupted."""
        walk = self.ctx.current().walk_heap()
        if walk.errors:
            raise AssertionFailure(f"heap is corrupted: {walk.errors[0]}", hint="see the heap report attached to the test", errors=len(walk.errors))

    @keyword
    def get_memused_listing(self) -> str:
        """Returns the host's ``memused`` listing of the target heap (same format as the firmware shell's)."""
        return self.ctx.current().walk_heap().memused_text()

    @keyword
    def get_snapshot_site_report(self, snapshot: str):
        """Returns live memory by allocation site at a named snapshot as a report object (``total_size``, ``rows``;
        ``as_dict()``), comparable with what `Get Memory Report At` returns from the timeline."""
        from memhil.report.memreport import site_report

        session = self.ctx.current()
        snap = session.snapshot(snapshot)
        return site_report(snap.blocks.values(), session.symbolizer, t_us=snap.t_us)

    @keyword
    def get_heap_report(self, snapshot: str | None = None) -> str:
        """Returns live memory by allocation site (``file line:N size:N``), now or at a named snapshot."""
        from memhil.report.memreport import format_mem_report, site_report

        session = self.ctx.current()
        snap = session.snapshot(snapshot) if snapshot else session.take_snapshot("__report__")
        return format_mem_report(site_report(snap.blocks.values(), session.symbolizer, t_us=snap.t_us))
