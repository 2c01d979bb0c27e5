"""Separated source + channel baselines on MNIST beside the reference curves and the learned NECST.

For the embedded MNIST at BSC eps 0.1 and 0.2:

1. every ``SOURCE+CHANNEL`` scheme's test ``l2_per_image`` (95 % interval) and failure rate at 100,
   200 and 500 channel bits per image, with the channel code its validation-based rate choice took;
2. the reference curves at the same budgets (:mod:`commsim.bounds`): the zero-information distortion,
   ``m C``, the normal approximation at frame error rate 1e-3, and the ``vq`` / ``pca`` codes at
   ``floor(m C)`` bits delivered error-free;
3. the channel bits per image each scheme needs to match NECST at 100 bits: a geometric walk
   (x sqrt 2 up from 100 bits, or down to 8 bits if 100 already suffice) to where the scheme's test
   distortion crosses NECST's, then bisection on ``m`` down to 3 %. NECST's number comes from ``--necst-l2 EPS=VALUE`` or else from a cached
   checkpoint (``load_codec("necst", bits=100, eps=EPS, train_if_missing=False)``) evaluated here;
   without either the section is skipped.

Everything is written as CSV first (``separated.csv``, ``separated_reference.csv``,
``separated_match_points.csv``, ``separated_match.csv``), the Markdown report from the CSVs. A rerun
reuses every row already in the CSVs with the same settings (mode, images, seed, ...), so an
interrupted run resumes. ``--quick`` runs a subset on 200 test images (about a quarter of an hour on
two CPU cores; the ``neural`` source then trains NECST for only 2 epochs per ``k``, in a scratch
cache, and is labelled so).

    python -m benchmarks.separated --quick
    python -m benchmarks.separated                       # all 30 schemes, 1000 test images (hours)
    python -m benchmarks.separated --necst-l2 0.1=14.4 --necst-l2 0.2=22.6 --sources vq,pca --families ldpc,ideal

The files are named ``separated*`` (``--quick``: ``separated_quick*``) in ``--out`` (default ``benchmarks/results``).
"""
from __future__ import annotations

import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks import runlib
from commsim.core.files import atomic_path
SOURCES = ("jpeg", "webp", "jpeg2000", "vq", "pca", "neural")
FAMILIES = ("ldpc", "conv", "rep", "ideal", "ideal-fbl")
QUICK = {"sources": ("jpeg", "jpeg2000", "vq", "pca", "neural"), "families": ("ldpc", "ideal"), "bits": (100, 500),
         "eps": (0.1, 0.2), "limit": 200, "val_images": 200, "neural_epochs": 2, "max_m": 3200,
         "match_sources": ("jpeg2000", "vq", "pca"), "match_families": ("ldpc", "ideal")}
FULL = {"sources": SOURCES, "families": FAMILIES, "bits": (100, 200, 500), "eps": (0.1, 0.2), "limit": None,
        "val_images": 400, "neural_epochs": None, "max_m": 6400,
        "match_sources": ("jpeg", "webp", "jpeg2000", "vq", "pca"), "match_families": ("ldpc", "conv", "ideal")}
MIN_M = 8
"""The smallest budget the bits-to-match search tries."""
SETTINGS = ("mode", "images", "seed", "val_images", "neural_epochs")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Table:
    """A CSV of result rows, reloaded on start; ``get(key)`` finds a row by its key columns."""

    def __init__(self, path: Path, key: tuple[str, ...], settings: dict):
        self.path, self.key, self.settings = path, key, settings
        self.rows: list[dict] = []
        if path.is_file():
            self.rows = pd.read_csv(path).to_dict("records")

    def _match(self, row: dict, key: dict) -> bool:
        return all(_same(row.get(name), value) for name, value in {**self.settings, **key}.items())

    def get(self, **key) -> dict | None:
        for row in self.rows:
            if self._match(row, key):
                return row
        return None

    def add(self, row: dict) -> dict:
        row = {**self.settings, **row}
        self.rows.append(row)
        with atomic_path(self.path) as tmp:
            pd.DataFrame(self.rows).to_csv(tmp, index=False)
        return row

    def current(self) -> pd.DataFrame:
        rows = [r for r in self.rows if self._match(r, {})]
        return pd.DataFrame(rows)


def _nan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(have, want) -> bool:
    """Equality of a CSV cell and a setting: None matches an empty cell, numbers match numerically."""
    if _nan(want) or _nan(have):
        return _nan(want) and _nan(have)
    try:
        return math.isclose(float(have), float(want), rel_tol=1e-9)
    except (TypeError, ValueError):
        return str(have) == str(want)


def evaluate_scheme(source, scheme: str, m: int, eps: float, args) -> dict:
    """Build one separated codec and evaluate it on the test split (one BSC pass per image)."""
    from commsim.separated import SchemeError
    from commsim.channels import get_channel
    from commsim.pipeline import Pipeline
    from commsim.core.registry import CODECS

    src = scheme.split("+")[0]
    options = {"source_options": {"epochs": args.neural_epochs}} if src == "neural" and args.neural_epochs else {}
    start = time.perf_counter()
    try:
        codec, built, _ = runlib.timed(lambda: CODECS.get(scheme).build(
            source, bits=m, channel="bsc", params={"eps": eps}, seed=args.seed, val_images=args.val_images, **options))
    except SchemeError as exc:
        return {"status": "cannot fit", "note": str(exc), "build_s": time.perf_counter() - start}
    result = Pipeline(source, codec, get_channel("bsc")).evaluate("test", seed=args.seed, limit=args.limit, eps=eps)
    l2, fail = result.metrics["l2_per_image"], result.metrics["failure_rate"]
    a = codec.accounting()
    return {"status": "ok", "code": a["code"], "k": a["k"], "overhead": a["overhead"], "padding": a["padding"],
            "p_error": a["p_error"], "l2": l2.mean, "l2_low": l2.low, "l2_high": l2.high, "failure_rate": fail.mean,
            "failure_low": fail.low, "failure_high": fail.high, "ber": result.metrics["ber"].mean,
            "test_images": result.images, "build_s": built, "eval_s": result.seconds, "note": ""}


def necst_reference(source, eps: float, args) -> dict | None:
    """NECST at 100 bits: the --necst-l2 value, else a cached checkpoint evaluated here, else None."""
    if eps in args.necst_l2:
        return {"eps": eps, "necst_l2": args.necst_l2[eps], "necst_low": None, "necst_high": None, "from": "--necst-l2"}
    from commsim.channels import get_channel
    from commsim.learned.checkpoints import CheckpointError
    from commsim.learned.zoo import cached_checkpoints, load_codec
    from commsim.pipeline import Pipeline

    try:
        codec = load_codec("necst", dataset="mnist", bits=100, eps=eps, train_if_missing=False, device="cpu", source=source)
    except CheckpointError:
        return None
    path = cached_checkpoints("necst", "mnist", 100, eps)[0]
    est = Pipeline(source, codec, get_channel("bsc")).evaluate("test", seed=args.seed, limit=args.limit, eps=eps).metrics["l2_per_image"]
    return {"eps": eps, "necst_l2": est.mean, "necst_low": est.low, "necst_high": est.high, "from": f"checkpoint {path.name}"}


def match_bits(source, scheme: str, eps: float, target: float, points: Table, args) -> dict:
    """Smallest m (to 3 %) whose test l2 is at most ``target``: geometric walk, then bisection."""
    def l2_at(m: int) -> float:
        row = points.get(scheme=scheme, eps=eps, m=m)
        if row is None:
            log(f"  match {scheme} eps={eps:g} m={m}")
            res = evaluate_scheme(source, scheme, m, eps, args)
            row = points.add({"scheme": scheme, "eps": eps, "m": m, "status": res["status"], "l2": res.get("l2", math.inf),
                              "code": res.get("code", ""), "k": res.get("k", 0)})
        return float(row["l2"]) if row["status"] == "ok" else math.inf

    lo, m = None, 100
    while m <= args.max_m:
        if l2_at(m) <= target:
            break
        lo, m = m, int(round(m * math.sqrt(2)))
    else:
        return {"scheme": scheme, "eps": eps, "target_l2": target, "bits_needed": None, "bound": f"> {lo}", "l2_at_bits": None}
    hi = m
    while lo is None and hi > MIN_M:  # already there at 100 bits: walk down
        m = max(MIN_M, int(round(hi / math.sqrt(2))))
        if l2_at(m) <= target:
            hi = m
        else:
            lo = m
    if lo is not None:
        while hi - lo > max(4, 0.03 * hi):
            mid = (lo + hi) // 2
            if l2_at(mid) <= target:
                hi = mid
            else:
                lo = mid
    return {"scheme": scheme, "eps": eps, "target_l2": target, "bits_needed": hi,
            "bound": f"({lo}, {hi}]" if lo is not None else f"<= {hi}", "l2_at_bits": l2_at(hi)}


def fmt(value, digits=2) -> str:
    return "" if _nan(value) else f"{float(value):.{digits}f}"


def markdown(args, results: pd.DataFrame, reference: pd.DataFrame, necst: list[dict], match: pd.DataFrame) -> list[str]:
    """The report: per eps the reference rows and every scheme at every budget, then the bits to match NECST."""
    lines = ["# Separated source + channel baselines (MNIST, BSC)", ""]
    lines += [f"Mode **{args.mode}**: {args.images} test images per point, seed {args.seed}, rate chosen on "
              f"{args.val_images} validation images (Python {platform.python_version()}, "
              f"{runlib.machine()}). Numbers are `l2_per_image` on the test split: mean [95 % interval], "
              "then the failure rate (frames shown as the training-mean image: channel decoding failed, the "
              "image did not fit, or the payload was rejected). `code` is the channel code the validation-based "
              "choice took, `k` its payload bits.", ""]
    if args.mode == "quick" and "neural" in args.sources:
        lines += [f"Quick mode: `neural` is NECST trained for {args.neural_epochs} epochs per k (a scratch cache) -- "
                  "far from converged; its numbers say only that the path works.", ""]
    for eps in args.eps:
        lines += [f"## eps = {eps:g}", ""]
        ref = reference[reference["eps"].astype(float).round(6) == round(eps, 6)] if len(reference) else reference
        head = "| scheme | " + " | ".join(f"m = {m}" for m in args.bits) + " |"
        lines += [head, "|" + "---|" * (len(args.bits) + 1)]
        for label, col, d in (("zero information (mean image)", "zero_info_l2", 2), ("m C (bits)", "capacity_bits", 1),
                              ("normal approximation, 1e-3 (bits)", "normal_approx_bits", 0),
                              ("vq at floor(m C) bits, error-free", "vq_at_capacity_l2", 2),
                              ("pca at floor(m C) bits, error-free", "pca_at_capacity_l2", 2)):
            cells = []
            for m in args.bits:
                r = ref[ref["m"].astype(int) == m] if len(ref) else ref
                cells.append(fmt(r.iloc[0][col], d) if len(r) else "")
            lines.append(f"| *{label}* | " + " | ".join(cells) + " |")
        ref_necst = next((n for n in necst if n and math.isclose(n["eps"], eps)), None)
        if ref_necst:
            cells = [fmt(ref_necst["necst_l2"]) if m == 100 else "" for m in args.bits]
            lines.append(f"| *NECST, 100 bits ({ref_necst['from']})* | " + " | ".join(cells) + " |")
        for scheme in args.schemes:
            cells = []
            for m in args.bits:
                r = results[(results["scheme"] == scheme) & (results["m"].astype(int) == m)
                            & (results["eps"].astype(float).round(6) == round(eps, 6))] if len(results) else results
                if not len(r):
                    cells.append("")
                    continue
                r = r.iloc[0]
                if r["status"] != "ok":
                    needs = str(r["note"]).split("needs ")[-1].split(" bits")[0] if "needs" in str(r["note"]) else "?"
                    cells.append(f"cannot fit (needs {needs} bits)")
                else:
                    cells.append(f"{fmt(r['l2'])} [{fmt(r['l2_low'])}, {fmt(r['l2_high'])}], fail {100 * float(r['failure_rate']):.1f} %"
                                 f"<br>`{r['code']}` k={int(r['k'])}")
            lines.append(f"| {scheme} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Channel bits per image to match NECST at 100 bits", ""]
    if match is None or not len(match):
        lines += ["Skipped: no NECST reference (pass `--necst-l2 EPS=VALUE` or cache a checkpoint with "
                  "`commsim train --codec necst --bits 100 --eps EPS`).", ""]
    else:
        lines += ["Smallest m (bisection to 3 %, test distortion at most NECST's mean) -- the interval says where "
                  "the crossing lies; `> M` means not reached by the largest m tried.", "",
                  "| scheme | eps | NECST l2 | bits needed | interval | l2 there |", "|---|---|---|---|---|---|"]
        order = {name: i for i, name in enumerate(args.match_schemes)}
        match = match.assign(_eps=match["eps"].astype(float), _order=match["scheme"].map(order)).sort_values(["_eps", "_order"])
        for _, r in match.iterrows():
            need = "" if _nan(r["bits_needed"]) else str(int(r["bits_needed"]))
            lines.append(f"| {r['scheme']} | {float(r['eps']):g} | {fmt(r['target_l2'])} | {need} | {r['bound']} | {fmt(r['l2_at_bits'])} |")
        lines.append("")
    lines += ["## What is sent", "",
              "- `jpeg`: 4-bit quality index + entropy-coded scan (byte stuffing removed, trailing pad 1-bits stripped); "
              "JFIF/DQT/SOF/DHT/SOS headers (328 bytes at 28x28 grey) are shared.",
              "- `webp`: first-partition size (bit_length(ceil(k/8)) bits) + VP8 data after the 10-byte frame header; "
              "RIFF/VP8 chunk headers, frame tag bits, start code and dimensions are shared.",
              "- `jpeg2000`: 1 flag bit + packet data after SOD; main header (SIZ/COD/QCD/COM) and SOT/SOD (Psot = 0) are shared.",
              "- `vq`, `pca`, `neural`: exactly k bits (codeword / quantiser indices / thresholded NECST bits).",
              "- Channel: k payload bits + the code's overhead (parity, CRC, tail, repetitions) + zero padding = m.",
              "- Ideal codes are references: the payload reaches the decoder without the channel.", "",
              "The reference rows are not lower bounds: that would need MNIST's rate-distortion function, which we do not have.", ""]
    return lines


def parse_args(argv=None):
    p = runlib.benchmark_parser(__file__, __doc__, quick="a subset on 200 test images (see above)", threads=False)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sources", default=None, help="Comma-separated source codes (default: by mode).")
    p.add_argument("--families", default=None, help="Comma-separated channel-code families (default: by mode).")
    p.add_argument("--necst-l2", action="append", default=[], metavar="EPS=VALUE",
                   help="NECST's test l2_per_image at 100 bits for this eps (else a cached checkpoint).")
    p.add_argument("--no-match", action="store_true", help="Skip the bits-to-match-NECST search.")
    p.add_argument("--neural-epochs", type=int, default=None, help="NECST epochs per k for the neural source.")
    args = runlib.parse_args(p, argv)
    mode = QUICK if args.quick else FULL
    args.mode = "quick" if args.quick else "full"
    args.sources = tuple(args.sources.split(",")) if args.sources else mode["sources"]
    args.families = tuple(args.families.split(",")) if args.families else mode["families"]
    args.bits, args.eps, args.limit, args.val_images = mode["bits"], mode["eps"], mode["limit"], mode["val_images"]
    args.max_m = mode["max_m"]
    args.neural_epochs = args.neural_epochs or mode["neural_epochs"]
    args.schemes = [f"{s}+{f}" for s in args.sources for f in args.families]
    args.match_schemes = [f"{s}+{f}" for s in mode["match_sources"] for f in mode["match_families"]]
    values = {}
    for item in args.necst_l2:
        eps, _, value = item.partition("=")
        values[float(eps)] = float(value)
    args.necst_l2 = values
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import commsim.separated  # noqa: F401
    from commsim.bounds import reference_row
    from commsim.data import load_dataset

    source = load_dataset("mnist")
    args.images = args.limit or source.size("test")
    settings = {"mode": args.mode, "images": args.images, "seed": args.seed, "val_images": args.val_images,
                "neural_epochs": args.neural_epochs}
    output = args.output
    results = Table(output.path(".csv"), ("scheme", "eps", "m"), settings)
    reference = Table(output.path(".csv", "_reference"), ("eps", "m"), settings)
    points = Table(output.path(".csv", "_match_points"), ("scheme", "eps", "m"), settings)
    matches = Table(output.path(".csv", "_match"), ("scheme", "eps", "target_l2"), settings)

    necst = [necst_reference(source, eps, args) for eps in args.eps]  # before any scratch cache
    for eps, ref in zip(args.eps, necst):
        log(f"NECST at 100 bits, eps={eps:g}: " + (f"l2 {ref['necst_l2']:.3f} ({ref['from']})" if ref else "no reference"))
    scratch = None
    if args.mode == "quick" and "neural" in args.sources and "COMMSIM_NEURAL_CACHE" not in os.environ:
        scratch = tempfile.mkdtemp(prefix="commsim-neural-quick-")
    t0 = time.perf_counter()
    for eps in args.eps:
        for m in args.bits:
            if reference.get(eps=eps, m=m) is None:
                log(f"reference eps={eps:g} m={m}")
                reference.add(reference_row(source, m, eps, limit=args.limit, seed=args.seed))
            for scheme in args.schemes:
                if results.get(scheme=scheme, eps=eps, m=m) is not None:
                    continue
                log(f"{scheme} eps={eps:g} m={m}")
                env = {"COMMSIM_HOME": scratch} if scheme.startswith("neural+") and scratch else {}
                saved = {k: os.environ.get(k) for k in env}
                os.environ.update(env)
                try:
                    row = evaluate_scheme(source, scheme, m, eps, args)
                finally:
                    for k, v in saved.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                results.add({"scheme": scheme, "eps": eps, "m": m, **row})
                if row["status"] == "ok":
                    log(f"  l2 {row['l2']:.3f} fail {row['failure_rate']:.3f} ({row['code']}, k={row['k']}), "
                        f"{row['build_s']:.0f}+{row['eval_s']:.0f} s")
                else:
                    log(f"  {row['note']}")
    if not args.no_match:
        for ref in necst:
            if ref is None:
                continue
            for scheme in args.match_schemes:
                if matches.get(scheme=scheme, eps=ref["eps"], target_l2=ref["necst_l2"]) is None:
                    matches.add(match_bits(source, scheme, ref["eps"], ref["necst_l2"], points, args))
    output.report(markdown(args, results.current(), reference.current(), necst,
                           matches.current() if any(necst) and not args.no_match else None))
    log(f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
