"""Allocator profiles: the built-ins, user files, and every validation error."""

from __future__ import annotations

import pytest
from capture_fakes import FakeImage, thumb

from memhil.capture import load_profile, matching_profiles
from memhil.capture.profiles import parse_profile
from memhil.errors import CaptureError, ConfigError
from memhil.events import EventKind


def test_builtins_describe_the_apis():
    lite = load_profile("liteos")
    assert lite.nodes == "liteos"
    m = lite.functions["LOS_MemMalloc"]
    assert (m.kind, m.size, m.module, m.untracked) == (EventKind.ALLOC, (1,), 2, False)
    assert lite.functions["LOS_MemAlloc"].untracked
    assert lite.functions["LOS_MemMallocAlign"].boundary == 2 and lite.functions["LOS_MemMallocAlign"].module == 3
    assert lite.functions["LOS_MemMfree"].kind is EventKind.FREE and not lite.functions["LOS_MemMfree"].needs_return
    newlib = load_profile("newlib")
    assert newlib.functions["calloc"].size_of({"r0": 3, "r1": 10}) == 30
    assert newlib.functions["_malloc_r"].reent == 0 and newlib.functions["_malloc_r"].size == (1,)
    assert newlib.calls_closure("calloc") == {"_calloc_r", "_malloc_r"}
    free = load_profile("freertos")
    assert (free.allocators, free.freers) == (["pvPortMalloc", "pvPortCalloc"], ["vPortFree"])
    assert free.calls_closure("pvPortCalloc") == {"pvPortMalloc"}


def test_matching_profiles():
    img = FakeImage()
    img.add_func("pvPortMalloc", 0x08000000, thumb(0x4770))
    img.add_func("vPortFree", 0x08000010, thumb(0x4770))
    img.add_func("malloc", 0x08000020, thumb(0x4770))
    assert [p.name for p in matching_profiles(img)] == ["freertos"]  # newlib also needs free
    img.add_func("free", 0x08000030, thumb(0x4770))
    assert [p.name for p in matching_profiles(img)] == ["freertos", "newlib"]
    with pytest.raises(CaptureError) as err:
        load_profile("liteos").check(img)
    assert "no one of LOS_MemAlloc, LOS_MemAllocAlign, LOS_MemMalloc, LOS_MemMallocAlign" in str(err.value)
    assert "freertos, newlib" in str(err.value)


def test_a_profile_matches_by_what_the_elf_has():
    """An app that uses only the module API: the linker dropped LOS_MemAlloc and LOS_MemFree; the profile still
    matches, and hooks every LiteOS entry point the ELF has, no more."""
    img = FakeImage()
    img.add_func("LOS_MemMalloc", 0x08000000, thumb(0x4770))
    img.add_func("LOS_MemMfree", 0x08000010, thumb(0x4770))
    img.add_func("LOS_MemMrealloc", 0x08000020, thumb(0x4770))
    lite = load_profile("liteos")
    lite.check(img)
    assert [f.name for f in lite.present(img)] == ["LOS_MemMalloc", "LOS_MemMrealloc", "LOS_MemMfree"]
    assert "liteos" in [p.name for p in matching_profiles(img)]
    only_alloc = FakeImage()
    only_alloc.add_func("LOS_MemMalloc", 0x08000000, thumb(0x4770))
    with pytest.raises(CaptureError, match="no one of LOS_MemFree, LOS_MemMfree"):
        lite.check(only_alloc)
    no_free_kind = parse_profile({"name": "x", "functions": {"get": {"kind": "alloc", "size": "r0"}}})
    assert no_free_kind.missing_symbols(only_alloc)  # a profile without a free function never matches


def test_unknown_name_suggests():
    with pytest.raises(ConfigError, match="did you mean liteos"):
        load_profile("litos")


def test_user_file_and_syntax_errors(tmp_path):
    good = tmp_path / "pool.toml"
    good.write_text('name = "pool"\n[functions.pool_get]\nkind = "alloc"\nsize = "r1"\nmodule = "r2"\n[functions.pool_put]\nkind = "free"\nptr = "r0"\n')
    prof = load_profile(good)
    assert prof.functions["pool_get"].module == 2 and prof.source == str(good)
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_profile(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_profile(tmp_path / "gone.toml")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"functions": {"f": {"kind": "alloc", "size": "r0"}}}, "'name'"),
        ({"name": "x", "colour": 1, "functions": {}}, "unknown key"),
        ({"name": "x", "functions": {}}, "at least one function"),
        ({"name": "x", "nodes": "tlsf", "functions": {"f": {"kind": "alloc", "size": "r0"}}}, "'nodes'"),
        ({"name": "x", "functions": {"f": {"kind": "grab", "size": "r0"}}}, "kind must be"),
        ({"name": "x", "functions": {"f": {"kind": "alloc", "size": "r4"}}}, "not an argument register"),
        ({"name": "x", "functions": {"f": {"kind": "alloc"}}}, "needs 'size'"),
        ({"name": "x", "functions": {"f": {"kind": "free"}}}, "needs 'ptr'"),
        ({"name": "x", "functions": {"f": {"kind": "aligned_alloc", "size": "r0"}}}, "needs 'boundary'"),
        ({"name": "x", "functions": {"f": {"kind": "alloc", "size": "r0", "calls": ["g"]}}}, "does not define"),
        ({"name": "x", "functions": {"f": {"kind": "alloc", "size": "r0", "stack": 1}}}, "unknown key"),
        ({"name": "x", "functions": {"f": {"kind": "alloc", "size": "r0", "optional": "yes"}}}, "true or false"),
        ({"name": "x", "functions": {"f": {"kind": "alloc", "size": "r0", "returns": "int"}}}, "returns"),
    ],
)
def test_validation_errors(data, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_profile(data, source="t.toml")
    assert "t.toml" in str(err.value) and "Hint:" in str(err.value)


def test_success_status_of_a_free():
    liteos = load_profile("liteos")
    assert liteos.functions["LOS_MemFree"].success == 0 and liteos.functions["LOS_MemMfree"].success == 0
    assert load_profile("newlib").functions["free"].success is None  # void: nothing to read
    ok = parse_profile({"name": "x", "functions": {"f": {"kind": "free", "ptr": "r0", "success": 1}}}, source="t.toml")
    assert ok.functions["f"].success == 1
    # a negative status as the register holds it, the same for the breakpoint and the patched paths
    neg = parse_profile({"name": "x", "functions": {"f": {"kind": "free", "ptr": "r0", "success": -1}}}, source="t.toml")
    assert neg.functions["f"].success == 0xFFFFFFFF
    for bad in ("yes", True):
        with pytest.raises(ConfigError, match="success must be an integer"):
            parse_profile({"name": "x", "functions": {"f": {"kind": "free", "ptr": "r0", "success": bad}}}, source="t.toml")
    with pytest.raises(ConfigError, match="success must be an integer, for a function that returns a status"):
        parse_profile({"name": "x", "functions": {"f": {"kind": "alloc", "size": "r0", "success": 0}}}, source="t.toml")
