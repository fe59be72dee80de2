#!/usr/bin/env bash
# Builds local stand-ins for the two images Tally's Dockerfile and docker-compose.yml start
# from, on a machine that can reach Debian's apt mirror but no image registry:
#
#   node:20-bookworm-slim  a minbase Debian bookworm rootfs (debootstrap, from the apt mirror
#                          this machine is configured with) + this host's `node` and npm, laid
#                          out as the official image lays them out (/usr/local/bin/node) + CA
#                          certificates.
#   tally-prometheus:local Debian's prometheus package on the same rootfs (Prometheus's own
#                          image cannot be pulled here).
#
# Where the real images can be pulled, none of this is needed: the Dockerfile is the same.
# Usage: scripts/docker-base-image.sh [--force]   (as root; needs debootstrap and docker)
# --force rebuilds the images; the debootstrapped rootfs is cached in $TALLY_ROOTFS_CACHE
# (default /var/cache/tally-rootfs): delete it to start from scratch.
set -euo pipefail

force=0
[ "${1:-}" = "--force" ] && force=1
base_tag=node:20-bookworm-slim
prom_tag=tally-prometheus:local
cache=${TALLY_ROOTFS_CACHE:-/var/cache/tally-rootfs}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

if [ "$force" = 0 ] && have_image "$base_tag" && have_image "$prom_tag"; then
  echo "docker-base-image: $base_tag and $prom_tag exist (--force rebuilds)"
  exit 0
fi

for tool in debootstrap docker node; do
  command -v "$tool" >/dev/null || { echo "docker-base-image: $tool is not installed" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "docker-base-image: debootstrap needs root" >&2; exit 1; }

# The Debian mirror this machine already uses: the first URIs/deb line for the main archive
# (not -security) in its apt sources (deb822 .sources files or one-line .list files).
mirror=$(
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null </dev/null | awk '/^URIs:/ {print $2}'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }'
  } | grep -v -- '-security' | head -n 1 || true
)
[ -n "$mirror" ] || { echo "docker-base-image: no Debian mirror found in the apt sources" >&2; exit 1; }
echo "docker-base-image: Debian mirror from the apt sources: $mirror"

rootfs="$cache/bookworm-minbase"
if [ ! -x "$rootfs/bin/sh" ]; then
  rm -rf "$rootfs"
  mkdir -p "$cache"
  echo "docker-base-image: debootstrap --variant=minbase bookworm (about a minute)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log" >&2; echo "docker-base-image: debootstrap failed" >&2; exit 1; }
  # apt inside the image uses the same mirror.
  echo "deb $mirror bookworm main" >"$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "docker-base-image: importing the rootfs"
tar -C "$rootfs" -c . | docker import - tally-bookworm-minbase:local >/dev/null

# Node: this host's binary (its version is what Tally is tested with) and its npm.
node_bin=$(command -v node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
mkdir -p "$work/node/bin" "$work/node/lib/node_modules"
cp "$(readlink -f "$node_bin")" "$work/node/bin/node"
cp -a "$npm_dir" "$work/node/lib/node_modules/npm"
cp /etc/ssl/certs/ca-certificates.crt "$work/ca-certificates.crt"
cat >"$work/Dockerfile" <<'EOF'
FROM tally-bookworm-minbase:local
COPY node/bin/node /usr/local/bin/node
COPY node/lib/node_modules/npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
# This machine reaches the registries through a proxy that the host's bundle trusts.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
EOF
echo "docker-base-image: building $base_tag from the host's node $(node --version)"
docker build -q -t "$base_tag" "$work" >/dev/null

# Prometheus from Debian's package, installed into a copy of the rootfs with apt (chroot).
prom_rootfs="$cache/prometheus"
if [ ! -x "$prom_rootfs/usr/bin/prometheus" ]; then
  rm -rf "$prom_rootfs"
  cp -a "$rootfs" "$prom_rootfs"
  cp /etc/resolv.conf "$prom_rootfs/etc/resolv.conf"
  echo "docker-base-image: installing Debian's prometheus into a rootfs copy"
  chroot "$prom_rootfs" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb && mkdir -p /prometheus && chown nobody:nogroup /prometheus' ||
    { echo "docker-base-image: apt-get install prometheus failed in the chroot" >&2; exit 1; }
fi
tar -C "$prom_rootfs" -c . | docker import \
  -c 'USER nobody' \
  -c 'EXPOSE 9090' \
  -c 'ENTRYPOINT ["/usr/bin/prometheus"]' \
  -c 'CMD ["--config.file=/etc/prometheus/prometheus.yml","--storage.tsdb.path=/prometheus","--web.listen-address=:9090"]' \
  - "$prom_tag" >/dev/null
echo "docker-base-image: built $base_tag and $prom_tag"
docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "node:20-bookworm-slim|tally-prometheus" || true
