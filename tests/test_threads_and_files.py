"""Thread policy (never more busy threads than cores) and file writing (atomic, user's umask)."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from commsim.core import threads
from commsim.core.files import atomic_path, check_writable


@pytest.fixture()
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def no_thread_env(monkeypatch):
    for name in threads.ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("var", ["COMMSIM_THREADS", "OMP_NUM_THREADS"])
def test_environment_fixes_the_thread_count(monkeypatch, no_thread_env, restore_threads, var):
    monkeypatch.setenv(var, "1")
    policy = threads.ThreadPolicy()
    assert policy.configure() == 1 and torch.get_num_threads() == 1
    assert policy.reason == f"{var}=1"
    monkeypatch.setattr(threads, "busy_elsewhere", lambda **kw: pytest.fail("measured although fixed"))
    assert policy.configure() == 1


def test_sweep_workers_take_one_thread(monkeypatch, no_thread_env, restore_threads):
    """A worker gets its count from worker_init alone: no environment flag is left for other modules to read."""
    before = dict(os.environ)
    threads.worker_init(1)
    assert torch.get_num_threads() == 1 and dict(os.environ) == before


@pytest.mark.parametrize("cores, others, expected", [(2, 0.0, 2), (2, 0.3, 2), (2, 1.0, 1), (2, 1.7, 1), (2, 6.0, 1),
                                                      (8, 3.0, 5), (1, 0.0, 1)])
def test_auto_leaves_the_busy_cores_alone(monkeypatch, no_thread_env, restore_threads, cores, others, expected):
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda **kw: others)
    policy = threads.ThreadPolicy()
    assert policy.configure() == expected and torch.get_num_threads() == expected
    shared = policy.status()
    assert ("CPU shared" in shared) == (others >= 0.5)
    if others + expected > cores + 0.5:
        assert "slower" in shared


def test_a_training_keeps_the_thread_count_it_started_with(monkeypatch, restore_threads):
    """Reproducible by default: the load may change during a training, its thread count does not (an
    on_epoch hook that changes it is undone), and the result records it."""
    from commsim.data import load_dataset
    from commsim.data.sources import ImageSource, split_in_order
    from commsim.learned.training import TrainConfig, train_codec
    from commsim.learned.zoo import build_codec

    full = load_dataset("mnist")
    tiny = ImageSource("tiny", full.images[:60], full.labels[:60], split_in_order(60, 40, 10, 10))
    torch.set_num_threads(1)
    seen = []

    def hook(codec, row):
        seen.append(torch.get_num_threads())
        torch.set_num_threads(2)

    result = train_codec(build_codec("necst", tiny, 8), tiny, TrainConfig(eps=0.1, epochs=3, batch_size=20), progress=False,
                         on_epoch=hook)
    assert result.threads == 1 and seen == [1, 1, 1]


def test_busy_elsewhere_sees_another_cpu_bound_process():
    child = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.3)
        seen = threads.busy_elsewhere(interval=0.6)
    finally:
        child.kill()
        child.wait()
    assert seen >= 0.3  # at least a good part of one core (more if the machine is busier)


def test_own_work_is_not_counted_as_elsewhere():
    start = threads._snapshot()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        pass
    # this process kept one core busy; other processes may add some, but ours must be subtracted
    assert threads.busy_elsewhere(since=start) < threads.available_cores() - 0.5 or os.getloadavg()[0] > 2


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_atomic_files_get_the_umask_mode(tmp_path, mask):
    from commsim.learned.checkpoints import save_checkpoint
    from commsim.core.images import save_grid

    old = os.umask(mask)
    try:
        ckpt = save_checkpoint(tmp_path / "a.safetensors", {"w": torch.zeros(2)}, {"codec": "x"})
        png = save_grid([torch.zeros(2, 1, 4, 4)], tmp_path / "b.png")
        with atomic_path(tmp_path / "c.npz") as tmp:
            np.savez(tmp, a=np.zeros(3))
    finally:
        os.umask(old)
    for path in (ckpt, png, tmp_path / "c.npz"):
        assert (path.stat().st_mode & 0o777) == 0o666 & ~mask, path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors", "b.png", "c.npz"]  # no temp file left


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.csv") as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "x.png")
    assert not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(OSError, match="folder"):
        check_writable(tmp_path)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(OSError, match="not a writable folder"):
            check_writable(ro / "x.png")
    with pytest.raises(OSError):
        check_writable("/proc/x.png")


def test_catalog_matches_the_registries():
    from commsim.cli.catalog import build_catalog
    from commsim.core import catalog

    assert catalog.load() == build_catalog(), "commsim/core/catalog.json is stale: run `commsim catalog --write`"
    for section in catalog.SECTIONS:
        for text in catalog.load()[section].values():
            assert "``" not in text and ":class:" not in text  # plain text for `commsim list`


def test_help_and_list_start_without_torch():
    import subprocess
    import sys

    code = ("import sys\nfrom click.testing import CliRunner\nfrom commsim.cli import cli\n"
            "for args in (['--help'], ['list'], ['run', '--help']):\n"
            "    r = CliRunner().invoke(cli, args)\n    assert r.exit_code == 0, r.output\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-1500:]


def test_every_module_imports_first():
    """Each commsim module imports on its own, as the first commsim import of a process (an import
    cycle shows only in some orders): every module is imported in a fresh commsim namespace.

    Each source file is compiled once, as a ``__pycache__`` would have it (none is written when
    PYTHONDONTWRITEBYTECODE is set), and its module executed afresh every round; the process ends
    without the interpreter's teardown once it has said what failed."""
    import subprocess
    import sys

    code = '''
import importlib, importlib.machinery, os, pkgutil, sys
import torch  # kept loaded between rounds (slow to import); commsim is dropped every round
import commsim
compiled = {}
compile_source = importlib.machinery.SourceFileLoader.source_to_code
def source_to_code(loader, data, path, *, _optimize=-1):
    if path not in compiled:
        compiled[path] = compile_source(loader, data, path, _optimize=_optimize)
    return compiled[path]
importlib.machinery.SourceFileLoader.source_to_code = source_to_code
names = [m.name for m in pkgutil.walk_packages(commsim.__path__, "commsim.") if not m.name.endswith("__main__")]
failed = []
for name in names:
    for loaded in [k for k in sys.modules if k == "commsim" or k.startswith("commsim.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed) or f"ok {len(names)}", flush=True)
os._exit(0)
'''
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stdout[-3000:] + done.stderr[-2000:]
