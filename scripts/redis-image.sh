#!/usr/bin/env bash
# Build a tiny Redis image from the host's redis-server, because no Docker
# registry is reachable here (pulling redis:7 fails). The image holds only the
# binary, the libraries ldd lists, and a few files redis expects.
# stdout: the image name, and nothing else. Progress goes to stderr.
set -euo pipefail

image="${TICKGATE_REDIS_IMAGE:-tickgate/redis:local}"
# Bump when the recipe below changes, so old images get rebuilt.
recipe=1
log() { echo "redis-image: $*" >&2; }

# /usr/bin/redis-server is a symlink to redis-check-rdb on Debian, and redis
# picks its mode from argv[0], so store the real file under the name redis-server.
bin="$(readlink -f "$(command -v redis-server)")"
want="$(sha256sum "$bin" | cut -d' ' -f1)-r$recipe"

have="$(docker image inspect -f '{{ index .Config.Labels "tickgate.redis.sha256" }}' "$image" 2>/dev/null || true)"
if [ "$have" = "$want" ]; then
  log "$image is up to date (redis-server sha256 ${want%-r*})"
  echo "$image"
  exit 0
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/etc" "$root/data" "$root/tmp"
chmod 1777 "$root/tmp"
cp "$bin" "$root/usr/bin/redis-server"
# Copy every path ldd prints (libs plus the loader), with symlinks resolved,
# at the same absolute path. On merged-/usr hosts /lib is a symlink; here it
# becomes a real directory, which is what the loader looks in anyway.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
printf 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

log "importing $image from $bin"
# ENTRYPOINT carries the flags (not CMD), so extra args a caller passes are
# appended instead of replacing --bind/--protected-mode.
tar -C "$root" -c . | docker import \
  --change 'ENTRYPOINT ["/usr/bin/redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]' \
  --change 'EXPOSE 6379' \
  --change 'WORKDIR /data' \
  --change "LABEL tickgate.redis.sha256=$want" \
  - "$image" >&2
echo "$image"
