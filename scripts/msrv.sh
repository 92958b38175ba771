#!/usr/bin/env bash
# MSRV check: the library crates (arcycle, arcycle-derive) build with the
# toolchain named by `rust-version` in Cargo.toml, with dependencies
# resolved the way Cargo's MSRV-aware resolver picks them for a user on
# that toolchain. Installs the toolchain (minimal profile) if missing.
#
# Why a separate, temporary workspace: the repository's lockfile is
# resolved for the latest stable (and the test and verification crates
# may need newer Rust); what must hold for users is that the *library*
# builds on the declared version.
set -euo pipefail
cd "$(dirname "$0")/.."

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ -n "$msrv" ] || { echo "msrv: no rust-version in Cargo.toml" >&2; exit 1; }
rustup toolchain install "$msrv" --profile minimal >/dev/null 2>&1 || true
rustup run "$msrv" rustc --version >/dev/null || {
    echo "msrv: could not install Rust $msrv" >&2
    exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar cf - Cargo.toml README.md LICENSE-MIT LICENSE-APACHE src derive/Cargo.toml derive/src \
    derive/README.md | tar xf - -C "$tmp"
# Only the library crates, without the test and benchmark dependencies.
python3 - "$tmp/Cargo.toml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r'(?m)^members = \[.*\]$', 'members = [".", "derive"]', s)
s = re.sub(r'(?m)^default-members = \[.*\]\n', '', s)
for table in (r'\[dev-dependencies\]', r'\[\[bench\]\]', r'\[\[example\]\]', r'\[\[test\]\]'):
    s = re.sub(r'\n' + table + r'[\s\S]*?(?=\n\[|\Z)', '\n', s)
open(p, 'w').write(s)
PY
cd "$tmp"
CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo generate-lockfile -q
export CARGO_TARGET_DIR="${MSRV_TARGET_DIR:-$tmp/target}"
cargo "+$msrv" check -q -p arcycle -p arcycle-derive --lib
echo "msrv: arcycle and arcycle-derive build with Rust $msrv"
