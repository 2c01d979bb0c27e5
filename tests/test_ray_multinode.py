"""A sweep on a real two-node Ray cluster survives the loss of a node.

Two Ray nodes run on this machine as separate process trees started with the venv's ``ray start
--block`` (a head and a worker, one CPU each, each with its own temp dir and free ports, no
dashboard UI, token authentication off) and with separate ``COMMSIM_HOME`` folders; a
``commsim sweep --executor ray --ray-address`` driver (a third ``COMMSIM_HOME``) joins them. The
sweep's channel, a user channel file that every task imports, leaves a mark per transmission named
after the node it runs on (its ``COMMSIM_HOME``); on the worker node it lets the first point through
and hangs in the second, on the head each point waits for the test's release. The test SIGKILLs the
worker node's whole process group (its raylet, agents and workers) once that second point is in
flight, with the others still to run, then releases the head. The sweep must finish on the head
with every point exactly once, exit 0, and leave no process of either node behind.
"""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from processes import alive, wait_for

pytest.importorskip("ray", reason="Ray is not installed (pip install 'commsim[ray]')")
RAY_CLI = Path(sys.executable).with_name("ray")
pytestmark = [
    pytest.mark.skipif(not RAY_CLI.exists(), reason=f"no `ray` command next to {sys.executable}"),
    pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads processes from /proc (Linux)"),
]

from commsim.core.workers import reaped_with_this_process
from commsim.sweep import time_limit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["codec", "value", "train_eps", "seed"]
HARD_TIMEOUT = 150
"""Seconds after which the test fails (and tears the cluster down) whatever it waits for."""
START_TIMEOUT = 60
"""Seconds a node may take to start on a loaded machine (about 5 s when quiet)."""
HEALTH_CHECKS = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
"""The GCS declares a node dead after 3 failed health checks 1 s apart (Ray's default: 5, 3 s apart),
so that the test waits about 3 s, not 15, for the tasks that were on the killed node to be retried.
A killed raylet fails each check at once; a live one on a loaded machine has Ray's default 10 s to
answer each (no false death of the head)."""
PRELOAD = {"RAY_preload_python_modules": "commsim.ray_executor"}
"""Ray's workers import commsim (and torch) as they start, before their first task: a few seconds
less in each node's first task."""
GATED_CHANNEL = '''
import os
import time
import uuid
from pathlib import Path

from commsim.channels import BSC

MARKS = Path({marks!r})
RELEASE = Path({release!r})


class Gated(BSC):
    """A BSC that leaves a mark per transmission named after its node (the node's COMMSIM_HOME's
    folder): on the worker node the first transmission passes and the next ones hang (until the node
    is killed); on the head each waits for the test's release (given once the worker node is dead)."""

    def transmit(self, bits, generator, eps):
        node = Path(os.environ["COMMSIM_HOME"]).name
        earlier = list(MARKS.glob(node + "-*"))
        (MARKS / f"{{node}}-{{os.getpid()}}-{{uuid.uuid4().hex}}").touch()
        while (node == "worker" and earlier) or (node == "head" and not RELEASE.exists()):
            time.sleep(0.05)
        return super().transmit(bits, generator, eps)


channel = Gated()
'''


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that nothing listens on now (held together while chosen)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def node_command(temp: Path, ports: list[int], head_port: int, head: bool) -> list[str]:
    """``ray start --block`` for one node: one CPU, a small object store, its own temp dir and (free)
    ports, as a head (its GCS on ``head_port``) or joining the one at ``head_port``. (Ray turns
    ``--node-ip-address 127.0.0.1`` into this machine's own address, the one other machines would
    reach, and its servers listen on all interfaces: a loopback-only cluster is not on offer.)"""
    args = [str(RAY_CLI), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
            "--object-store-memory", str(100 * 2**20), "--temp-dir", str(temp), "--disable-usage-stats",
            "--include-log-monitor", "false",  # (it streams workers' output to drivers: they ignore it)
            "--node-manager-port", str(ports[0]), "--object-manager-port", str(ports[1]),
            "--dashboard-agent-listen-port", str(ports[2]), "--dashboard-agent-grpc-port", str(ports[3]),
            "--runtime-env-agent-port", str(ports[4]), "--metrics-export-port", str(ports[5])]
    if head:  # the head's (minimal) dashboard process still binds a port: a free one, not 8265
        return [*args, "--head", "--port", str(head_port), "--include-dashboard", "false",
                "--dashboard-port", str(ports[6])]
    return [*args, "--address", f"127.0.0.1:{head_port}"]


def driver_env(home: Path) -> dict[str, str]:
    """The environment of a process of this test: its own ``COMMSIM_HOME``, this checkout's commsim,
    one torch thread, no token authentication (a test cluster on one machine) and no usage stats."""
    return {**os.environ, "COMMSIM_HOME": str(home), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
            "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def node_env(home: Path) -> dict[str, str]:
    """A node's environment (its processes and tasks inherit it): as a driver's, and Ray's settings
    for this test (:data:`HEALTH_CHECKS`, :data:`PRELOAD`, workers at normal priority)."""
    return {**driver_env(home), **HEALTH_CHECKS, **PRELOAD,
            "RAY_worker_niceness": "0"}  # (Ray's default 15 starves the tasks next to other jobs)


def processes_of(markers: list[bytes]) -> dict[int, str]:
    """Live processes (not zombies, not this one) whose environment or command line holds one of ``markers``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if any(m in env or m in cmd for m in markers) and alive(int(entry)):
            found[int(entry)] = cmd.replace(b"\0", b" ").decode(errors="replace")[:100]
    return found


def wait_started(node: subprocess.Popen, log: Path, what: str, timeout: float) -> None:
    def up():
        if node.poll() is not None:
            raise AssertionError(f"the {what} node exited ({node.returncode}):\n{log.read_text()[-3000:]}")
        return "Ray runtime started" in log.read_text(errors="replace")
    assert wait_for(up, timeout), f"the {what} node did not start in {timeout} s:\n{log.read_text()[-3000:]}"


@pytest.mark.slow  # 17 s: the default run's 3-minute budget is full (session 6); `pytest -m slow` runs it
def test_sweep_survives_a_killed_worker_node(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="cs-rn-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    homes = {name: tmp_path / name for name in ("head", "worker", "driver")}
    marks = tmp_path / "marks"
    marks.mkdir()
    release = tmp_path / "release"
    (tmp_path / "gated.py").write_text(GATED_CHANNEL.format(marks=str(marks), release=str(release)))
    data = tmp_path / "digits.npz"
    with np.load(ROOT / "commsim" / "data" / "mnist10k.npz") as digits:
        np.savez(data, images=digits["images"][:600], labels=digits["labels"][:600])
    # what a node's processes carry in their environment (its COMMSIM_HOME) or command line (its temp dir)
    marked = {n: [f"COMMSIM_HOME={homes[n]}".encode(), f"{base / n}/".encode()] for n in ("head", "worker")}
    ours = marked["head"] + marked["worker"]
    nodes: dict[str, subprocess.Popen] = {}
    logs = {name: tmp_path / f"{name}.log" for name in ("head", "worker", "driver")}
    ports = free_ports(14)  # all at once: distinct
    head_port = ports.pop()
    out = tmp_path / "out"
    # every process started in this block is tagged, and killed when it ends (or if pytest dies)
    with time_limit(HARD_TIMEOUT, "the multi-node test"), reaped_with_this_process(scratch=str(base)):
        try:
            for name in ("head", "worker"):  # in parallel: the worker waits for the head's GCS
                with open(logs[name], "wb") as log:
                    nodes[name] = subprocess.Popen(node_command(base / name, ports[:7] if name == "head" else ports[7:],
                                                                head_port, name == "head"),
                                                   env=node_env(homes[name]), stdout=log, stderr=subprocess.STDOUT,
                                                   start_new_session=True)  # its own process group: killed at once
            wait_started(nodes["head"], logs["head"], "head", START_TIMEOUT)
            args = [sys.executable, "-m", "commsim.cli", "sweep", "--codec", "necst",
                    "--channel", f"{tmp_path / 'gated.py'}:channel", "--eps", "0.05,0.1,0.2", "--train-eps", "0.1,0.2",
                    "--seeds", "2", "--bits", "8", "--epochs", "1", "--dataset", "npz", "--data-path", str(data),
                    "--executor", "ray", "--ray-address", f"127.0.0.1:{head_port}", "--out", str(out)]
            with open(logs["driver"], "wb") as log:
                driver = subprocess.Popen(args, env=driver_env(homes["driver"]), stdout=log, stderr=subprocess.STDOUT)
            nodes["driver"] = driver
            # (the driver starts as the worker node joins: the gates order the tasks whenever it does)
            wait_started(nodes["worker"], logs["worker"], "worker", START_TIMEOUT)

            def worker_hangs():
                assert driver.poll() is None, logs["driver"].read_text()[-3000:]
                return len(list(marks.glob("worker-*"))) >= 2
            assert wait_for(worker_hangs, 90), "no point reached the worker node:\n" + logs["driver"].read_text()[-3000:]
            csv = out / "results.csv"
            before = csv.read_text().count("\n") - 1 if csv.exists() else 0
            os.killpg(nodes["worker"].pid, signal.SIGKILL)  # the whole node: raylet, agents, workers
            assert wait_for(lambda: not processes_of(marked["worker"]), 10), processes_of(marked["worker"])
            release.touch()
            assert driver.wait(90) == 0, logs["driver"].read_text()[-3000:]
        finally:
            for name, proc in nodes.items():
                with contextlib.suppress(ProcessLookupError):
                    if name == "driver":
                        proc.kill()
                    else:
                        os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
            gone = wait_for(lambda: not processes_of(ours), 10)
    left = processes_of(ours)  # (the reaper has killed whatever was left in the block)
    assert gone and not left, f"Ray processes of this test outlived its teardown: {left}"
    assert not base.exists()

    # when the worker node died, its first point was done, its second in flight, the head's first
    # waiting, and nine more queued; all ran (the second again) on the head
    assert before <= 1
    frame = pd.read_csv(out / "results.csv")
    expected = {("necst", v, t, s) for v in (0.05, 0.1, 0.2) for t in (0.1, 0.2) for s in (0, 1)}
    got = list(frame[KEYS].itertuples(index=False, name=None))
    assert len(got) == len(expected) and set(got) == expected, sorted(got)
    assert frame["l2_per_image"].notna().all()
    by_node = {n: len(list(marks.glob(f"{n}-*"))) for n in ("head", "worker")}
    assert by_node["worker"] == 2 and by_node["head"] >= 11, by_node  # the hung point ran again on the head
    # no shared cache: the trainings' checkpoints reached the driver's, the nodes' stayed empty
    assert len(list((homes["driver"] / "checkpoints").glob("*.safetensors"))) == 2
    assert not (homes["head"] / "checkpoints").exists() and not (homes["worker"] / "checkpoints").exists()
