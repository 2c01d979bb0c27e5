"""Worker processes die with their parent, even when it is killed with SIGKILL."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import commsim.core.workers
from processes import alive, wait_for

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads processes from /proc (Linux)")


def children(pid: int) -> dict[int, str]:
    """Child processes of ``pid``: ``{pid: command line}``."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            pass
    return out


def guarded(pid: int) -> bool:
    """Whether ``pid`` runs the watchdog thread (named by :func:`commsim.core.workers.die_with_parent`)."""
    try:
        return any(Path(f"/proc/{pid}/task/{t}/comm").read_text().strip() == commsim.core.workers.WATCHDOG_NAME
                   for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return False


def test_watchdog_alone_ends_an_orphan():
    """Without the Linux parent-death signal, the watchdog thread still ends the process (portable path)."""
    child = (f"import importlib.util, os, time\n"
             f"spec = importlib.util.spec_from_file_location('w', {commsim.core.workers.__file__!r})\n"
             f"w = importlib.util.module_from_spec(spec); spec.loader.exec_module(w)\n"
             f"w.PR_SET_PDEATHSIG = -1  # an invalid prctl option: no signal is armed\n"
             f"w.die_with_parent(os.getppid()); time.sleep(60)\n")
    parent = (f"import subprocess, sys, time\n"
              f"p = subprocess.Popen([sys.executable, '-c', {child!r}])\n"
              f"print(p.pid, flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        orphan = int(proc.stdout.readline())
        assert wait_for(lambda: guarded(orphan), 30), "the child never started its watchdog"
        proc.kill()
        proc.wait()
        assert wait_for(lambda: not alive(orphan), 3 * commsim.core.workers.POLL_SECONDS + 2)
    finally:
        if alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def test_sweep_workers_die_with_a_killed_driver(tmp_path):
    """``kill -9`` of a ``--jobs 2`` sweep: its workers and the multiprocessing resource tracker (all
    children of the driver) are gone within seconds."""
    env = {**os.environ, "COMMSIM_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "commsim.cli", "sweep", "--codec", "pca+rep", "--eps", "0.05:0.3:0.05", "--jobs", "2",
            "--bits", "100", "--limit", "100", "--out", str(tmp_path / "out")]
    driver = subprocess.Popen(args, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids: dict[int, str] = {}
    try:
        def workers_guarded():
            kids.update(children(driver.pid))
            return sum("spawn_main" in cmd and guarded(pid) for pid, cmd in kids.items()) == 2
        assert wait_for(workers_guarded, 120), f"no two guarded workers: {kids}"
        driver.kill()
        driver.wait()
        assert wait_for(lambda: not any(alive(pid) for pid in kids), 3), \
            {pid: cmd for pid, cmd in kids.items() if alive(pid)}
    finally:
        for pid in [driver.pid, *kids]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
