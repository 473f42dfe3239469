"""File operations on a host through a Runner (local or SSH), for small sensitive files such as authkeys.

Everything goes through one constant POSIX sh script whose arguments are passed as separate, quoted argv
elements; file content only ever travels on stdin. The write is atomic: a temp file created private in the same
directory, given its final mode before any byte is written, checked against the expected sha256 (so a
connection that dies mid-transfer can never install a truncated key), fsynced, chowned, then renamed.

Temp files are named `.remotectl.<pid>.XXXXXXXX` (pid of the writing shell), so a later run can tell the ones
left by a killed writer (pid gone) from one being written right now: see `_STALE_TEMPS_FUNCTION`. A backup is
created under umask 077 without copying the mode, so it is never looser than 0600 (and as tight as the key).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Sequence

from remotectl.pacemaker.authkey import FileFacts
from remotectl.transport.base import CommandResult, Runner, TransportError

# Exit status of the write script when the target no longer holds what the caller expected (see `expect`).
_CHANGED_UNDERNEATH = 76
_SHA256 = re.compile(r"[0-9a-f]{64}")

# write_atomic TARGET MODE OWNER WANT BACKUP EXPECT (stdin: the content), under set -eu; the last step of a script
# (it exits on failure, with the codes write_file_atomic reads)
_WRITE_FUNCTION = r"""
write_atomic() {
target=$1 mode=$2 owner=$3 want=$4 backup=$5 expect=$6
dir=$(dirname -- "$target")
umask 077
[ -d "$dir" ] || mkdir -p -m 0750 -- "$dir"
# replace a regular file only: mv onto a directory (or a link to one) would move the key into it, and a device
# node or FIFO is no key file; a symlink is named, not followed nor replaced
if [ -L "$target" ]; then
  echo "$target is a symbolic link (to $(readlink -- "$target")): refusing to replace it" >&2; exit 64
fi
if [ -e "$target" ] && [ ! -f "$target" ]; then
  echo "$target is not a regular file: refusing to replace it" >&2; exit 64
fi
# one writer at a time per directory: a write left running by a killed client finishes before the next starts
if command -v flock >/dev/null 2>&1; then
  exec 9<"$dir"
  flock -w 60 9 || { echo "another write in $dir did not finish within 60 s" >&2; exit 75; }
fi
tmp=$(mktemp "$dir/.remotectl.$$.XXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT HUP INT TERM PIPE
chmod "$mode" "$tmp"
cat > "$tmp"
got=$(sha256sum < "$tmp"); got=${got%% *}
if [ "$got" != "$want" ]; then echo "content check failed (incomplete transfer)" >&2; exit 65; fi
[ -z "$owner" ] || chown -- "$owner" "$tmp"
sync -- "$tmp" 2>/dev/null || sync
# compare-and-swap, under the lock: install only over what the caller saw when it started (a writer held back
# until after a newer push must not put its older key back)
if [ -n "$expect" ]; then
  if [ -e "$target" ] || [ -L "$target" ]; then
    if now=$(sha256sum < "$target" 2>/dev/null); then now=${now%% *}; else now=unreadable; fi
  else
    now=absent
  fi
  if [ "$now" != "$expect" ]; then
    echo "now $now"
    echo "$target changed underneath" >&2
    exit 76
  fi
fi
if [ -n "$backup" ] && [ -e "$target" ]; then
  if [ -e "$backup" ]; then echo "backup $backup already exists" >&2; exit 73; fi
  cp --preserve=ownership,timestamps -- "$target" "$backup"
fi
mv -f -- "$tmp" "$target"
trap - EXIT HUP INT TERM PIPE
sync -- "$dir" 2>/dev/null || true
info=$(stat -L -c "%s %a %U %G" -- "$target")
sum=$(sha256sum < "$target"); sum=${sum%% *}
echo "file $info $sum -"
}
"""

_WRITE_SCRIPT = _WRITE_FUNCTION + r"""
set -eu
write_atomic "$@"
"""


def _sh(runner: Runner, script: str, *args: str, stdin: Optional[bytes] = None, timeout: float = 60) -> CommandResult:
    return runner.run(["sh", "-c", script, "remotectl", *args], stdin=stdin, timeout=timeout)


class ChangedUnderneath(TransportError):
    """The target no longer held what the write was conditional on; nothing was written."""

    def __init__(self, message: str, now: Optional[str]) -> None:
        super().__init__(message)
        self.now = now  # `sha256:<hex>` of what the target holds now, or None (absent or unreadable)


def expected_state(state: Optional[FileFacts]) -> str:
    """What write_file_atomic's `expect` is for a target last seen in `state`: its sha256, `absent` or
    `unreadable`."""
    if state is None or not state.exists:
        return "absent"
    return state.sha256 or "unreadable"


def write_file_atomic(
    runner: Runner,
    path: str,
    data: bytes,
    *,
    mode: int = 0o400,
    owner: Optional[str] = None,
    backup_path: Optional[str] = None,
    expect: Optional[str] = None,
) -> FileFacts:
    """Replace path with data atomically (see module docstring). owner is `user[:group]`. With `expect`
    (expected_state() of what the caller saw), only if path still holds that, checked under the directory lock
    just before the rename; otherwise nothing is written and ChangedUnderneath says what is there now.
    Returns the state of the installed file as read back from disk after the rename (sha256 of what is now at
    `path`, mode, owner), in the same round trip."""
    want = hashlib.sha256(data).hexdigest()
    result = _sh(runner, _WRITE_SCRIPT, path, f"{mode:o}", owner or "", want, backup_path or "", expect or "",
                 stdin=data)
    return _written(runner, path, result, result.stdout.splitlines(), conditional=bool(expect))


def _written(runner: Runner, path: str, result: CommandResult, lines: Sequence[str], *,
             conditional: bool) -> FileFacts:
    """What write_atomic's exit status and its lines of stdout say: the installed file, or why there is none."""
    if result.rc == _CHANGED_UNDERNEATH and conditional:
        now = next((line[4:].strip() for line in lines if line.startswith("now ")), "")
        digest = f"sha256:{now}" if _SHA256.fullmatch(now) else None
        shown = digest or {"absent": "no file", "unreadable": "an unreadable file"}.get(now, "something else")
        raise ChangedUnderneath(f"{runner.name}: {path} changed underneath: it now holds {shown}", digest)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot write {path}: {result.first_error_line()}")
    for line in lines:
        if line.startswith("file "):
            return _parse_state(runner, path, line)
    raise TransportError(f"{runner.name}: wrote {path} but the installed file was not reported back")


# A shell function: remove `.remotectl.*` temp files in directory $1 whose writer is gone, print their names.
# The writer's pid is part of the name (see _WRITE_SCRIPT); names without one are stale after 15 idle minutes.
_STALE_TEMPS_FUNCTION = r"""
remove_stale_temps() {
  # variables are global in sh: every name here starts with st_ so the caller's are left alone
  for st_f in "$1"/.remotectl.*; do
    [ -e "$st_f" ] || [ -L "$st_f" ] || continue
    st_base=${st_f##*/}
    st_rest=${st_base#.remotectl.}
    st_pid=${st_rest%%.*}
    case $st_pid in
      ''|*[!0-9]*|"$st_rest")
        st_mtime=$(stat -c %Y -- "$st_f") || continue
        [ -n "${st_now:-}" ] || st_now=$(date +%s)
        [ $((st_now - st_mtime)) -ge 900 ] || continue ;;
      *)
        if kill -0 "$st_pid" 2>/dev/null || [ -d "/proc/$st_pid" ]; then continue; fi ;;
    esac
    rm -f -- "$st_f" && printf 'removed %s\n' "$st_base"
  done
}
"""

_STATES_FUNCTION = r"""
file_states() {
  # file_states READER CLEAN PATH...: one line per path, "file SIZE MODE OWNER GROUP SHA256|- yes|no|-" or
  # "missing", preceded by "removed NAME" lines when CLEAN=yes removed stale temp files next to it
  fs_reader=$1 fs_clean=$2; shift 2
  fs_check=no
  if [ -n "$fs_reader" ] && [ "$(id -u)" = 0 ] && id -u -- "$fs_reader" >/dev/null 2>&1 \
     && command -v runuser >/dev/null 2>&1; then fs_check=yes; fi
  for fs_f in "$@"; do
    if [ "$fs_clean" = yes ]; then
      fs_d=$(dirname -- "$fs_f")
      if [ -d "$fs_d" ]; then remove_stale_temps "$fs_d"; fi
    fi
    if [ -e "$fs_f" ] && [ ! -f "$fs_f" ]; then  # never hash a FIFO (hangs) or a device (endless)
      if [ -d "$fs_f" ]; then fs_last="notfile directory"; elif [ -p "$fs_f" ]; then fs_last="notfile fifo"
      elif [ -c "$fs_f" ]; then fs_last="notfile char"; elif [ -b "$fs_f" ]; then fs_last="notfile block"
      else fs_last="notfile other"; fi
    elif fs_info=$(stat -L -c "%s %a %U %G" -- "$fs_f" 2>/dev/null); then
      fs_sum=-
      if [ -r "$fs_f" ] && fs_out=$(sha256sum < "$fs_f" 2>/dev/null); then fs_sum=${fs_out%% *}; fi
      fs_can=-
      if [ "$fs_check" = yes ]; then
        if runuser -u "$fs_reader" -- test -r "$fs_f" 2>/dev/null; then fs_can=yes; else fs_can=no; fi
      fi
      fs_last="file $fs_info $fs_sum $fs_can"
    else
      fs_last="missing"
    fi
    echo "$fs_last"
  done
}
"""

_STATES_SCRIPT = _STALE_TEMPS_FUNCTION + _STATES_FUNCTION + r"""
file_states "$@"
exit 0
"""

# host_probe USER GROUP NREAD FILE... NTOOLS TOOL... READER CLEAN PATH...; leaves pr_root and pr_account (yes|no)
# and fs_last (the last state line) for a script that goes on (_PUSH_SCRIPT)
_PROBE_FUNCTION = r"""
host_probe() {
PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"
user=$1 group=$2 n=$3; shift 3
if [ "$(id -u)" = 0 ]; then pr_root=yes; else pr_root=no; fi
echo "root $pr_root"
pr_account=no
if [ -n "$user" ] && id -u -- "$user" >/dev/null 2>&1 && getent group -- "$group" >/dev/null 2>&1; then
  pr_account=yes; fi
echo "account $pr_account"
i=0
while [ "$i" -lt "$n" ]; do
  f=$1; shift; i=$((i + 1))
  if [ -f "$f" ] && [ -r "$f" ]; then printf 'read %s ' "$i"; head -c 262144 -- "$f" | base64 | tr -d '\n'; echo
  else echo "noread $i"; fi
done
n=$1; shift; i=0; found=no
while [ "$i" -lt "$n" ]; do
  tool=$1; shift; i=$((i + 1))
  if [ "$found" = no ] && command -v "$tool" >/dev/null 2>&1; then
    found=yes; printf 'version '; "$tool" --version 2>&1 | head -n 1
  fi
done
echo "states"
file_states "$@"
}
"""

_PROBE_SCRIPT = _STALE_TEMPS_FUNCTION + _STATES_FUNCTION + _PROBE_FUNCTION + r"""
host_probe "$@"
exit 0
"""

# probe_and_write TARGET MODE OWNER WANT BACKUP_PREFIX DEFER_ON, then host_probe's arguments (one path: TARGET).
# The rule of actions.authkey.push._decide, on the host, so that probe and write are one round trip: nothing to do
# when the key, its mode and (when the probe says it can be given: root, the account exists) its owner are
# right; else the write, over what the probe saw (compare-and-swap). When an env file it read names DEFER_ON
# (PCMK_authkey_location) outside a comment, the key may belong elsewhere: it writes nothing and lets the caller
# decide (pacemaker.authkey.key_location reads the file; this only has to err on the side of deferring).
_PUSH_SCRIPT = _STALE_TEMPS_FUNCTION + _STATES_FUNCTION + _PROBE_FUNCTION + _WRITE_FUNCTION + r"""
pw_target=$1 pw_mode=$2 pw_owner=$3 pw_want=$4 pw_prefix=$5 pw_defer_on=$6; shift 6
fs_last=
host_probe "$@" </dev/null
pw_defer=no
if [ -n "$pw_defer_on" ]; then
  pw_n=$3; shift 3; pw_i=0
  while [ "$pw_i" -lt "$pw_n" ]; do
    # a line naming it that is not plainly a comment (printable ASCII after # or ;), after Python's line breaks
    # too, in the whole file (the probe reads 256 KiB: more lines can only defer more)
    if [ -f "$1" ] && [ -r "$1" ] && tr '\r\013\014\034\035\036' '\n\n\n\n\n\n' < "$1" \
       | grep -F -- "$pw_defer_on" | LC_ALL=C grep -qv '^[[:space:]]*[#;][ -~[:space:]]*$'; then pw_defer=yes; fi
    shift; pw_i=$((pw_i + 1))
  done
fi
set -f; set -- $fs_last; set +f
pw_kind=${1:-} pw_sum=- pw_fmode= pw_fown=
if [ "$pw_kind" = file ]; then pw_fmode=$3 pw_fown=$4:$5 pw_sum=$6; fi
case $pw_kind in
  missing) pw_expect=absent ;;
  file) if [ "$pw_sum" = - ]; then pw_expect=unreadable; else pw_expect=$pw_sum; fi ;;
  *) pw_expect=unreadable ;;
esac
if [ "$pr_root" = yes ] && [ "$pr_account" = yes ]; then pw_own=$pw_owner; else pw_own=; fi
if [ "$pw_defer" = yes ]; then cat >/dev/null; echo "push deferred"; exit 0; fi
if [ "$pw_sum" = "$pw_want" ] && [ "$pw_fmode" = "$pw_mode" ] && { [ -z "$pw_own" ] || [ "$pw_fown" = "$pw_own" ]; }
then cat >/dev/null; echo "push unchanged"; exit 0; fi
pw_backup=
if [ -n "$pw_prefix" ] && [ "$pw_kind" != missing ] && [ "$pw_sum" != "$pw_want" ]; then
  if [ "$pw_sum" = - ]; then pw_backup=$pw_prefix-unreadable; else pw_backup=$pw_prefix-$(printf %.12s "$pw_sum"); fi
fi
echo "push write ${pw_backup:--}"
set -eu
write_atomic "$pw_target" "$pw_mode" "$pw_own" "$pw_want" "$pw_backup" "$pw_expect"
"""

_RESTORE_SCRIPT = r"""
set -eu
source=$1 target=$2
dir=$(dirname -- "$target")
umask 077
[ -f "$source" ] || { echo "$source does not exist" >&2; exit 66; }
if command -v flock >/dev/null 2>&1; then
  exec 9<"$dir"
  flock -w 60 9 || { echo "another write in $dir did not finish within 60 s" >&2; exit 75; }
fi
tmp=$(mktemp "$dir/.remotectl.$$.XXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT HUP INT TERM PIPE
cp -p -- "$source" "$tmp"
sync -- "$tmp" 2>/dev/null || sync
mv -f -- "$tmp" "$target"
trap - EXIT HUP INT TERM PIPE
sync -- "$dir" 2>/dev/null || true
"""


class StateList(list):
    """A list of FileFacts that also says which stale temp files were removed on the way."""

    def __init__(self) -> None:
        super().__init__()
        self.removed_temps: List[str] = []


_KINDS = {"directory": "a directory", "fifo": "a FIFO", "char": "a character device", "block": "a block device",
          "other": "a socket or other special file"}


def _parse_state(runner: Runner, path: str, line: str) -> FileFacts:
    fields = line.split()
    if fields[0] == "missing":
        return FileFacts(path, exists=False)
    if fields[0] == "notfile" and len(fields) == 2:
        return FileFacts(path, True, readable=False, kind=_KINDS.get(fields[1], "not a regular file"))
    if fields[0] != "file" or len(fields) != 7:
        raise TransportError(f"{runner.name}: unexpected answer while inspecting {path}: {line[:80]!r}")
    _, size, mode, owner, group, digest, can = fields
    return FileFacts(path, True, int(size), int(mode, 8), owner, group, None if digest == "-" else digest,
                           readable=digest != "-", reader_can_read={"yes": True, "no": False}.get(can))


def _parse_states(runner: Runner, paths: Sequence[str], lines: Iterable[str]) -> StateList:
    """From lines (an iterator is left just after the last state line)."""
    states = StateList()
    stream = iter(lines)
    for path in paths:
        for line in stream:
            if line.startswith("removed "):
                states.removed_temps.append(line[len("removed "):])
                continue
            states.append(_parse_state(runner, path, line))
            break
        else:
            raise TransportError(f"{runner.name}: incomplete answer while inspecting {path}")
    return states


def file_states(runner: Runner, paths: Sequence[str], *, reader: Optional[str] = None,
                clean_temps: bool = False) -> StateList:
    """file_state() for several paths in one round trip. With `reader`, also whether that user can open each
    file (tested as that user with runuser, so directories, groups and ACLs count; needs root), in
    `reader_can_read`. With `clean_temps`, first remove stale `.remotectl.*` temp files next to each path (left
    by a killed writer, see _STALE_TEMPS_FUNCTION); their names are in `.removed_temps` of the result."""
    result = _sh(runner, _STATES_SCRIPT, reader or "", "yes" if clean_temps else "no", *paths)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot inspect {', '.join(paths)}: {result.first_error_line()}")
    return _parse_states(runner, paths, result.stdout.splitlines())


@dataclass(frozen=True)
class HostProbe:
    """What host_probe() learnt in one round trip (nothing secret)."""

    root: bool
    account: bool  # the user and the group asked about both exist
    files: dict  # path → bytes of the small file read, or None when missing/unreadable
    version_line: Optional[str]  # first line of `<tool> --version` of the first tool found
    states: StateList


def _probe_args(user: str, group: str, read: Sequence[str], version_tools: Sequence[str], paths: Sequence[str],
                reader: Optional[str], clean_temps: bool) -> List[str]:
    return [user, group, str(len(read)), *read, str(len(version_tools)), *version_tools, reader or "",
            "yes" if clean_temps else "no", *paths]


def host_probe(runner: Runner, *, user: str = "", group: str = "", read: Sequence[str] = (),
               version_tools: Sequence[str] = (), paths: Sequence[str] = (), reader: Optional[str] = None,
               clean_temps: bool = False) -> HostProbe:
    """One round trip: are we root, do `user` and `group` exist, the content of small non-secret text files
    (up to 256 KiB each, e.g. /etc/default/pacemaker), the first line of `--version` of the first of
    `version_tools` found, and file_states() of `paths` (with `reader` and `clean_temps` as there)."""
    result = _sh(runner, _PROBE_SCRIPT, *_probe_args(user, group, read, version_tools, paths, reader, clean_temps))
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot inspect the host: {result.first_error_line()}")
    return _parse_probe(runner, read, paths, iter(result.stdout.splitlines()))


def _parse_probe(runner: Runner, read: Sequence[str], paths: Sequence[str], stream: Iterator[str]) -> HostProbe:
    """host_probe's answer from stream, which is left just after it."""
    import base64

    root = account = False
    contents: dict = {path: None for path in read}
    version = None
    for line in stream:
        word, _, rest = line.partition(" ")
        if word == "root":
            root = rest == "yes"
        elif word == "account":
            account = rest == "yes"
        elif word == "read":
            number, _, payload = rest.partition(" ")
            contents[read[int(number) - 1]] = base64.b64decode(payload)
        elif word == "version":
            version = rest.strip() or None
        elif word == "states":
            states = _parse_states(runner, paths, stream)
            break
    else:
        raise TransportError(f"{runner.name}: incomplete answer while inspecting the host")
    return HostProbe(root, account, contents, version, states)


@dataclass(frozen=True)
class ProbeWrite:
    """What probe_and_write did on one host, in one round trip."""

    probe: HostProbe  # as host_probe() with paths=[path]: the state before any write
    action: str  # "unchanged" (nothing to do), "deferred" (an env file may move the key: nothing written), "write"
    backup: Optional[str] = None  # where the replaced file was kept (action "write")
    installed: Optional[FileFacts] = None  # the file read back after the rename
    failure: Optional[TransportError] = None  # why the write did not happen (ChangedUnderneath among others)


def probe_and_write(runner: Runner, path: str, data: bytes, *, mode: int, owner: str, user: str, group: str,
                    read: Sequence[str] = (), defer_on: str = "", backup_prefix: str = "",
                    clean_temps: bool = True) -> ProbeWrite:
    """host_probe() of `path` and, in the same script, write_file_atomic() of data there unless it already holds
    it with `mode` and (when root and `user`/`group` exist there) `owner`, conditional on what the probe saw.
    A replaced file is kept as `<backup_prefix>-<first 12 hex digits of its sha256, or unreadable>` (model's
    backup_name). Content on stdin only; one SSH command, so one shell start-up and one round trip."""
    want = hashlib.sha256(data).hexdigest()
    result = _sh(runner, _PUSH_SCRIPT, path, f"{mode:o}", owner, want, backup_prefix, defer_on,
                 *_probe_args(user, group, read, (), [path], None, clean_temps), stdin=data)
    stream = iter(result.stdout.splitlines())
    try:
        probe = _parse_probe(runner, read, [path], stream)
        word, _, action = next(stream, "").partition(" ")
    except TransportError:
        if result.rc != 0:
            raise TransportError(f"{runner.name}: cannot inspect the host: {result.first_error_line()}") from None
        raise
    if word != "push" or (result.rc != 0 and not action.startswith("write ")):
        raise TransportError(f"{runner.name}: cannot inspect the host: {result.first_error_line()}")
    if action in ("unchanged", "deferred"):
        return ProbeWrite(probe, action)
    if not action.startswith("write "):
        raise TransportError(f"{runner.name}: unexpected answer while writing {path}: {action[:80]!r}")
    backup = action[len("write "):] if action != "write -" else None
    try:
        return ProbeWrite(probe, "write", backup, _written(runner, path, result, list(stream), conditional=True))
    except TransportError as exc:
        return ProbeWrite(probe, "write", backup, failure=exc)


def restore_file_atomic(runner: Runner, source: str, target: str) -> None:
    """Atomically replace target with a copy of source on the same host (e.g. a backup), keeping the source's
    mode and owner; the copy is private until it is complete. The content never leaves the host."""
    result = _sh(runner, _RESTORE_SCRIPT, source, target)
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot restore {target} from {source}: {result.first_error_line()}")


def remove_file(runner: Runner, path: str) -> None:
    result = runner.run(["rm", "-f", "--", path])
    if result.rc != 0:
        raise TransportError(f"{runner.name}: cannot remove {path}: {result.first_error_line()}")
