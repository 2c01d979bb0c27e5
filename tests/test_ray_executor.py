"""Sweeps on Ray: the same rows as the local executor, resume after the driver is killed, a worker
killed mid-task retried, and bad input refused in one line before anything starts.

The in-process tests share one embedded Ray (2 CPUs) started once for the module; data is a 600-image
slice of the embedded digits (trainings of one epoch take a fraction of a second).
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from processes import alive, wait_for

ray = pytest.importorskip("ray")

from commsim.cli import cli  # noqa: E402
from commsim.ray_executor import RayCluster, RayExecutor, TaskFailed, checkpoint_blob, store_checkpoint  # noqa: E402
from commsim.sweep import LocalExecutor, SweepSpec, run_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["codec", "value", "train_eps", "seed"]
PER_RUN = ["wall_seconds", "device", "host"]
"""Columns that differ between two runs of the same spec whatever the executor: time, where it ran."""
SLOW_CHANNEL = '''
import time
from commsim.channels import BSC

class SlowBSC(BSC):
    """A BSC that takes its time, so that a sweep can be killed mid-way."""
    def transmit(self, bits, generator, eps):
        time.sleep(0.1)
        return super().transmit(bits, generator, eps)

channel = SlowBSC()
'''
KILLS_ITS_WORKER_ONCE = '''
import os
from pathlib import Path
from commsim.channels import BSC

MARKER = Path({marker!r})

class KillsItsWorkerOnce(BSC):
    """The first transmission anywhere kills its own process (as an out-of-memory kill would)."""
    def transmit(self, bits, generator, eps):
        if not MARKER.exists():
            MARKER.write_text(str(os.getpid()))
            os.kill(os.getpid(), 9)
        return super().transmit(bits, generator, eps)

channel = KillsItsWorkerOnce()
'''


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The first 600 embedded digits as an npz data set (480 train / 60 val / 60 test)."""
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    with np.load(ROOT / "commsim" / "data" / "mnist10k.npz") as data:
        np.savez(path, images=data["images"][:600], labels=data["labels"][:600])
    return str(path)


@pytest.fixture(scope="module")
def embedded_ray():
    """One embedded Ray for the module's in-process tests (sweeps inside it run there and leave it up)."""
    with RayCluster(num_cpus=2).connect() as session:
        yield session


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh checkpoint cache for this test (the driver's; Ray's workers never read it)."""
    path = tmp_path / "home"
    monkeypatch.setenv("COMMSIM_HOME", str(path))
    return path


def small_spec(digits, channel="bsc", **fields) -> SweepSpec:
    """2 codecs x 3 values x 2 seeds = 12 points, one training."""
    base = dict(codecs=["necst", "vq+ideal"], channel=channel, param="eps", values=[0.05, 0.1, 0.2], seeds=2,
                train_eps=[0.1], bits=8, dataset="npz", data_path=digits, epochs=1)
    return SweepSpec(**{**base, **fields})


def rows(path) -> pd.DataFrame:
    return pd.read_csv(path).sort_values(KEYS).reset_index(drop=True)


def test_ray_rows_equal_local_rows(digits, embedded_ray, home, tmp_path, monkeypatch, one_torch_thread):
    """Both executors with one torch thread per training / evaluation (the same numbers need the same
    thread count): the same rows, and the same trained weights."""
    monkeypatch.setenv("COMMSIM_THREADS", "1")  # the local executor's trainings stay at one thread
    spec = small_spec(digits)
    local_home = tmp_path / "local-home"
    monkeypatch.setenv("COMMSIM_HOME", str(local_home))
    local = rows(run_sweep(spec, tmp_path / "local.csv", executor=LocalExecutor(1), progress=False))
    monkeypatch.setenv("COMMSIM_HOME", str(home))
    remote = rows(run_sweep(spec, tmp_path / "ray.csv", executor=RayExecutor(RayCluster()), progress=False))
    assert len(remote) == 12 and not remote.duplicated(KEYS).any()
    # The checkpoint's metadata records its training's wall time, so two trainings of the same
    # configuration differ in sha256: the weights are compared instead, below.
    ignore = PER_RUN + ["checkpoint_sha256"]
    pd.testing.assert_frame_equal(remote.drop(columns=ignore), local.drop(columns=ignore))
    assert remote["l2_per_image"].notna().all() and remote.groupby("codec")["l2_per_image"].nunique().min() > 1
    # the training ran on a worker; the driver wrote it into its own cache under the local entry name
    names = sorted(p.name for p in (home / "checkpoints").glob("*.safetensors"))
    assert names == sorted(p.name for p in (local_home / "checkpoints").glob("*.safetensors")) == \
        sorted(set(remote["checkpoint"].dropna()))
    ours, theirs = load_file(home / "checkpoints" / names[0]), load_file(local_home / "checkpoints" / names[0])
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    # a second sweep finds the checkpoint in the driver's cache: shipped, not retrained
    before = (home / "checkpoints" / names[0]).stat().st_mtime_ns
    again = rows(run_sweep(spec, tmp_path / "again.csv", executor=RayExecutor(RayCluster()), progress=False))
    assert (home / "checkpoints" / names[0]).stat().st_mtime_ns == before
    pd.testing.assert_frame_equal(again.drop(columns=PER_RUN), remote.drop(columns=PER_RUN))


def test_tasks_run_at_normal_priority(embedded_ray):
    """Ray's default worker niceness (15) starves the tasks next to any other CPU-bound job."""
    assert embedded_ray.get(embedded_ray.remote(lambda: os.nice(0)).remote()) == os.nice(0)


def test_a_killed_worker_is_retried(digits, embedded_ray, home, tmp_path):
    marker = tmp_path / "killed-once"
    module = tmp_path / "killer.py"
    module.write_text(KILLS_ITS_WORKER_ONCE.format(marker=str(marker)))
    spec = small_spec(digits, channel=f"{module}:channel", codecs=["necst"], values=[0.1, 0.2])
    out = run_sweep(spec, tmp_path / "r.csv", executor=RayExecutor(RayCluster()), progress=False)
    assert marker.exists()  # a worker process did die mid-task ...
    frame = rows(out)  # ... and its point ran again on another one
    assert len(frame) == 4 and frame["l2_per_image"].notna().all()


def test_a_point_that_raises_is_one_line_not_a_hang(digits, embedded_ray, home, tmp_path):
    module = tmp_path / "broken.py"
    module.write_text("from commsim.channels import BSC\n\nclass Broken(BSC):\n"
                      "    def transmit(self, bits, generator, eps):\n        raise RuntimeError('the flux capacitor is empty')\n\n"
                      "channel = Broken()\n")
    spec = small_spec(digits, channel=f"{module}:channel", codecs=["necst"], values=[0.1])
    with pytest.raises(TaskFailed, match=r"^point necst eps=0.1 seed \d failed on a Ray worker: ChannelError: channel "
                                         r"Broken raised RuntimeError: the flux capacitor is empty \(.*broken.py, line 5\)"):
        run_sweep(spec, tmp_path / "r.csv", executor=RayExecutor(RayCluster()), progress=False)
    assert rows(tmp_path / "r.csv").empty  # the header alone: no partial row


def test_a_corrupt_checkpoint_is_refused(tmp_path, home, digits):
    from commsim.learned.training import TrainConfig
    from commsim.learned.zoo import train_and_save
    from commsim.data import load_dataset

    _, _, path = train_and_save("necst", load_dataset("npz", digits), 8, TrainConfig(eps=0.1, epochs=1),
                                out=tmp_path / "m.safetensors", device="cpu", progress=False)
    blob = checkpoint_blob(path)
    blob["bytes"] = blob["bytes"][:-1] + bytes([blob["bytes"][-1] ^ 1])
    with pytest.raises(ValueError, match="arrived corrupt"):
        store_checkpoint(blob, home / "checkpoints" / path.name)
    assert not (home / "checkpoints").exists()


def session_processes(home: Path, driver: int | None = None) -> dict[int, str]:
    """Live processes (not zombies) whose environment carries ``COMMSIM_HOME=home`` (a driver's Ray:
    GCS, raylet, agents, workers, and its reaper, inherit it), and the descendants of ``driver``
    (a process that renames itself may hide its environment)."""
    marker = f"COMMSIM_HOME={home}".encode()
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry)] = (fields[0], int(fields[1]))
            except (OSError, IndexError, ValueError):
                pass
    found = set()
    for pid in table:
        try:
            if pid != os.getpid() and marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found.add(pid)
        except OSError:
            pass
    stack = [pid for pid, (_, ppid) in table.items() if ppid == driver] if driver else []
    while stack:
        pid = stack.pop()
        found.add(pid)
        stack += [p for p, (_, ppid) in table.items() if ppid == pid and p not in found]
    out = {}
    for pid in found:
        try:
            if table[pid][0] != "Z":
                out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
        except OSError:
            pass
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads processes from /proc (Linux)")
@pytest.mark.slow  # ~15 s (a driver with its own Ray); Ray's fault tolerance in the default run: test_ray_multinode.py
def test_driver_killed_mid_sweep_then_resumed(digits, embedded_ray, tmp_path):
    """``kill -9`` of a ``--executor ray`` driver: its embedded Ray is gone within seconds, the CSV
    keeps whole rows, and ``--resume`` completes it without a duplicate."""
    channel = tmp_path / "slow.py"
    channel.write_text(SLOW_CHANNEL)
    home = tmp_path / "home"
    env = {**os.environ, "COMMSIM_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    args = [sys.executable, "-m", "commsim.cli", "sweep", "--codec", "necst", "--channel", f"{channel}:channel",
            "--eps", "0.05,0.1,0.2", "--train-eps", "0.1", "--seeds", "4", "--bits", "8", "--epochs", "1",
            "--dataset", "npz", "--data-path", digits, "--executor", "ray", "--out", str(out)]
    driver = subprocess.Popen(args, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    csv = out / "results.csv"
    seen: dict[int, str] = {}
    try:
        def some_rows():
            seen.update(session_processes(home, driver.pid))
            return csv.exists() and csv.read_text().count("\n") >= 4  # header + 3 rows
        assert wait_for(some_rows, 120), driver.stderr.read().decode() if driver.poll() is not None else "no rows"
        driver.kill()
        driver.wait()
        assert any("raylet" in cmd for cmd in seen.values()), seen  # the driver had started its own Ray
        assert wait_for(lambda: not session_processes(home) and not any(alive(p) for p in seen), 5), \
            {p: cmd for p, cmd in seen.items() if alive(p)}
    finally:
        for pid in [*session_processes(home), *seen]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    partial = rows(csv)
    assert 3 <= len(partial) < 12
    # resume (in this process, on the module's Ray: the same run_sweep as `commsim sweep --resume`)
    os.environ["COMMSIM_HOME"], before = str(home), os.environ["COMMSIM_HOME"]
    try:
        spec = SweepSpec(codecs=["necst"], channel=f"{channel}:channel", param="eps", values=[0.05, 0.1, 0.2], seeds=4,
                         train_eps=[0.1], bits=8, dataset="npz", data_path=digits, epochs=1, train_seed=0)
        run_sweep(spec, csv, resume=True, executor=RayExecutor(RayCluster()), progress=False)
    finally:
        os.environ["COMMSIM_HOME"] = before
    full = rows(csv)
    assert len(full) == 12 and not full.duplicated(KEYS).any()
    kept = full.merge(partial[KEYS], on=KEYS)
    pd.testing.assert_frame_equal(kept.drop(columns=PER_RUN), partial.drop(columns=PER_RUN))


@pytest.mark.parametrize("args, fragment", [
    (["--executor", "nosuch"], "nosuch"),
    (["--executor", "ray", "--cpus-per-task", "0"], "--cpus-per-task must be in (0"),
    (["--executor", "ray", "--gpus-per-task", "-1"], "--gpus-per-task must be in [0"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "cannot reach a Ray cluster at 127.0.0.1:1"),
    (["--executor", "ray", "--ray-address", "nohost"], "is not HOST:PORT"),
    (["--executor", "ray", "--jobs", "2"], "--jobs is for --executor local"),
    (["--cpus-per-task", "2"], "--cpus-per-task is an option of --executor ray"),
])
def test_bad_executor_options(tmp_path, args, fragment):
    result = CliRunner().invoke(cli, ["sweep", "--codec", "necst", "--eps", "0.1", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and fragment in lines[0], result.output
    assert list(tmp_path.iterdir()) == []


def test_gpus_on_a_cluster_without_them_is_refused_before_any_task(embedded_ray, tmp_path, home):
    gpus = "1" if not embedded_ray.cluster_resources().get("GPU") else "64"
    result = CliRunner().invoke(cli, ["sweep", "--codec", "necst", "--eps", "0.1", "--executor", "ray", "--gpus-per-task",
                                      gpus, "--bits", "8", "--epochs", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: --gpus-per-task") and "no node" in lines[0], result.output
    assert not (tmp_path / "o").exists() and not home.exists()


def test_without_ray_installed_one_line_says_how(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where it is not installed
    result = CliRunner().invoke(cli, ["sweep", "--codec", "necst", "--eps", "0.1", "--executor", "ray",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == ["Error: Ray is not installed; install it with `pip install "
                                                  "'commsim[ray]'` (or `pip install 'ray>=2.9'`)"]
    assert list(tmp_path.iterdir()) == []


def test_a_codec_kind_registered_by_user_code_runs_on_ray(digits, embedded_ray, home, tmp_path, monkeypatch):
    """The toy codec kind of test_codec_protocol.py (registered in this process only) travels to the Ray
    workers by value: its requirement is made on a worker and shipped back, its points evaluated there."""
    from test_codec_protocol import NAME, ToyEntry

    from commsim.core.registry import CODECS

    monkeypatch.setitem(CODECS._entries, NAME, ToyEntry())
    monkeypatch.setitem(CODECS._docs, NAME, "A toy codec kind defined in a test.")
    spec = small_spec(digits, codecs=[NAME], seeds=1, train_eps=None)
    remote = rows(run_sweep(spec, tmp_path / "ray.csv", executor=RayExecutor(RayCluster()), progress=False))
    local = rows(run_sweep(spec, tmp_path / "local.csv", executor=LocalExecutor(1), progress=False))
    assert len(remote) == 3 and (remote["checkpoint"] == f"{NAME}-npz.safetensors").all()
    assert (home / "checkpoints" / f"{NAME}-npz.safetensors").is_file()  # made on a worker, stored by the driver
    pd.testing.assert_frame_equal(remote.drop(columns=PER_RUN), local.drop(columns=PER_RUN))


def test_ray_settings_end_with_the_session(monkeypatch):
    """Ray's environment settings are set for a session only, and a user's own value is kept."""
    from commsim.ray_executor import ray_settings

    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    monkeypatch.setenv("RAY_worker_niceness", "5")
    before = dict(os.environ)
    with ray_settings("127.0.0.1:6379"):
        assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0" and os.environ["RAY_worker_niceness"] == "5"
        assert os.environ["RAY_gcs_server_port_wait_time_s"]
    assert dict(os.environ) == before
