"""The memory timeline (issue 7; seed 004's LOG mode): rotating binary logs, a parallel reader, exports."""

from memhil.timeline.reader import Gap, ReaderStats, TimelineReader
from memhil.timeline.writer import TimelineWriteError, TimelineWriter

__all__ = ["Gap", "ReaderStats", "TimelineReader", "TimelineWriteError", "TimelineWriter"]
