import pytest

from memhil.analysis.reachability import LeakKind
from memhil.analysis.suppress import Suppressions
from memhil.elf.lines import Frame
from memhil.errors import ConfigError

STACK = [
    Frame(0x1, "LOS_MemAlloc", "kernel/mem/los_memory.c", 300),
    Frame(0x2, "shell_history_add", "/src/fw/shell/history.c", 77),
    Frame(0x3, "shell_task", "/src/fw/shell/shell.c", 12),
]

TEXT = """
# known allocations
{
   history
   memhil:Leak
   fun:LOS_Mem*
   ...
   src:shell/*.c:12
}
{
   only-possible
   Memcheck:Leak
   match-leak-kinds: possible
   ...
   fun:shell_task
}
"""


def test_parse_and_match_with_wildcards():
    supp = Suppressions.parse(TEXT, "ci/known.supp")
    assert [s.name for s in supp.items] == ["history", "only-possible"]
    assert supp.match(STACK) == "history"
    assert supp.used["history"] == 1
    assert supp.match(STACK[1:], LeakKind.UNFREED) is None  # first matcher must match the innermost frame
    assert supp.match(STACK[1:], LeakKind.POSSIBLE) == "only-possible"
    assert supp.match(STACK[1:], LeakKind.DEFINITE) is None


def test_src_matches_basename_and_line():
    supp = Suppressions.parse("{\n n\n src:history.c:77\n}\n")
    assert supp.match(STACK[1:]) == "n"
    supp = Suppressions.parse("{\n n\n src:history.c:78\n}\n")
    assert supp.match(STACK[1:]) is None


def test_load_from_file(tmp_path):
    path = tmp_path / "a.supp"
    path.write_text(TEXT)
    assert len(Suppressions.load(path)) == 2
    with pytest.raises(ConfigError, match="cannot read"):
        Suppressions.load(tmp_path / "missing.supp")


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("fun:x\n", 1, "expected '{'"),
        ("{\n name\n fun:a\n", 1, "not closed"),
        ("{\n name\n}\n", 1, "no frame lines"),
        ("{\n}\n", 2, "empty suppression"),
        ("{\n fun:a\n}\n", 2, "must be the suppression's name"),
        ("# c\n{\n n\n bogus line\n}\n", 4, "unrecognised line"),
        ("{\n n\n obj:/lib/x.so\n}\n", 3, "obj: frames are not supported"),
        ("{\n n\n src:a.c:\n}\n", 3, "no line number"),
        ("{\n n\n src:a.c:xx\n}\n", 3, "is not a number"),
        ("{\n n\n Memcheck:Cond\n fun:a\n}\n", 3, "not supported"),
        ("{\n n\n match-leak-kinds: definite,bogus\n fun:a\n}\n", 3, "unknown leak kind"),
        ("{\n n\n fun:a\n}\n{\n n\n fun:b\n}\n", 5, "already used"),
        ("{\n n\n {\n", 3, "inside the suppression"),
        ("{\n n\n fun:\n}\n", 3, "fun: needs"),
    ],
)
def test_parse_errors_name_file_and_line(text, line, what):
    with pytest.raises(ConfigError, match=what) as info:
        Suppressions.parse(text, "x.supp")
    assert info.value.line == line and info.value.file == "x.supp"
    assert f"x.supp:{line}:" in str(info.value) and "Hint:" in str(info.value)
