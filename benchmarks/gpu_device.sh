#!/usr/bin/env bash
# The checks that need a CUDA machine, as one script (run from the repository root there):
#   1. the CUDA tests (every test parametrized over "cuda", and the GPU benchmark's own test);
#   2. python -m benchmarks.gpu (CPU vs CUDA parity, training seconds per epoch, decoder throughput);
#   3. the README's main command with --device cuda, timed end to end (fresh cache);
#   4. the whole default test suite on that machine (pytest-xdist when present).
# Logs and results go to $OUT (default benchmarks/results/gpu_device). Wheels of packages the
# machine lacks (scikit-commpy) can be put in .whl/ beforehand.
set -u
OUT=${OUT:-benchmarks/results/gpu_device}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg COMMSIM_HOME=$(mktemp -d)
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
step() { echo; echo "=== $1 ($(date -u +%H:%M:%S))"; }
{
step environment
nvidia-smi -L; nproc
python3 -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
step "CUDA tests"
timeout 120 python3 -m pytest -q -p no:cacheprovider -rs -k "cuda or gpu" -m "slow or not slow" \
  tests/test_channel_codes.py tests/test_codec_factory.py tests/test_fast_decoders.py tests/test_bad_inputs.py tests/test_gpu_benchmark.py
step "python -m benchmarks.gpu"
timeout 150 python3 -m benchmarks.gpu --out "$OUT"
step "commsim run --codec iabf --channel bsc --eps 0.2 --device cuda (fresh cache)"
begin=$(python3 -c "import time; print(time.time())")
timeout 150 python3 -m commsim.cli run --codec iabf --channel bsc --eps 0.2 --device cuda
python3 -c "import time; print(f\"wall seconds: {time.time() - $begin:.1f}\")"
step "default test suite"
if python3 -c "import xdist" 2>/dev/null; then par="-n 8"; else par=""; fi
timeout 150 python3 -m pytest -q -p no:cacheprovider -rs $par
step done
} 2>&1 | tee "$OUT/log.txt"
