#!/usr/bin/env bash
# Install what the Pacemaker lab (tests/lab/lab.py) needs on Debian 12, as root. Idempotent: apt is only touched
# when something is missing. pacemaker-remoted comes from the pacemaker-remote .deb, unpacked into
# /opt/pacemaker-remote, because that package conflicts with pacemaker (see docs/lab.md §0).
set -euo pipefail

# systemd-container + debootstrap: the hosts lab (lab.py up --hosts). Note: installing systemd-container also
# upgrades the machine's systemd packages to the archive's version (harmless without systemd as PID 1).
PACKAGES=(pacemaker pacemaker-cli-utils corosync fence-agents openssh-server socat iproute2 gnutls-bin
          systemd-container debootstrap nftables)
REMOTED_ROOT=/opt/pacemaker-remote
REMOTED_LINK=/usr/local/sbin/pacemaker-remoted
POLICY_RC_D=/usr/sbin/policy-rc.d

die() { echo "install-deps: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
command -v apt-get >/dev/null && command -v dpkg-query >/dev/null || die "apt-get/dpkg not found: Debian 12 only"

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
remoted_ok() { "$REMOTED_LINK" --version >/dev/null 2>&1; }
if [ ${#missing[@]} -eq 0 ] && remoted_ok; then
    echo "install-deps: all lab packages and $REMOTED_LINK present"
    exit 0
fi

tmp=$(mktemp -d)
created_policy=0
cleanup() {
    rm -rf "$tmp"
    [ "$created_policy" -eq 0 ] || rm -f "$POLICY_RC_D"
}
trap cleanup EXIT

apt_updated=0
apt_update() {
    [ "$apt_updated" -eq 0 ] || return 0
    apt-get update -q || die "apt-get update failed"
    apt_updated=1
}

if [ ${#missing[@]} -gt 0 ]; then
    # Without systemd the postinst scripts would start corosync, pacemaker and sshd as system services, which
    # would then hold the ports and IPC names the lab needs. A policy-rc.d answering 101 forbids that.
    if [ ! -e "$POLICY_RC_D" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC_D"
        chmod 755 "$POLICY_RC_D"
        created_policy=1
    fi
    apt_update
    echo "install-deps: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
        || die "apt-get install failed for: ${missing[*]}"
fi

if ! remoted_ok; then
    # The same version as the installed pacemaker, whose libraries it links against.
    version=$(dpkg-query -W -f='${Version}' pacemaker)
    # apt downloads as its _apt user; let it write into the temp dir (it only warns otherwise).
    if id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
    download() { (cd "$tmp" && apt-get download -q "pacemaker-remote=$version"); }
    download || { apt_update && download; } || die "apt-get download pacemaker-remote=$version failed"
    mkdir -p "$REMOTED_ROOT"
    dpkg -x "$tmp"/pacemaker-remote_*.deb "$REMOTED_ROOT" || die "dpkg -x of pacemaker-remote failed"
    ln -sf "$REMOTED_ROOT/usr/sbin/pacemaker-remoted" "$REMOTED_LINK"
    remoted_ok || die "$REMOTED_LINK --version fails after extraction"
    echo "install-deps: $("$REMOTED_LINK" --version | head -1) at $REMOTED_LINK"
fi

for binary in corosync pacemakerd sshd socat ip cibadmin crm_mon crm_resource fence_dummy ssh ssh-keygen gnutls-cli \
              systemd-nspawn debootstrap nsenter nft; do
    PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin command -v "$binary" >/dev/null \
        || die "$binary still missing after the install"
done
echo "install-deps: done"
