"""Keywords about the target memory map: stack high-water marks and the map itself."""

from __future__ import annotations

from assertionengine import AssertionOperator, int_str_verify_assertion
from robotlibcore import keyword

from memhil.errors import AssertionFailure
from memhil.robot.base import LibraryContext, to_bytes


class TargetMapKeywords:
    def __init__(self, ctx: LibraryContext) -> None:
        self.ctx = ctx

    @keyword
    def get_stack_high_water(self, stack: str = "main", assertion_operator: AssertionOperator | None = None,
                             assertion_expected: str | None = None) -> int:
        """Returns the deepest use of ``stack`` in bytes (measured from the paint pattern), optionally asserting it.

        Fails when the stack is unknown or not painted (its use cannot be measured, it is never taken as 0).

        | Get Stack High Water    main    <    2 KiB
        | ${used} =    Get Stack High Water    main
        """
        from memhil.targetmap import stack_usage

        session = self.ctx.current()
        stacks = {s.name: s for s in stack_usage(session.image, session.engine.read_memory)}
        if stack not in stacks:
            raise AssertionFailure(f"the firmware describes no stack named {stack!r}", hint=f"known stacks: {', '.join(stacks) or 'none'}")
        usage = stacks[stack]
        if usage.used is None:
            raise AssertionFailure(f"stack {stack} cannot be measured: {usage.note}", hint="paint the stacks at start-up and export g_memhil_stack_paint")
        if assertion_operator is None:
            return usage.used
        if assertion_operator in (AssertionOperator["validate"], AssertionOperator["then"]):
            return int_str_verify_assertion(usage.used, assertion_operator, assertion_expected, f"Stack {stack} high water")
        return int_str_verify_assertion(usage.used, assertion_operator, to_bytes(assertion_expected), f"Stack {stack} high water (of {usage.size} bytes)")

    @keyword
    def get_memory_map(self) -> str:
        """Returns the target's memory map (``/proc/PID/maps`` style), with the heap and stack bytes used now."""
        from memhil.targetmap import build_map, format_maps

        session = self.ctx.current()
        return format_maps(build_map(session.image, session.platform, session.engine.read_memory))
