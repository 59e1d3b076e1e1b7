#!/usr/bin/env bash
# Assembles the runtime image's root file system (Dockerfile, stage `rootfs`): node, iptables and iproute2 with the libraries they load, and nothing else.
#
# Usage (inside a Debian-based build stage with iptables, iproute2 and binutils installed): runtime-rootfs.sh <dir>
# A distroless-like tree: no shell, no package manager, no npm. The capture init container's tools are there
# (iptables-restore/ip6tables-restore with Debian's nft backend, `ip rule|route` for TPROXY), as in Istio's proxyv2.
set -euo pipefail

root=${1:?usage: runtime-rootfs.sh <dir>}
mkdir -p "$root"

# Debian's merged /usr: /bin, /sbin, /lib and /lib64 are links into /usr, so paths from either side resolve.
mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$root/usr/local/bin"
for dir in bin sbin lib lib64; do
  if [ -L "/$dir" ]; then
    mkdir -p "$root/usr/$dir"
    ln -sfn "usr/$dir" "$root/$dir"
  fi
done

# Copies a path into the tree at the same place, and every symlink on the way to the file it names.
copy_path() {
  local path=$1
  while :; do
    cp -a --parents "$path" "$root"
    [ -L "$path" ] || break
    local target
    target=$(readlink "$path")
    case "$target" in
      /*) path=$target ;;
      *) path=$(dirname "$path")/$target ;;
    esac
  done
}

# Copies an ELF file and the shared libraries it needs (ldd resolves them, the dynamic loader included).
copy_elf() {
  copy_path "$1"
  ldd "$1" | grep -o '/[^ ]*' | while read -r lib; do copy_path "$lib"; done
}

# Node, stripped of its debug info and static symbol table (native addons link against .dynsym, which stays).
install -D -m 0755 /usr/local/bin/node "$root/usr/local/bin/node"
strip --strip-all "$root/usr/local/bin/node"
ldd /usr/local/bin/node | grep -o '/[^ ]*' | while read -r lib; do copy_path "$lib"; done

# iptables (nft backend, as Debian's default alternative), its extension modules, and iproute2's `ip`.
copy_elf /usr/sbin/xtables-nft-multi
for tool in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sfn xtables-nft-multi "$root/usr/sbin/$tool"
done
# Only the extensions `outrigger capture install` writes (src/capture/capture-rules.ts: the standard targets,
# tcp/udp, owner, multiport, conntrack, mark/MARK, connmark/CONNMARK, CT, REDIRECT, TPROXY, comment) and the few
# other rule kinds a pod's namespace may already hold that iptables-save must print (NAT, addrtype, socket,
# state, icmp, REJECT, LOG); Debian ships 122 of them. The directory is found, not named: it is the
# architecture's multiarch one (x86_64-linux-gnu, aarch64-linux-gnu).
xtables_dir=$(dirname "$(find /usr/lib -name libxt_REDIRECT.so -print -quit)")
for extension in standard tcp udp owner multiport conntrack mark MARK connmark CONNMARK CT REDIRECT TPROXY \
  comment NAT DNAT SNAT MASQUERADE addrtype socket state icmp icmp6 REJECT LOG; do
  for file in "$xtables_dir"/lib{xt,ipt,ip6t}_"$extension".so; do
    if [ -e "$file" ]; then copy_elf "$file"; fi
  done
done
copy_elf "$(readlink -f "$(command -v ip)")"
ln -sfn ../bin/ip "$root/usr/sbin/ip"
cp -a --parents /etc/iproute2 "$root"

# `env` for the `#!/usr/bin/env node` line of bin/outrigger.js, so `outrigger …` runs as a command.
copy_elf /usr/bin/env
ln -sfn /opt/outrigger/bin/outrigger.js "$root/usr/local/bin/outrigger"

# Users (istio-proxy is uid 1337, as in Istio's images), name service order, and the directories a container expects.
mkdir -p "$root/etc" "$root/proc" "$root/sys" "$root/dev" "$root/run"
install -d -m 1777 "$root/tmp"
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/usr/sbin/nologin
istio-proxy:x:1337:1337:istio-proxy:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
istio-proxy:x:1337:
nogroup:x:65534:
GROUP
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
