"""Worker processes die with their parent, even when it is killed with SIGKILL."""
import csv as csv_module
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


SLOW = '''import time

from commsim.channels import BSC


class Slow(BSC):
    def transmit(self, bits, generator, eps):
        time.sleep(0.3)
        return super().transmit(bits, generator, eps)
'''


@pytest.mark.slow  # ~11 s of process start-ups; the default run has the in-process SIGTERM test below
def test_ctrl_c_stops_a_jobs_sweep_promptly_keeps_the_rows_and_leaves_no_process(tmp_path, necst8_cache):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) on a ``--jobs 2`` sweep cancels
    the queued points: one line, exit 130 within seconds, every finished row kept, no worker left."""
    env = {**os.environ, "COMMSIM_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    (tmp_path / "slow.py").write_text(SLOW)
    necst8_cache(tmp_path / "home", 0.1)
    csv = tmp_path / "out" / "results.csv"
    args = [sys.executable, "-m", "commsim.cli", "sweep", "--codec", "necst", "--channel", f"{tmp_path / 'slow.py'}:Slow",
            "--eps", "0.01:0.4:0.01", "--train-eps", "0.1", "--jobs", "2", "--bits", "8", "--epochs", "1", "--limit", "10",
            "--out", str(tmp_path / "out")]
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731 - a background job ignores SIGINT
    driver = subprocess.Popen(args, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              preexec_fn=restore)
    kids: dict[int, str] = {}
    try:
        def rows() -> int:
            kids.update(children(driver.pid))
            return max(0, len(csv.read_text().splitlines()) - 1) if csv.exists() else 0
        assert wait_for(lambda: rows() >= 1, 120), driver.stdout.read().decode()[-2000:] if driver.poll() is not None else "slow"
        os.killpg(driver.pid, signal.SIGINT)
        assert wait_for(lambda: driver.poll() is not None, 5), "still running 5 s after Ctrl-C"
        output = driver.stdout.read().decode().replace("\r", "\n")
        errors = [line for line in output.splitlines() if line.startswith("Error") or "Traceback" in line]
        assert driver.returncode == 130 and errors == ["Error: interrupted (Ctrl-C); the rows and files finished so far "
                                                       "are kept"], output[-2000:]
        kept = list(csv_module.reader(csv.read_text().splitlines()))
        assert 1 <= len(kept) - 1 < 40 and all(len(row) == len(kept[0]) for row in kept)
        assert wait_for(lambda: not any(alive(pid) for pid in kids), 3), {p: c for p, c in kids.items() if alive(p)}
    finally:
        for pid in [driver.pid, *kids]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_a_command_in_one_line_with_exit_143(tmp_path):
    """SIGTERM during a command (here a ``ber`` run that would take hours) raises through its clean-up
    blocks and ends it with one line and exit code 143, no torn row, the previous handler restored."""
    import threading

    from click.testing import CliRunner

    from commsim.cli import cli

    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        result = CliRunner().invoke(cli, ["ber", "--code", "rep(64,64)", "--channel", "bsc", "--eps", "0.01", "--errors",
                                          "1000000000", "--max-frames", "1000000000", "--out", str(tmp_path)])
    finally:
        timer.cancel()
    assert result.exit_code == 143, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error") or "Traceback" in line]
    assert errors == ["Error: stopped (SIGTERM); the rows and files finished so far are kept"]
    assert signal.getsignal(signal.SIGTERM) == before  # the command's handler is gone with it
    csv_file = tmp_path / "ber.csv"
    assert not csv_file.exists() or csv_file.read_text().count("\n") == 1  # at most the header: no torn row
