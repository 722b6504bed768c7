#!/usr/bin/env bash
# fetch-kernel.sh OUTDIR: fetch Debian 12's stock amd64 kernel package with apt-get download
# (never installed into the host), unpack it under OUTDIR and extract the uncompressed vmlinux
# for PVH boot. Idempotent: does nothing when OUTDIR/vmlinux is already there.
set -euo pipefail
out=${1:?usage: fetch-kernel.sh OUTDIR}
if [ -s "$out/vmlinux" ] && [ -s "$out/vmlinuz" ] && [ -s "$out/release" ]; then exit 0; fi
command -v apt-get >/dev/null || { echo "fetch-kernel: apt-get not found (need a Debian host)" >&2; exit 1; }
# linux-image-amd64 is a metapackage; resolve it to the versioned image package.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2}' | head -n1 || true)
if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
  # A fresh machine may have no package lists yet.
  apt-get update -qq >/dev/null 2>&1 || true
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2}' | head -n1 || true)
fi
if [ -z "$pkg" ]; then
  echo "fetch-kernel: cannot resolve linux-image-amd64; run: sudo apt-get update" >&2
  exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cgoa-kernel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1) || {
  echo "fetch-kernel: apt-get download $pkg failed; run: apt-get update" >&2; exit 1; }
mkdir -p "$out"
rm -rf "$out/modules" "$out/boot"
dpkg-deb -x "$tmp"/*.deb "$tmp/x"
release=$(basename "$(ls -d "$tmp"/x/lib/modules/*)")
mv "$tmp/x/lib/modules/$release" "$out/modules"
mkdir -p "$out/boot" && cp "$tmp"/x/boot/config-* "$out/boot/config"
# The bzImage carries the kernel as one xz stream; find it and decompress only that stream.
vmlinuz=$(ls "$tmp"/x/boot/vmlinuz-*)
off=$(LC_ALL=C grep -m1 -obUaP '\xfd7zXZ\x00' "$vmlinuz" | cut -d: -f1 || true)
[ -n "$off" ] || { echo "fetch-kernel: no xz stream in $vmlinuz" >&2; exit 1; }
# xz stops at the end of the stream, so tail may die of SIGPIPE: that is expected.
{ tail -c +"$((off + 1))" "$vmlinuz" || true; } | xz -dc --single-stream > "$tmp/vmlinux"
[ "$(head -c 4 "$tmp/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] || {
  echo "fetch-kernel: extracted vmlinux is not an ELF file" >&2; exit 1; }
mv "$tmp/vmlinux" "$out/vmlinux"
# The compressed kernel is what a signed blade image carries (8 MiB instead of 64).
cp "$vmlinuz" "$out/vmlinuz"
echo "$release" > "$out/release"
echo "$pkg" > "$out/package"
echo "kernel $release -> $out/vmlinux"
