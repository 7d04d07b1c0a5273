#!/usr/bin/env bash
# A second qemu-system-arm beside Debian's, for tests: Debian's bookworm-backports build (10.0.x), fetched with
# `apt-get download` through a private apt state and unpacked with `dpkg-deb -x` into a cache folder. Nothing on
# the system changes: no sources line, no package list, no installed package.
#
#   scripts/fetch-qemu.sh [DEST]     default DEST: .cache/qemu-backports
#
# Prints the path of DEST/bin/qemu-system-arm, a wrapper that runs the unpacked binary with its own library and
# module folders. Run it again and it does nothing (the stamp names the version unpacked). Environment:
#   MEMHIL_QEMU_SUITE   the Debian suite to take it from (default bookworm-backports)
#   MEMHIL_QEMU_MIRROR  the Debian mirror (default: the one this machine's apt sources use)
set -euo pipefail
cd "$(dirname "$0")/.."

dest=$(realpath -m "${1:-.cache/qemu-backports}")
suite=${MEMHIL_QEMU_SUITE:-bookworm-backports}
if [ -z "${MEMHIL_QEMU_MIRROR:-}" ]; then
    # the first http(s) URI of the system's Debian sources (deb822 or one-line format)
    MEMHIL_QEMU_MIRROR=$(grep -hoE '(URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]*/debian/?([[:space:]]|$)' \
        /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -oE 'https?://[^[:space:]]*' | head -1 || true)
    MEMHIL_QEMU_MIRROR=${MEMHIL_QEMU_MIRROR:-http://deb.debian.org/debian}
fi
stamp="$dest/.installed-$suite"
if [ -x "$dest/bin/qemu-system-arm" ] && [ -f "$stamp" ]; then
    echo "$dest/bin/qemu-system-arm"
    exit 0
fi

for tool in apt-get dpkg-deb dpkg-query ldd; do
    command -v "$tool" >/dev/null || { echo "fetch-qemu: '$tool' is missing: this script needs a Debian system" >&2; exit 2; }
done

state="$dest/apt"
rm -rf "$state" "$dest/root" "$dest/debs"
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$dest/debs" "$dest/root" "$dest/bin" "$dest/modules"
# the suite holds only what changed since the release: the release itself supplies the dependencies
base=${suite%%-*}
printf 'deb %s %s main\ndeb %s %s main\n' "$MEMHIL_QEMU_MIRROR" "$suite" "$MEMHIL_QEMU_MIRROR" "$base" > "$state/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o APT::Get::List-Cleanup=0
          -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
echo "fetch-qemu: reading the package lists of $suite from $MEMHIL_QEMU_MIRROR" >&2
apt-get -qq "${apt_opts[@]}" update >&2

version=$(apt-cache "${apt_opts[@]}" madison qemu-system-arm | awk -v s="$suite" '$0 ~ s {print $3; exit}')
if [ -z "$version" ]; then
    echo "fetch-qemu: $suite has no qemu-system-arm" >&2
    exit 1
fi

# qemu-system-arm itself, and each library it depends on that this system lacks or has in too old a version
# (qemu-system-common and -data hold helpers, firmware and keymaps that a -nographic Cortex-M board never opens)
pkgs=("qemu-system-arm=$version")
deps=$(apt-cache "${apt_opts[@]}" show "qemu-system-arm=$version" | sed -n 's/^Depends: //p' | tr ',' '\n')
while read -r dep; do
    [ -n "$dep" ] || continue
    name=${dep%% *}; name=${name%%:*}
    case "$name" in qemu-*) continue ;; esac
    req=$(sed -nE 's/.*\(([<>=]+) ([^)]*)\).*/\1 \2/p' <<<"$dep")
    have=$(dpkg-query -W -f='${Status} ${Version}\n' "$name" 2>/dev/null | awk '/install ok installed/ {print $4}')
    if [ -n "$have" ]; then
        [ -z "$req" ] && continue
        op=${req%% *}; want=${req#* }
        case "$op" in '>=') op=ge ;; '>>') op=gt ;; '=') op=eq ;; '<=') op=le ;; '<<') op=lt ;; esac
        dpkg --compare-versions "$have" "$op" "$want" && continue
    fi
    pkgs+=("$name")
done <<<"$deps"

echo "fetch-qemu: downloading ${pkgs[*]}" >&2
(cd "$dest/debs" && apt-get -qq "${apt_opts[@]}" download "${pkgs[@]}" >&2)
for deb in "$dest"/debs/*.deb; do
    dpkg-deb -x "$deb" "$dest/root"
done

libdirs=$(find "$dest/root" -name '*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd: -)
missing=$(LD_LIBRARY_PATH="$libdirs" ldd "$dest/root/usr/bin/qemu-system-arm" | awk '/not found/ {print $1}')
if [ -n "$missing" ]; then
    echo "fetch-qemu: the unpacked qemu-system-arm still lacks: $missing" >&2
    exit 1
fi

# QEMU_MODULE_DIR: an empty folder, so this QEMU never loads the system QEMU's modules (built for another version)
cat > "$dest/bin/qemu-system-arm" <<EOF
#!/bin/sh
# qemu-system-arm $version from $suite, unpacked by scripts/fetch-qemu.sh
export QEMU_MODULE_DIR="$dest/modules"
${libdirs:+export LD_LIBRARY_PATH="$libdirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"}
exec "$dest/root/usr/bin/qemu-system-arm" "\$@"
EOF
chmod +x "$dest/bin/qemu-system-arm"
"$dest/bin/qemu-system-arm" --version | head -1 >&2
rm -rf "$state" "$dest/debs"
touch "$stamp"
echo "$dest/bin/qemu-system-arm"
