"""Robot Framework library ``memhil.robot``: ``Library    memhil.robot    engine=qemu``."""

from memhil.robot.library import MemhilLibrary

# Robot imports the module and looks for a class of the same name; expose the library as the module itself.
robot = MemhilLibrary
__all__ = ["MemhilLibrary"]
