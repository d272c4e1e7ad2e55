#!/usr/bin/env bash
# shellcheck disable=SC2317  # the x_* extractors are called indirectly, as "x_$source"
# Builds the Debian game-data mesh corpus (docs: shared data-sources.md) and prepares it as an
# iflame dataset, reading the games' native files (.pmd .g3d .md2 .spm .pie .ac .md3 .obj).
#
#   scripts/build-corpus.sh WORKDIR [--light] [-- PREPARE_OPTIONS...]
#
#   WORKDIR/debs/                 the downloaded .deb packages (kept; re-runs reuse them)
#   WORKDIR/meshes/<source>/      the extracted mesh files, one folder per game (kept)
#   WORKDIR/corpus.ifds           the dataset, and corpus.ifds.report.json next to it
#   WORKDIR/prepare.log           the summary line of `iflame prepare`
#
# Packages: the full set is 0ad-data, flightgear-data-base, megaglest-data, ufoai-data,
# supertuxkart-data, warzone2100-data, minetest-mod-homedecor and openarena-data (3.9 GB of
# downloads, ~9 GB peak disk: 0 A.D.'s public.zip alone is 3.2 GB and is deleted once its
# meshes are out); --light leaves out 0 A.D., FlightGear and OpenArena (1.3 GB). PKGS="..."
# picks the packages by hand. Everything is idempotent: a package is downloaded once (and its
# SHA-256 checked against apt's), a source is extracted once (into a temporary folder that is
# renamed when complete); `iflame prepare` runs every time (and replaces the dataset).
#
# Defaults passed to prepare: --min-faces 20 --max-faces 800 --split-by stem-prefix (pose and
# LOD variants share a file-name stem; several games keep hundreds of different objects in one
# folder, so grouping by folder would make a few giant groups), --near-dup 0.001 (copies across
# groups and games: Chamfer distance within 0.001 or 40% of the sampling floor, at 512 points;
# chosen by looking at pairs, models/README.md), --z-up for UFO:AI and OpenArena (id Tech models
# are Z-up). Options after `--` are appended and override these.
#
# Environment: IFLAME (default: build/iflame of this repository), PKGS, OUT (default
# WORKDIR/corpus.ifds). Needs apt-get, dpkg, tar, unzip; root only when apt's package lists are
# missing (apt-get update).
set -euo pipefail

die() { printf 'build-corpus: error: %s\n' "$*" >&2; exit 1; }
log() { printf '[build-corpus %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
usage() { sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IFLAME=${IFLAME:-$REPO/build/iflame}
LIGHT_PKGS="megaglest-data ufoai-data supertuxkart-data warzone2100-data minetest-mod-homedecor"
FULL_PKGS="0ad-data flightgear-data-base $LIGHT_PKGS openarena-data"

W="" LIGHT=0
PREPARE_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage 0 ;;
    --light) LIGHT=1 ;;
    --) shift; PREPARE_ARGS=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$W" ] || die "one WORKDIR only (got '$W' and '$1')"; W=$1 ;;
  esac
  shift
done
[ -n "$W" ] || usage 2
if [ -z "${PKGS:-}" ]; then
  if [ "$LIGHT" = 1 ]; then PKGS=$LIGHT_PKGS; else PKGS=$FULL_PKGS; fi
fi
for tool in apt-get apt-cache dpkg dpkg-deb tar unzip sha256sum; do
  command -v "$tool" >/dev/null || die "needs $tool (Debian: apt-get install ${tool/sha256sum/coreutils})"
done
[ -x "$IFLAME" ] || die "no iflame binary at $IFLAME (build it with 'ninja -C build iflame', or set IFLAME=/path/to/iflame)"

mkdir -p "$W/debs" "$W/meshes" "$W/tmp"
W=$(cd "$W" && pwd)
OUT=${OUT:-$W/corpus.ifds}

# --- 1. download ----------------------------------------------------------------------------
deb_of() { find "$W/debs/" -maxdepth 1 -name "${1}_*.deb" | sort | head -n 1; }

fetch() {
  local pkg=$1 deb want have
  deb=$(deb_of "$pkg")
  if [ -n "$deb" ] && [ -f "$deb.ok" ]; then return; fi   # downloaded and checked before
  if ! apt-cache show "$pkg" >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "apt's package lists do not know $pkg; run 'apt-get update' as root, then re-run"
    log "apt-get update (the package lists lack $pkg)"
    apt-get update -qq
  fi
  want=$(apt-cache show --no-all-versions "$pkg" | sed -n 's/^SHA256: //p' | head -n 1)
  if [ -n "$deb" ]; then
    have=$(sha256sum "$deb" | cut -d' ' -f1)
    if [ -n "$want" ] && [ "$have" != "$want" ]; then
      log "$(basename "$deb"): checksum mismatch (partial or other version); downloading again"
      rm -f "$deb"
      deb=""
    fi
  fi
  if [ -z "$deb" ]; then
    log "downloading $pkg"
    (cd "$W/debs" && apt-get download -q "$pkg" 2>&1 | { grep -v 'Download is performed unsandboxed' || true; } >&2) ||
      die "apt-get download $pkg failed"
    deb=$(deb_of "$pkg")
    [ -n "$deb" ] || die "apt-get download $pkg produced no .deb"
    have=$(sha256sum "$deb" | cut -d' ' -f1)
    [ -z "$want" ] || [ "$have" = "$want" ] || die "$(basename "$deb"): SHA-256 $have, apt expects $want"
  fi
  touch "$deb.ok"
}

# --- 2. extract -----------------------------------------------------------------------------
# Each extractor fills $dst (a temporary folder) with the source's mesh files; `extract` renames
# it to meshes/<source> when it holds at least one mesh.
deb_tar() { dpkg --fsys-tarfile "$(deb_of "$1")"; }

# unzip with patterns; exit code 11 ("no matching files" or an exclusion that matched
# nothing) is fine here: `extract` checks that the source ends up with meshes.
unzip_some() {
  local rc=0
  unzip -q -o "$@" 2> >(grep -v 'caution: excluded filename not matched' >&2) || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 11 ] || die "unzip $1 failed ($rc)"
}

x_0ad() {   # 0 A.D.: cached .pmd meshes inside public.zip (CC-BY-SA-3.0)
  deb_tar 0ad-data | tar -x -C "$tmp" ./usr/share/games/0ad/mods/public/public.zip
  unzip_some "$tmp/usr/share/games/0ad/mods/public/public.zip" 'art/meshes/*.pmd' -d "$dst"
}
x_flightgear() {   # FlightGear scenery models, AC3D (GPL-2+)
  deb_tar flightgear-data-base | tar -x -C "$dst" --wildcards --strip-components=6 \
    './usr/share/games/flightgear/Scenery/Models/*.ac' './usr/share/games/flightgear/Scenery/Objects/*.ac'
}
x_megaglest() {   # MegaGlest units, buildings, tileset objects, G3D v4 (CC-BY-SA-3.0)
  deb_tar megaglest-data | tar -x -C "$dst" --wildcards --strip-components=5 \
    './usr/share/games/megaglest/techs/*.g3d' './usr/share/games/megaglest/tilesets/*.g3d'
}
x_ufoai() {   # UFO: Alien Invasion .md2 in 0models.pk3 (GPL-2+, some CC-BY(-SA)-3.0); Z-up
  deb_tar ufoai-data | tar -x -C "$tmp" ./usr/share/games/ufoai/base/0models.pk3
  unzip_some "$tmp/usr/share/games/ufoai/base/0models.pk3" '*.md2' -d "$dst"
}
x_supertuxkart() {   # SuperTuxKart karts, library and track objects, .spm (GPL-3+)
  deb_tar supertuxkart-data | tar -x -C "$dst" --wildcards --strip-components=6 './usr/share/games/supertuxkart/data/*.spm'
}
x_warzone2100() {   # Warzone 2100 .pie in base.wz / mp.wz (GPL-2+); effects/ and misc/ are sprites and digits
  deb_tar warzone2100-data | tar -x -C "$tmp" ./usr/share/games/warzone2100/base.wz ./usr/share/games/warzone2100/mp.wz
  for z in base mp; do
    unzip_some "$tmp/usr/share/games/warzone2100/$z.wz" '*.pie' -x 'effects/*' 'misc/*' -d "$dst/$z"
  done
}
x_minetest_homedecor() {   # Minetest homedecor furniture .obj (models CC-BY-SA-4.0)
  deb_tar minetest-mod-homedecor | tar -x -C "$dst" --wildcards --strip-components=7 './usr/share/games/minetest/mods/homedecor/*.obj'
}
x_openarena() {   # OpenArena .md3 in the baseoa pk3 archives (GPL-2+); Z-up
  deb_tar openarena-data | tar -x -C "$tmp" --wildcards './usr/share/games/openarena/*.pk3'
  local pk3
  for pk3 in "$tmp"/usr/share/games/openarena/*/*.pk3; do
    unzip_some "$pk3" '*.md3' -d "$dst/$(basename "$pk3" .pk3)"
  done
}

source_of() {
  case "$1" in
    0ad-data) echo 0ad ;;
    flightgear-data-base) echo flightgear ;;
    megaglest-data) echo megaglest ;;
    ufoai-data) echo ufoai ;;
    supertuxkart-data) echo supertuxkart ;;
    warzone2100-data) echo warzone2100 ;;
    minetest-mod-homedecor) echo minetest_homedecor ;;
    openarena-data) echo openarena ;;
    *) return 1 ;;
  esac
}

extract() {
  local pkg=$1 src
  src=$(source_of "$pkg") || die "no extractor for package $pkg"
  if [ -d "$W/meshes/$src" ]; then return; fi
  log "extracting $pkg -> meshes/$src"
  dst="$W/tmp/$src.part" tmp="$W/tmp/$src.archive"
  rm -rf "$dst" "$tmp"
  mkdir -p "$dst" "$tmp"
  "x_${src}"
  rm -rf "$tmp"   # the big intermediate zips
  local n
  n=$(find "$dst" -type f | wc -l)
  [ "$n" -gt 0 ] || die "$pkg: no mesh files extracted"
  mv "$dst" "$W/meshes/$src"
  log "  $n files"
}

for pkg in $PKGS; do source_of "$pkg" >/dev/null || die "unknown package $pkg (known: $FULL_PKGS)"; done
for pkg in $PKGS; do fetch "$pkg"; done
for pkg in $PKGS; do extract "$pkg"; done
rmdir "$W/tmp" 2>/dev/null || true

# --- 3. prepare -----------------------------------------------------------------------------
INPUTS=() ZUP=()
for pkg in $PKGS; do
  src=$(source_of "$pkg")
  INPUTS+=("$W/meshes/$src")
  case "$src" in ufoai|openarena) ZUP+=("$W/meshes/$src") ;; esac
done
CMD=("$IFLAME" prepare --input "${INPUTS[@]}" --out "$OUT" --min-faces 20 --max-faces 800 --split-by stem-prefix --near-dup 0.001 --overwrite)
[ ${#ZUP[@]} -eq 0 ] || CMD+=(--z-up "${ZUP[@]}")
CMD+=(${PREPARE_ARGS[@]+"${PREPARE_ARGS[@]}"})
log "running: ${CMD[*]}"
# stderr stays on the terminal (progress bar); the summary line also goes to prepare.log.
"${CMD[@]}" | tee "$W/prepare.log"
exit "${PIPESTATUS[0]}"
