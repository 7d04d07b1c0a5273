"""The memory timeline (the memory-log profiler's LOG mode): rotating binary logs, a parallel reader, exports."""

from memhil.timeline.reader import Gap, ReaderStats, TimelineReader
from memhil.timeline.writer import TimelineWriteError, TimelineWriter

__all__ = ["Gap", "ReaderStats", "TimelineReader", "TimelineWriteError", "TimelineWriter"]
