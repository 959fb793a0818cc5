#!/usr/bin/env bash
# The release: one binary for any glibc Linux from 2.17 on (zig through maturin --zig, which is
# cargo-zigbuild), as a tarball and as a Python wheel (maturin, bindings = "bin"), each checked
# before it is kept. See docs/install.md.
#
#   scripts/release.sh                 x86_64
#   ARCH=aarch64 scripts/release.sh    aarch64 (Grace Hopper), where `rustup target add
#                                      aarch64-unknown-linux-gnu` has been run
#
# Makes, in dist/:
#   gantry-VERSION-ARCH-linux.tar.gz         gantry, README.md, LICENSE-*, completions/, man/gantry.1
#   gantry-VERSION-ARCH-linux.tar.gz.sha256  its SHA-256, as `sha256sum -c` reads it
#   gantry-VERSION-ARCH-linux.debug          the line tables split off the binary (its debuglink)
#   gantry-VERSION-py3-none-manylinux2014_ARCH.manylinux_2_17_ARCH.whl, and its .sha256
#
# The checks: the binary needs no glibc symbol newer than 2.17 and no shared library but glibc's
# (no libz); the completions parse and the man page renders; the wheel is manylinux2014 by
# `auditwheel show`, installs into a fresh venv, and `gantry --version` and `gantry doctor --json`
# run from there as the binary itself, with no Python launcher in between.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=${ARCH:-x86_64}
GLIBC=2.17
TRIPLE=$ARCH-unknown-linux-gnu
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
NAME=gantry-$VERSION-$ARCH-linux
VENV=$PWD/target/release-venv
STAGE=$PWD/target/dist
step() { echo "== $*"; }
fail() {
    echo "release: $*" >&2
    exit 1
}

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TRIPLE"; then
    fail "the Rust target $TRIPLE is not installed; run \`rustup target add $TRIPLE\` first"
fi
if [ ! -x "$VENV/bin/maturin" ] || ! "$VENV/bin/pip" freeze 2>/dev/null | grep -qx "cargo-zigbuild==0.24.0"; then
    step "release tools into target/release-venv (scripts/release-requirements.txt)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r scripts/release-requirements.txt
fi
export PATH=$VENV/bin:$PATH

rm -rf "$STAGE"
mkdir -p "$STAGE/$NAME/completions" "$STAGE/$NAME/man" dist
rm -f dist/"$NAME".* dist/gantry-"$VERSION"-*"$ARCH"*.whl*

# One compile for both: maturin's --zig is cargo-zigbuild (the same zig wrappers as
# `cargo zigbuild --release --target $TRIPLE.$GLIBC`), glibc 2.17 for manylinux2014. The
# compiled binary stays at target/$TRIPLE/release/gantry for the tarball.
step "maturin build --zig --target $TRIPLE --compatibility manylinux2014 (cargo-zigbuild, glibc $GLIBC)"
start=$(date +%s)
maturin build --release --zig --target "$TRIPLE" --compatibility manylinux2014 --out "$STAGE/wheel"
echo "built in $(($(date +%s) - start)) s"
BIN=target/$TRIPLE/release/gantry

step "the binary: glibc symbols and shared libraries"
floor=$(readelf -V -W "$BIN" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
echo "highest glibc symbol version: $floor"
[ "$(printf '%s\n%s\n' "$floor" "$GLIBC" | sort -V | tail -1)" = "$GLIBC" ] ||
    fail "$BIN needs glibc $floor, newer than $GLIBC"
needed=$(readelf -d -W "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "shared libraries: $needed"
for lib in $needed; do
    case $lib in
    libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | libutil.so.1 | ld-linux*.so.*) ;;
    *) fail "$BIN needs $lib, which is not glibc's: link it statically" ;;
    esac
done
if [ "$ARCH" = "$(uname -m)" ]; then
    ldd "$BIN" | grep -q libz && fail "ldd lists a libz for $BIN"
    RUN=$BIN
else
    # A foreign binary cannot run here: the CLI's definition is the same, so this box's build
    # writes the completions and the man page.
    cargo build --release
    RUN=target/release/gantry
fi

step "line tables split off into dist/$NAME.debug; the binary stripped"
objcopy --only-keep-debug --compress-debug-sections=zlib "$BIN" "dist/$NAME.debug"
objcopy --strip-all "$BIN" "$STAGE/$NAME/gantry.tmp"
(cd dist && objcopy --add-gnu-debuglink="$NAME.debug" "$STAGE/$NAME/gantry.tmp" "$STAGE/$NAME/gantry")
rm "$STAGE/$NAME/gantry.tmp"
chmod 755 "$STAGE/$NAME/gantry"

step "completions and the man page"
"$RUN" completions bash >"$STAGE/$NAME/completions/gantry.bash"
"$RUN" completions zsh >"$STAGE/$NAME/completions/_gantry"
"$RUN" completions fish >"$STAGE/$NAME/completions/gantry.fish"
"$RUN" man >"$STAGE/$NAME/man/gantry.1"
bash -n "$STAGE/$NAME/completions/gantry.bash" || fail "the bash completion does not parse"
if command -v man >/dev/null; then
    man -l "$STAGE/$NAME/man/gantry.1" 2>&1 | grep -q '^NAME' || fail "man -l does not render gantry.1"
fi
cp README.md LICENSE-MIT LICENSE-APACHE "$STAGE/$NAME/"

step "dist/$NAME.tar.gz"
tar -C "$STAGE" --owner=0 --group=0 -czf "dist/$NAME.tar.gz" "$NAME"
(cd dist && sha256sum "$NAME.tar.gz" >"$NAME.tar.gz.sha256" && sha256sum -c "$NAME.tar.gz.sha256")

step "the wheel: the same stripped binary, the man page and completions in its data"
# wheel pack rewrites RECORD with the new files' hashes.
wheel unpack -d "$STAGE/unpacked" "$STAGE"/wheel/gantry-"$VERSION"-*.whl
data=$STAGE/unpacked/gantry-$VERSION/gantry-$VERSION.data
cp "$STAGE/$NAME/gantry" "$data/scripts/gantry"
share=$data/data/share
mkdir -p "$share/man/man1" "$share/bash-completion/completions" "$share/zsh/site-functions" \
    "$share/fish/vendor_completions.d"
cp "$STAGE/$NAME/man/gantry.1" "$share/man/man1/"
cp "$STAGE/$NAME/completions/gantry.bash" "$share/bash-completion/completions/gantry"
cp "$STAGE/$NAME/completions/_gantry" "$share/zsh/site-functions/"
cp "$STAGE/$NAME/completions/gantry.fish" "$share/fish/vendor_completions.d/"
wheel pack -d dist "$STAGE/unpacked/gantry-$VERSION"
WHEEL=$(ls dist/gantry-"$VERSION"-*"$ARCH"*.whl)
(cd dist && sha256sum "$(basename "$WHEEL")" >"$(basename "$WHEEL").sha256")

step "auditwheel show"
auditwheel show "$WHEEL" | tee "$STAGE/auditwheel.txt"
grep -qE 'manylinux_2_(5|12|17)_|manylinux2014|manylinux2010|manylinux1' "$STAGE/auditwheel.txt" ||
    fail "auditwheel does not call $WHEEL manylinux2014 or older"

if [ "$ARCH" = "$(uname -m)" ]; then
    step "the wheel in a fresh venv"
    python3 -m venv "$STAGE/try"
    "$STAGE/try/bin/pip" install -q --no-index "$WHEEL"
    head -c 4 "$STAGE/try/bin/gantry" | grep -q ELF || fail "the wheel's gantry is not the binary itself"
    "$STAGE/try/bin/gantry" --version
    [ -f "$STAGE/try/share/man/man1/gantry.1" ] || fail "the wheel did not install share/man/man1/gantry.1"
    ws=$(mktemp -d)
    set +e
    (cd "$ws" && "$STAGE/try/bin/gantry" init . >/dev/null && "$STAGE/try/bin/gantry" doctor --json) >"$STAGE/doctor.json"
    code=$?
    set -e
    rm -rf "$ws"
    [ "$code" -le 1 ] || fail "gantry doctor --json from the wheel exited $code"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["gantry"]["glibc_floor"]==sys.argv[2], d["gantry"]; print("doctor: glibc floor", d["gantry"]["glibc_floor"], "·", len(d["problems"]), "problems")' \
        "$STAGE/doctor.json" "$floor"
fi

step "made"
ls -l dist/"$NAME".* "$WHEEL"*
echo "binary $(stat -c %s "$STAGE/$NAME/gantry") bytes stripped, $(stat -c %s "$BIN") with line tables"
echo "wheel $(stat -c %s "$WHEEL") bytes"
