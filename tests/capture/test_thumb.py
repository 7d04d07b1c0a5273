"""Return-instruction scanning on real Thumb code compiled by arm-none-eabi-gcc, checked against objdump."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from capture_fakes import FakeEngine, bw, thumb

from memhil.capture import HookCapture, load_profile
from memhil.capture.thumb import scan_exits
from memhil.elf import Image

SOURCE = r"""
extern void *inner(unsigned n);
extern void sink(void *p, int a, int b, int c, int d);
void *f_pop(unsigned n) { void *p = inner(n); sink(p, 1, 2, 3, 4); return p; }
int f_leaf(int a) { return a * 3 + 1; }
void *f_tail(unsigned n) { return inner(n + 4); }
int f_wide(int a, int b, int c, int d) {
  int x = a * b, y = c * d, z = a + d, w = b - c, v = a ^ c, u = b | d, t = a - d, s = c + b, r = x - y;
  sink(0, x, y, z, w);
  sink(0, v, u, t, s);
  return x + y + z + w + v + u + t + s + r;
}
void *f_cond(unsigned n) { if (!n) return 0; void *p = inner(n); sink(p, 0, 0, 0, 0); return p; }
"""
SUPPORT = r"""
void *inner(unsigned n) { return (void *)(n * 8); }
void sink(void *p, int a, int b, int c, int d) { (void)p; (void)a; (void)b; (void)c; (void)d; }
void _start(void) { for (;;); }
"""
FUNCS = ("f_pop", "f_leaf", "f_tail", "f_wide", "f_cond")


@pytest.fixture(scope="module")
def elf(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("thumb")
    (d / "t.c").write_text(SOURCE)
    (d / "u.c").write_text(SUPPORT)
    gcc = ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O2", "-g"]
    subprocess.run([*gcc, "-c", str(d / "t.c"), "-o", str(d / "t.o")], check=True, capture_output=True)
    out = d / "t.elf"
    subprocess.run([*gcc, "-nostdlib", "-Wl,-Ttext=0x08000000", "-e", "_start", str(d / "t.o"), str(d / "u.c"), "-o", str(out)], check=True, capture_output=True)
    return out


def objdump_returns(elf: Path) -> dict[int, int]:
    """Return instructions per objdump: address -> bytes popped (registers in the list times 4)."""
    text = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], check=True, capture_output=True, text=True).stdout
    found = {}
    for m in re.finditer(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{4} ?){1,2}\s+(pop(?:\.w)?|ldmia\.w\s+sp!,|bx)\s+(.*)$", text, re.M):
        addr, op, args = int(m.group(1), 16), m.group(2), m.group(3)
        if op == "bx" and args.strip() == "lr":
            found[addr] = 0
        elif op != "bx" and "pc" in args:
            found[addr] = 4 * len(args.strip("{} ").split(","))
    return found


def test_scan_matches_objdump(elf):
    image = Image.open(elf)
    mine = {}
    for name in FUNCS:
        sym = image.symbol(name)
        for site in scan_exits(image.read(sym.address, sym.size), sym.address).returns:
            mine[site.address] = site.sp_adjust
    reference = {a: n for a, n in objdump_returns(elf).items() if any(image.symbol(f).contains(a) for f in FUNCS)}
    assert len(reference) == 5  # f_pop, f_leaf, f_wide, and f_cond's two
    assert mine == reference


def test_tail_call_found(elf):
    image = Image.open(elf)
    tail = image.symbol("f_tail")
    scan = scan_exits(image.read(tail.address, tail.size), tail.address)
    assert scan.returns == [] and scan.tail_calls == [image.symbol("inner").address]
    assert not scan.closed
    wide = image.symbol("f_wide")
    assert scan_exits(image.read(wide.address, wide.size), wide.address).closed


def test_conditional_and_indirect_exits_are_not_trusted():
    # cmp r0, #0; it eq; popeq {r4, pc}; bx r3; pop {r4, pc}
    code = thumb(0x2800, 0xBF08, 0xBD10, 0x4718, 0xBD10)
    scan = scan_exits(code, 0x08000100)
    assert scan.unknown_exits == [0x08000104, 0x08000106]
    assert [s.address for s in scan.returns] == [0x08000108]
    # ldr.w pc, [sp], #4 is a one-register pop; branches inside the function are not tail calls
    code = thumb(0xB500, 0xE7FE, *bw(0x08000204, 0x08000200), 0xF85D, 0xFB04)
    scan = scan_exits(code, 0x08000200)
    assert scan.tail_calls == [] and [(s.address, s.sp_adjust) for s in scan.returns] == [(0x08000208, 4)]


def test_user_profile_on_a_real_elf(elf, tmp_path):
    prof = tmp_path / "mine.toml"
    prof.write_text(
        'name = "mine"\n'
        '[functions.f_pop]\nkind = "alloc"\nsize = "r0"\n'
        '[functions.f_tail]\nkind = "alloc"\nsize = "r0"\n'
        '[functions.f_leaf]\nkind = "free"\nptr = "r0"\n'
    )
    image = Image.open(elf)
    eng = FakeEngine()
    cap = HookCapture(eng, image, load_profile(prof), unwind_depth=1)
    plans = cap.plan()
    assert plans["f_pop"].reliable and not plans["f_tail"].reliable
    cap.attach()
    pop_rets = {a for a in objdump_returns(elf) if image.symbol("f_pop").contains(a)}
    assert len(pop_rets) == 1
    assert set(eng.bps) == {image.symbol(f).address for f in ("f_pop", "f_tail", "f_leaf")} | pop_rets
    cap.detach()
    assert not eng.bps
