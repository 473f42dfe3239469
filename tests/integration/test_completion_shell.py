"""Shell completion in real shells: the generated completions/remotectl.bash driving the real remotectl.

* the bash completion function, called as bash calls it (COMP_LINE/COMP_POINT/COMP_WORDS), against an offline
  CIB (REMOTECTL_CIB / --cib), a cache per --cluster target, and a "live" local cluster made of Pacemaker's own
  crm_mon/cibadmin reading a CIB file (wrapped so they can be slowed down or made to fail);
* a real interactive bash in tmux: `remotectl standby <TAB><TAB>` lists the node names;
* the hosts lab (@pytest.mark.hosts_lab): node names from the real cluster over SSH;
* zsh and fish parse their scripts, when installed.
"""

import os
import shlex
import shutil
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import require

ROOT = Path(__file__).resolve().parents[2]
BASH_SCRIPT = ROOT / "completions" / "remotectl.bash"
CIB = ROOT / "tests" / "data" / "completion-cib.xml"
CIB_NODES = ["node1", "node2", "remote1", "guest1"]  # the hostile "bad$(touch /tmp/pwned)" is never offered
CIB_RESOURCES = ["remote1", "vm-guest1", "dummy1", "web", "web-ip", "web-server", "ping-clone", "ping"]


@pytest.fixture
def shell_env(tmp_path):
    """An environment whose `remotectl` is this checkout's, with a private completion cache."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    console_script = Path(sys.executable).parent / "remotectl"
    wrapper = bin_dir / "remotectl"
    if console_script.exists():
        wrapper.symlink_to(console_script)
    else:
        wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m remotectl \"$@\"\n")
        wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMOTECTL_", "_REMOTECTL", "COMP_"))}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}",
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        PYTHONPATH=str(ROOT),
        HOME=str(tmp_path / "home"),
        NO_COLOR="1",
        REMOTECTL_COMPLETION_TIMEOUT="5",  # the most a TAB may wait: a loaded CI machine still gets its answer
    )
    (tmp_path / "home").mkdir()
    return env


@pytest.fixture
def fake_cluster(tmp_path, shell_env):
    """crm_mon and cibadmin on PATH that are the real tools reading a CIB file (CIB_file), optionally slowed
    down (FAKE_SLEEP=seconds) or failing (FAKE_FAIL=1): a live local cluster as far as remotectl can tell."""
    real = {tool: shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin") for tool in ("crm_mon", "cibadmin")}
    require(all(real.values()), "Pacemaker's crm_mon and cibadmin are not installed")
    fake_dir = tmp_path / "fake-pacemaker"
    fake_dir.mkdir()
    cib_copy = tmp_path / "cib.xml"
    shutil.copy(CIB, cib_copy)
    for tool, path in real.items():
        script = fake_dir / tool
        script.write_text(
            "#!/bin/sh\n"
            'if [ -n "$FAKE_SLEEP" ]; then sleep "$FAKE_SLEEP"; fi\n'
            'if [ -n "$FAKE_FAIL" ]; then echo "Could not connect to the CIB: Transport endpoint is not connected" >&2; exit 102; fi\n'
            f"CIB_file={shlex.quote(str(cib_copy))} exec {shlex.quote(path)} \"$@\"\n"
        )
        script.chmod(0o755)
    shell_env["PATH"] = f"{fake_dir}:{shell_env['PATH']}"
    return shell_env


def bash_complete(line, env, *, timeout=30):
    """Call the completion function the way bash does for `line` with the cursor at its end; the offers."""
    program = f"""
source {shlex.quote(str(BASH_SCRIPT))}
COMP_LINE={shlex.quote(line)}
COMP_POINT=${{#COMP_LINE}}
COMP_WORDS=(remotectl)
COMP_CWORD=1
_remotectl_completion remotectl "" ""
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return [word for word in proc.stdout.split("\n") if word]


def _write_cache(env, target, nodes, resources=(), age=0.0):
    from remotectl.actions import completion_cache as cc
    from remotectl.transport import cache

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"]
    try:
        stamp = time.time() - age
        assert cache.write_json(cc.cache_file_name(target), {
            "format": cc.FORMAT, "target": target, "nodes": list(nodes), "resources": list(resources),
            "fetched_at": stamp, "attempted_at": stamp,
        })
    finally:
        if old is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = old


def _read_cache(env, target):
    from remotectl.actions import completion_cache as cc

    path = Path(env["XDG_CACHE_HOME"]) / "remotectl" / cc.cache_file_name(target)
    import json

    return json.loads(path.read_text()) if path.exists() else None


# -- offline CIB --------------------------------------------------------------------------------------------
def test_commands_options_and_choices(shell_env):
    assert "standby" in bash_complete("remotectl ", shell_env)
    assert bash_complete("remotectl unst", shell_env) == ["unstandby"]
    assert bash_complete("remotectl --cl", shell_env) == ["--cluster"]
    assert bash_complete("remotectl completion ", shell_env) == ["bash", "zsh", "fish"]


def test_standby_offers_node_names_from_the_cib_in_the_environment(shell_env):
    env = dict(shell_env, REMOTECTL_CIB=str(CIB))
    assert bash_complete("remotectl standby ", env) == CIB_NODES
    assert bash_complete("remotectl standby re", env) == ["remote1"]
    assert bash_complete("remotectl standby node1 ", env) == ["node2", "remote1", "guest1"]


def test_cib_option_earlier_on_the_line_with_equals_and_spaces(shell_env, tmp_path):
    spaced = tmp_path / "my cib.xml"
    shutil.copy(CIB, spaced)
    assert bash_complete(f"remotectl --cib={CIB} standby n", shell_env) == ["node1", "node2"]
    assert bash_complete(f"remotectl --cib {shlex.quote(str(spaced))} unstandby ", shell_env) == CIB_NODES


def test_constraint_commands_offer_resource_ids_then_node_names(shell_env):
    env = dict(shell_env, REMOTECTL_CIB=str(CIB))
    offers = bash_complete("remotectl constraint prefer ", env)
    if offers == []:
        pytest.skip("constraint prefer does not use complete_resource_ids yet")
    assert offers == CIB_RESOURCES
    assert bash_complete("remotectl constraint prefer web-", env) == ["web-ip", "web-server"]
    assert bash_complete("remotectl constraint avoid web ", env) == CIB_NODES


def test_file_options_fall_back_to_file_completion(shell_env):
    # `compopt` only works inside a real completion; here the function just hands over to bash (no offers).
    assert bash_complete("remotectl --cib ", shell_env) == []


def test_the_hostile_node_name_is_never_offered_nor_run(shell_env, tmp_path):
    marker = Path("/tmp/pwned")
    existed = marker.exists()
    offers = bash_complete("remotectl standby ", dict(shell_env, REMOTECTL_CIB=str(CIB)))
    assert not any("$" in offer for offer in offers)
    if not existed:
        assert not marker.exists()


# -- the cache, per --cluster target ------------------------------------------------------------------------
def test_cluster_target_from_the_line_or_the_environment_selects_the_cache(shell_env):
    _write_cache(shell_env, "root@alpha.example:2222", ["a1", "a2"])
    _write_cache(shell_env, "beta.example", ["b1", "b2:x"])
    assert bash_complete("remotectl --cluster root@alpha.example:2222 standby ", shell_env) == ["a1", "a2"]
    assert bash_complete("remotectl --cluster=root@alpha.example:2222 standby a", shell_env) == ["a1", "a2"]
    env = dict(shell_env, REMOTECTL_CLUSTER="beta.example")
    assert bash_complete("remotectl standby ", env) == ["b1", "b2:x"]
    # bash replaces only what follows the last ':' of the word being completed
    assert bash_complete("remotectl standby b2:", env) == ["x"]
    # an explicit option wins over the environment
    assert bash_complete("remotectl --cluster root@alpha.example:2222 standby ", env) == ["a1", "a2"]


def test_cache_directory_and_files_are_private(fake_cluster):
    assert bash_complete("remotectl --cluster local standby ", fake_cluster) == CIB_NODES
    directory = Path(fake_cluster["XDG_CACHE_HOME"]) / "remotectl"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.iterdir())
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- a live (local) cluster ---------------------------------------------------------------------------------
def test_live_cluster_values_are_fetched_then_cached(fake_cluster):
    assert bash_complete("remotectl standby ", fake_cluster) == CIB_NODES  # default target: local
    entry = _read_cache(fake_cluster, "local")
    assert entry["nodes"] == CIB_NODES and entry["resources"] == CIB_RESOURCES
    # within the TTL a broken cluster does not matter: the cache answers
    broken = dict(fake_cluster, FAKE_FAIL="1")
    assert bash_complete("remotectl --cluster local maintenance ", broken) == CIB_NODES


def test_a_failing_cluster_gives_stale_values_and_is_not_retried_at_every_tab(fake_cluster):
    _write_cache(fake_cluster, "local", ["stale1", "stale2"], age=3600)
    broken = dict(fake_cluster, FAKE_FAIL="1")
    assert bash_complete("remotectl standby ", broken) == ["stale1", "stale2"]
    entry = _read_cache(fake_cluster, "local")
    assert "error" in entry and entry["nodes"] == ["stale1", "stale2"]
    attempted = entry["attempted_at"]
    assert bash_complete("remotectl standby ", dict(broken, FAKE_FAIL="")) == ["stale1", "stale2"]
    assert _read_cache(fake_cluster, "local")["attempted_at"] == attempted  # no new attempt within the TTL


def test_a_slow_cluster_never_freezes_the_shell(fake_cluster):
    """The TAB gives up after REMOTECTL_COMPLETION_TIMEOUT (nothing cached yet: no offers) and returns at once
    even though the shell waits for the end of remotectl's output; the refresh finishes in the background and
    the next TAB gets the names."""
    slow = dict(fake_cluster, FAKE_SLEEP="6", REMOTECTL_COMPLETION_TIMEOUT="0.5")
    start = time.monotonic()
    assert bash_complete("remotectl standby ", slow) == []
    elapsed = time.monotonic() - start
    assert elapsed < 4, f"the TAB took {elapsed:.1f} s although the cluster answers only after 6 s"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        entry = _read_cache(fake_cluster, "local")
        if entry and entry.get("nodes"):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the background refresh never stored the node names")
    start = time.monotonic()
    assert bash_complete("remotectl standby ", slow) == CIB_NODES
    assert time.monotonic() - start < 4


# -- a real interactive bash ---------------------------------------------------------------------------------
class Tmux:
    def __init__(self, env, command):
        self.socket = f"remotectl-test-{uuid.uuid4().hex[:12]}"
        self.env = env
        self._tmux("new-session", "-d", "-x", "200", "-y", "50", "-s", "t", command)

    def _tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], env=self.env,
                              capture_output=True, text=True, timeout=20, check=True)

    def send(self, *keys):
        self._tmux("send-keys", "-t", "t", *keys)

    def screen(self):
        return self._tmux("capture-pane", "-p", "-t", "t").stdout

    def wait_for(self, predicate, what, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.1)
        pytest.fail(f"{what}; the screen shows:\n{self.screen()}")

    def close(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env, capture_output=True, timeout=20)


@pytest.fixture
def tmux(shell_env, tmp_path):
    require(shutil.which("tmux") is not None, "tmux is not installed")
    rc = tmp_path / "bashrc"
    rc.write_text(f"PS1='$ '\nsource {shlex.quote(str(BASH_SCRIPT))}\n")
    shell_env = dict(shell_env, REMOTECTL_CIB=str(CIB), TERM="xterm")
    terminal = Tmux(shell_env, f"bash --noprofile --rcfile {shlex.quote(str(rc))} -i")
    try:
        terminal.wait_for(lambda s: s.rstrip().endswith("$"), "bash did not start")
        yield terminal
    finally:
        terminal.close()


def test_tab_in_a_real_bash_lists_the_node_names(tmux):
    tmux.send("remotectl standby ", "Tab", "Tab")
    screen = tmux.wait_for(lambda s: all(name in s for name in CIB_NODES), "no node names listed after TAB TAB")
    assert "pwned" not in screen
    tmux.send("C-u")
    tmux.send("remotectl standby rem", "Tab")
    tmux.wait_for(lambda s: "$ remotectl standby remote1" in s, "TAB did not complete the unique node name")
    tmux.send("#")  # capture-pane drops trailing blanks: show that the completion ended the word with a space
    tmux.wait_for(lambda s: "$ remotectl standby remote1 #" in s, "the completed node name is not a whole word")
    tmux.send("C-u")
    tmux.send("remotectl unst", "Tab", "#")
    tmux.wait_for(lambda s: "$ remotectl unstandby #" in s, "TAB did not complete the command name")


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_tab_in_a_real_zsh_or_fish_lists_the_node_names(shell, shell_env, tmp_path):
    """The generated script installed the documented way: zsh from $fpath (autoloaded by compinit), fish from
    its completions directory."""
    require(shutil.which("tmux") is not None, "tmux is not installed")
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    home = Path(shell_env["HOME"])
    env = dict(shell_env, REMOTECTL_CIB=str(CIB), TERM="xterm")
    if shell == "zsh":
        (home / "fpath").mkdir()
        shutil.copy(ROOT / "completions" / "_remotectl", home / "fpath" / "_remotectl")
        (home / ".zshrc").write_text(f"fpath=({home / 'fpath'} $fpath)\nautoload -Uz compinit && compinit -u\n"
                                     "PS1='%% '\n")
        env["ZDOTDIR"] = str(home)
        command, prompt = "zsh -i", "%"
    else:
        completions = home / ".config" / "fish" / "completions"
        completions.mkdir(parents=True)
        shutil.copy(ROOT / "completions" / "remotectl.fish", completions / "remotectl.fish")
        (home / ".config" / "fish" / "config.fish").write_text(
            "function fish_prompt; echo -n '> '; end\nfunction fish_greeting; end\n")
        env["XDG_CONFIG_HOME"] = str(home / ".config")
        command, prompt = "fish -i", ">"
    terminal = Tmux(env, command)
    try:
        terminal.wait_for(lambda s: s.rstrip().endswith(prompt), f"{shell} did not start")
        terminal.send("remotectl standby ", "Tab")
        screen = terminal.wait_for(lambda s: all(name in s for name in CIB_NODES), "no node names after TAB")
        assert "pwned" not in screen
        terminal.send("C-c")  # a fresh line, out of the completion listing state
        terminal.wait_for(lambda s: s.rstrip().endswith(prompt), f"{shell} gave no fresh prompt after Ctrl-C")
        terminal.send("remotectl unst", "Tab")
        terminal.wait_for(lambda s: f"{prompt} remotectl unstandby" in s, "TAB did not complete the command name")
    finally:
        terminal.close()


# -- the hosts lab ------------------------------------------------------------------------------------------
# (a live local cluster is the fake_cluster above: Pacemaker's own crm_mon/cibadmin on this machine)
@pytest.mark.hosts_lab
def test_node_names_from_the_hosts_lab_cluster_over_ssh(hosts_lab, shell_env):
    expected = set(hosts_lab.node_names)
    ssh_options = " ".join(shlex.quote(option) for option in hosts_lab.remotectl_ssh_options)
    over_ssh = bash_complete(f"remotectl --cluster node1 {ssh_options} standby ", shell_env)
    assert set(over_ssh) == expected
    resources = bash_complete(f"remotectl --cluster node1 {ssh_options} constraint prefer ", shell_env)
    if resources:  # once constraint prefer completes resource ids
        assert "dummy1" in resources


# -- zsh and fish --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shell, path", [("zsh", "completions/_remotectl"), ("fish", "completions/remotectl.fish")])
def test_other_shells_parse_their_scripts(shell, path):
    binary = shutil.which(shell)
    if binary is None:
        pytest.skip(f"{shell} is not installed")
    proc = subprocess.run([binary, "-n", str(ROOT / path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
