"""Base images of the hosts lab (``lab.py up --hosts``): one Debian root per Pacemaker version, built with
debootstrap from the machine's own apt mirror and cached under /var/lib/remotectl-lab/images.

Per version there are two layers:

* ``base``: debootstrap minbase + systemd, sshd, nftables, iproute2, python3 and ``pacemaker-remote`` (installed but
  disabled and without a key: a fresh host as an operator finds it), firewalld and ufw (installed, inactive). Remote, guest and spare hosts boot from it.
* ``cluster``: an overlayfs upper on ``base`` with pacemaker, pacemaker-cli-utils, corosync and a fence agent with
  fence_dummy (installing pacemaker removes pacemaker-remote, they conflict). Cluster nodes boot from it.

An image is rebuilt when it is missing or when its recipe (suite, package lists, RECIPE_REVISION) changed: the
recipe's hash is stamped into the image directory last, so a half-built image never counts as built.
Nothing in here starts a daemon: a policy-rc.d answering 101 is in the roots while packages are installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

IMAGE_DIR = Path(os.environ.get("REMOTECTL_LAB_IMAGES", "/var/lib/remotectl-lab/images"))
RECIPE_REVISION = 1  # bump when the build steps below change in a way the package lists do not show

# Pacemaker version -> Debian suite. 2.1 = Debian 12's 2.1.5; 3.0 = the newest 3.0.x the archive has (sid: 3.0.3).
SUITES = {"2.1": "bookworm", "3.0": "sid"}
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "nftables", "python3", "procps",
                 "libpam-systemd"]
REMOTE_PACKAGES = ["pacemaker-remote", "pacemaker-resource-agents"]
# Installed and inactive (firewalld disabled, ufw ENABLED=no): node add's firewall tests switch one on per host.
FIREWALL_PACKAGES = ["firewalld", "ufw"]
# bookworm's fence_dummy is in fence-agents; later suites split it out into fence-agents-dummy.
CLUSTER_PACKAGES = {
    "bookworm": ["pacemaker", "pacemaker-cli-utils", "corosync", "fence-agents"],
    "sid": ["pacemaker", "pacemaker-cli-utils", "corosync", "fence-agents-dummy"],
}
NO_VALID_UNTIL = 'Acquire::Check-Valid-Until "false";\n'  # the reachable archive may be a frozen snapshot


class ImageError(RuntimeError):
    pass


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (never a hard-coded host): the first URIs: of a deb822 stanza in
    /etc/apt/sources.list.d/*.sources whose Suites are Debian's own (not -security), else the first matching
    'deb' line of /etc/apt/sources.list."""
    candidates: List[str] = []
    for sources in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", sources.read_text()):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            suites = fields.get("suites", "").split()
            if suites and not all(s.endswith("-security") for s in suites):
                candidates += fields.get("uris", "").split()
    lists = [Path("/etc/apt/sources.list")] + sorted(Path("/etc/apt/sources.list.d").glob("*.list"))
    for listing in lists:
        if not listing.is_file():
            continue
        for line in listing.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 3 and words[0] == "deb" and not words[2].endswith("-security"):
                candidates.append(words[1])
    for uri in candidates:
        if "security" not in uri:
            return uri.rstrip("/")
    raise ImageError("no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list")


def recipe(version: str) -> Dict[str, object]:
    suite = SUITES[version]
    return {"revision": RECIPE_REVISION, "suite": suite, "base": BASE_PACKAGES, "remote": REMOTE_PACKAGES,
            "firewall": FIREWALL_PACKAGES, "cluster": CLUSTER_PACKAGES[suite]}


def recipe_hash(version: str) -> str:
    return hashlib.sha256(json.dumps(recipe(version), sort_keys=True).encode()).hexdigest()[:16]


def image_dir(version: str) -> Path:
    return IMAGE_DIR / version


def base_root(version: str) -> Path:
    return image_dir(version) / "base"


def cluster_layer(version: str) -> Path:
    return image_dir(version) / "cluster"


def _stamp(version: str) -> Path:
    return image_dir(version) / "recipe"


def is_built(version: str) -> bool:
    try:
        return _stamp(version).read_text().split()[0] == recipe_hash(version)
    except (FileNotFoundError, IndexError):
        return False


def image_info(version: str) -> Dict[str, str]:
    """What the built image holds: {'suite':…, 'pacemaker': '3.0.3-2', ...} (from the stamp)."""
    try:
        return json.loads(_stamp(version).read_text().split(None, 1)[1])
    except (FileNotFoundError, IndexError, ValueError):
        return {}


def _log(message: str) -> None:
    print(f"lab images: {message}", file=sys.stderr, flush=True)


def _run(argv: List[str], **kwargs) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
           "HOME": "/root"}
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise ImageError(f"{' '.join(argv[:6])}... failed (rc={result.returncode}):\n"
                         + "\n".join((result.stdout + result.stderr).splitlines()[-25:]))
    return result


@contextlib.contextmanager
def _overlay(lower: List[Path], upper: Path, scratch: Path) -> Iterator[Path]:
    """Mount lower (topmost first) + upper at scratch/root for the duration."""
    work, root = scratch / "work", scratch / "root"
    for d in (upper, work, root):
        d.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "overlay", "overlay", "-o",
          f"lowerdir={':'.join(map(str, lower))},upperdir={upper},workdir={work}", str(root)])
    try:
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=False)


def _in_root(root: Path, script: str) -> None:
    """Run a shell script chrooted in root, in a private mount namespace with /proc and /dev (gone afterwards)."""
    inner = f"mount -t proc proc {root}/proc && mount --bind /dev {root}/dev && exec chroot {root} /bin/sh -ec '{script}'"
    _run(["nice", "-n", "10", "unshare", "-m", "--propagation", "private", "sh", "-ec", inner], timeout=1800)


def _apt_install(root: Path, packages: List[str]) -> None:
    _in_root(root, "apt-get -q update && apt-get install -y -q --no-install-recommends "
             + " ".join(packages) + " && apt-get clean && rm -rf /var/lib/apt/lists/*")


def _prepare_root(root: Path) -> None:
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    (root / "etc/apt/apt.conf.d/99remotectl-lab").write_text(NO_VALID_UNTIL)
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")


def _finish_root(root: Path) -> None:
    """What every layer gets after its packages: no daemon enabled that the lab or the CLI must enable itself."""
    (root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
    (root / "etc/pacemaker/authkey").unlink(missing_ok=True)
    for unit in ("pacemaker_remote.service", "pacemaker-remote.service"):
        (root / "etc/systemd/system/multi-user.target.wants" / unit).unlink(missing_ok=True)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/hostname").unlink(missing_ok=True)
    (root / "etc/machine-id").write_text("")


def _build(version: str) -> None:
    suite = SUITES[version]
    target = image_dir(version)
    building = IMAGE_DIR / f".{version}.building"
    if building.exists():
        _unmount_below(building)
        shutil.rmtree(building)
    building.mkdir(parents=True)
    mirror = apt_mirror()
    started = time.monotonic()
    _log(f"debootstrap {suite} from {mirror} (Pacemaker {version}) into {building}")
    script = [] if Path(f"/usr/share/debootstrap/scripts/{suite}").exists() else ["/usr/share/debootstrap/scripts/sid"]
    _run(["nice", "-n", "10", "debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
          suite, str(building / "base"), mirror] + script, timeout=1800)
    base = building / "base"
    _log(f"debootstrap done after {time.monotonic() - started:.0f}s; installing {' '.join(REMOTE_PACKAGES)}")
    _prepare_root(base)
    _apt_install(base, REMOTE_PACKAGES + FIREWALL_PACKAGES)
    # apt timers and the like have no network inside a booted host; mask what only makes noise. firewalld's
    # postinst enables it: disabled (not masked) so a test can start it; ufw stays ENABLED=no, its unit a no-op.
    _in_root(base, "systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer "
             "systemd-networkd-wait-online.service >/dev/null 2>&1 || true; "
             "systemctl disable pacemaker_remote >/dev/null 2>&1 || true; "
             "systemctl disable firewalld.service >/dev/null 2>&1 || true; "
             "sed -i s/^ENABLED=.*/ENABLED=no/ /etc/ufw/ufw.conf; grep -qx ENABLED=no /etc/ufw/ufw.conf; "
             "test ! -e /etc/systemd/system/multi-user.target.wants/firewalld.service")
    _log(f"base layer done after {time.monotonic() - started:.0f}s; building the cluster layer")
    with _overlay([base], building / "cluster", building / "scratch") as root:
        _apt_install(root, CLUSTER_PACKAGES[suite])
        versions = _run(["chroot", str(root), "dpkg-query", "-W", "-f", "${Package} ${Version}\\n",
                         "pacemaker", "corosync", "systemd"]).stdout
        _finish_root(root)
    _finish_root(base)
    shutil.rmtree(building / "scratch")
    info = {"suite": suite, **dict(line.split() for line in versions.splitlines() if line.strip()),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - started)}
    if target.exists():
        shutil.rmtree(target)
    building.rename(target)
    _stamp(version).write_text(f"{recipe_hash(version)} {json.dumps(info)}\n")
    _log(f"Pacemaker {version} image ({suite}, pacemaker {info.get('pacemaker')}) built in "
         f"{info['build_seconds']}s: {target}")


def _unmount_below(path: Path) -> None:
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(str(path) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)


def ensure(version: str) -> Dict[str, str]:
    """Build the image of a Pacemaker version unless it is already built from the current recipe."""
    if version not in SUITES:
        raise ImageError(f"no image for Pacemaker {version!r} (choose from {', '.join(SUITES)})")
    IMAGE_DIR.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(IMAGE_DIR / f".{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_built(version):
            for tool in ("debootstrap", "systemd-nspawn"):
                if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
                    raise ImageError(f"{tool} missing (run tests/lab/install-deps.sh)")
            _build(version)
    return image_info(version)


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="build the hosts lab's base images (cached)")
    parser.add_argument("versions", nargs="*", default=list(SUITES), help="Pacemaker versions (default: all)")
    args = parser.parse_args(argv)
    for version in args.versions:
        info = ensure(version)
        print(f"{version}: {image_dir(version)} {json.dumps(info)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
