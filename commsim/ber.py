"""BER/BLER curves of channel codes alone: codes x channel values, one tidy CSV row per point.

The Monte Carlo itself (stop rules, counts, intervals, random streams) is
:mod:`commsim.fec.simulate`; this module is the experiment around it, what ``commsim ber`` runs::

    from commsim.ber import BerSpec, run_ber
    spec = BerSpec(codes=["ldpc(128,64)", "conv(140,64)"], channel="awgn", param="ebno_db",
                   values=[0, 1, 2, 3, 4], target_block_errors=100, max_frames=100_000)
    run_ber(spec, "results/ber/ber.csv")          # then commsim plot results/ber/ber.csv

Codes are named ``FAMILY(N,K[,OPTION=VALUE...])`` (:func:`commsim.fec.specs.parse_code_spec`), e.g.
``ldpc(128,64,max_iters=20)``. Every spec is checked (the codes built, the channel values checked,
the grid against :data:`~commsim.sweep.MAX_POINTS`) before anything is simulated or written.

The CSV is appended one whole line per point as it finishes (:class:`~commsim.sweep.RowWriter`),
under a lock (a second run on the same CSV is refused in one line). ``resume=True`` keeps the
finished rows, simulates only the missing points (the stop rule counts the finished ones) and
refuses a CSV made with other settings (channel, parameter, fixed parameters, seed, error target,
frame cap), naming the field that differs.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from commsim import __version__
from commsim.channels import get_channel
from commsim.core.files import exclusive_writer
from commsim.fec.specs import build_code
from commsim.fec.simulate import COLUMNS as POINT_COLUMNS, channel_params, fixed_text, simulate_curve
from commsim.sweep import MAX_POINTS, RowWriter, cell_key, read_complete_rows

MAX_FRAMES = 1_000_000_000
"""The largest frame cap of one point."""
SPEC_COLUMNS = ["target_block_errors", "max_frames", "early_stop"]
COLUMNS = ["code", "code_name"] + POINT_COLUMNS[1:] + SPEC_COLUMNS + ["commsim_version"]
"""A row: ``code`` is the spec as given (options included), ``code_name`` the code's own name."""


@dataclass
class BerSpec:
    """What to simulate: every code at every value of ``param`` (other channel parameters ``fixed``)."""

    codes: list[str]
    channel: str
    param: str
    values: list[float]
    fixed: dict = field(default_factory=dict)
    target_block_errors: int = 100
    max_frames: int = 100_000
    early_stop: bool = True
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        self.codes = list(dict.fromkeys(c.replace(" ", "") for c in self.codes if c.strip()))
        if not self.codes:
            raise ValueError("no code given; name codes as FAMILY(N,K), e.g. ldpc(128,64)")
        if not self.values:
            raise ValueError("no channel value given")
        if len(self.codes) * len(self.values) > MAX_POINTS:
            raise ValueError(f"{len(self.codes)} codes x {len(self.values)} values are {len(self.codes) * len(self.values):,} "
                             f"points, more than the {MAX_POINTS:,} one run takes; split it")
        if not 1 <= int(self.target_block_errors) <= MAX_FRAMES:
            raise ValueError(f"the block-error target must be between 1 and {MAX_FRAMES:,}, got {self.target_block_errors}")
        if not 1 <= int(self.max_frames) <= MAX_FRAMES:
            raise ValueError(f"the frame cap must be between 1 and {MAX_FRAMES:,}, got {self.max_frames}")
        block = get_channel(self.channel)
        if self.param not in block.params:
            raise ValueError(f"channel {self.channel!r} has no parameter {self.param!r}; it has {', '.join(block.params)}")
        for value in self.values:
            block.check_params({**self.fixed, self.param: value}, torch.zeros(1, 1))
        self.built = {spec: build_code(spec) for spec in self.codes}  # bad names, K > N, ... fail here

    def fixed_text(self, code) -> str:
        """The ``fixed_params`` cell of ``code``'s rows, computed as :func:`~commsim.fec.simulate.simulate_point`
        writes it (AWGN's ``rate`` follows the code when Eb/N0 is swept)."""
        params = channel_params(code, self.channel, {**self.fixed, self.param: self.values[0]})
        return fixed_text(params, self.param)


def check_resumable(spec: BerSpec, rows: list[dict], path: Path) -> None:
    """Raise ``ValueError`` naming the first field in which a row of ``path`` differs from ``spec``
    (rows of codes this run does not simulate are kept, but must share its settings too)."""
    codes = spec.built
    shared = {"channel": spec.channel, "param": spec.param, "seed": spec.seed,
              "target_block_errors": spec.target_block_errors, "max_frames": spec.max_frames}
    for row in rows:
        missing = [c for c in [*shared, "fixed_params", "code", "value"] if c not in row]
        if missing:
            raise ValueError(f"{path} is not a commsim ber CSV (no column {missing[0]!r}); choose another --out")
        expected = dict(shared)
        if row["code"] in codes:
            expected["fixed_params"] = spec.fixed_text(codes[row["code"]])
        for column, value in expected.items():
            if cell_key(row[column]) != cell_key(value):
                raise ValueError(f"{path} was made with {column} = {row[column]!r}, this run has {value!r}; "
                                 "resume with the same settings or choose another --out")


def run_ber(spec: BerSpec, out_csv: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Simulate every point of ``spec`` not yet in ``out_csv`` (with ``resume``); return the CSV path."""
    out_csv = Path(out_csv)
    if out_csv.exists() and not resume:
        raise FileExistsError(f"{out_csv} exists; pass --resume to continue it or choose another --out")
    with exclusive_writer(out_csv):  # one writer per CSV: a second run on the same file is refused
        rows = read_complete_rows(out_csv, ["code", "value"]) if resume else []
        check_resumable(spec, rows, out_csv)
        done = {(r["code"], cell_key(r["value"])): r for r in rows}
        out_csv.parent.mkdir(parents=True, exist_ok=True)
        writer = RowWriter(out_csv, COLUMNS)
        total = len(spec.codes) * len(spec.values)
        bar = tqdm(total=total, initial=len(done), desc="ber", unit="point", disable=not progress)
        extra = {"target_block_errors": spec.target_block_errors, "max_frames": spec.max_frames,
                 "early_stop": spec.early_stop, "commsim_version": __version__}

        def write(row: dict, name: str) -> None:
            row = {**row, "code": name, "code_name": row["code"], **extra}
            writer.write(row)
            bar.update()
            if progress:
                tqdm.write(f"{row['code']} {spec.param}={row['value']:g}: BLER {row['bler']:.3g} "
                           f"({row['block_errors']}/{row['frames']} frames, stop: {row['stop']}), BER {row['ber']:.3g}",
                           file=sys.stderr)

        try:
            for name, code in spec.built.items():
                ran = simulate_curve(
                    code, get_channel(spec.channel), spec.param, spec.values, spec.fixed,
                    stop_after_clean=spec.early_stop, on_point=lambda row, n=name: write(row, n),
                    skip=lambda v, n=name: done.get((n, cell_key(v))),
                    channel_name=spec.channel, target_block_errors=spec.target_block_errors,
                    max_frames=spec.max_frames, seed=spec.seed, device=spec.device)
                finished = sum(1 for key in done if key[0] == name)
                bar.update(len(spec.values) - len(ran) - finished)  # points skipped after an error-free one
        finally:
            bar.close()
            writer.close()
    return out_csv

