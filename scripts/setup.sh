#!/usr/bin/env bash
# Idempotent setup for a fresh Debian (bookworm) machine, run as root or with sudo.
# Installs the emulator and the ARM toolchain from Debian when missing, then creates
# .venv and installs memhil with its test extras. Downloads nothing but packages.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v qemu-system-arm   >/dev/null || need+=(qemu-system-arm)
command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/newlib/libc.a ] || need+=(libnewlib-arm-none-eabi)
[ -e /usr/lib/picolibc/arm-none-eabi/picolibc.specs ] || need+=(picolibc-arm-none-eabi)  # tests/foreign: picolibc's malloc
command -v valgrind          >/dev/null || need+=(valgrind)          # memcheck, ms_print, <valgrind/memcheck.h>
command -v gdb-multiarch     >/dev/null || need+=(gdb-multiarch)     # the reference the unwinder is tested against
command -v pgrep             >/dev/null || need+=(procps)
command -v chromium          >/dev/null || need+=(chromium)          # headless: the HTML report tests open and screenshot it
command -v gcc               >/dev/null || need+=(gcc)
command -v make              >/dev/null || need+=(make)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)

if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${need[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

stamp=.venv/.memhil-installed
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing memhil and its test extras into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    touch "$stamp"
fi
echo "setup: ready (qemu: $(qemu-system-arm --version | head -1); gcc: $(arm-none-eabi-gcc -dumpversion))"
