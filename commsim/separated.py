"""Separated source + channel coding ("compress, then protect") as codecs: ``SOURCE+CODE``.

One class, :class:`SeparatedCodec` (a source code, a channel code and zero padding), covers every
pair of a source code (:mod:`commsim.source_codes`: ``jpeg``, ``webp``, ``jpeg2000``, ``vq``,
``pca``, ``neural``) and a channel-code family (:mod:`commsim.fec`: ``ldpc``, ``conv``, ``rep``,
``ideal``, ``ideal-fbl``). Each pair's name (e.g. ``jpeg+ldpc`` or ``vq+ideal``) is registered as a
codec: a :class:`SeparatedScheme` with ``learned = False`` whose ``build`` fits the source code and
chooses the channel code's rate (:class:`RateSelection`) for a budget and a channel::

    codec = CODECS.get("pca+ldpc").build(source, bits=200, channel="bsc", params={"eps": 0.1}, seed=0)
    Pipeline(source, codec, get_channel("bsc")).evaluate(eps=0.1)   # reports failure_rate too

Bit accounting of one image (``m`` channel bits, :meth:`SeparatedCodec.accounting`)::

    k source-payload bits (the source code's whole output, its own per-frame header included)
    + n - k channel-code overhead (parity, CRC, tail, repetitions)
    + m - n zero padding (sent and counted)                           = m

**Choosing the rate** (:class:`RateSelection`, run by :meth:`SeparatedScheme.build`): the family's ``codes_for(m)`` offers codes of
several rates; those above the channel's capacity (when :func:`~commsim.fec.capacity`
knows the channel) are dropped, and for each remaining code the whole scheme is simulated on the
first ``val_images`` (400) validation images: source-encode at the code's ``k``, channel-encode, one
pass through the commsim channel block with the given parameters, channel-decode, source-decode,
with a failed frame shown as the training-mean image. Codes that lose at least half of 64 random
frames in a first screening pass (random stream ``"screening"``; the validation pass draws from
``"validation"``, one stream per candidate, both derived from the seed by :class:`numpy.random.SeedSequence`) and :data:`SCREEN_LIMIT`) are dropped before that (unless a
variable-rate source fits no image in any code that survived, in which case they are simulated too).
Codes are simulated from the largest ``k`` down; once one loses no frame, codes with a smaller ``k``
are skipped as dominated (the source codes' distortion does not grow with ``k``). The code with the
least mean ``l2_per_image`` wins; this is the expected distortion ``(1 - p_fail) D_source(k) +
p_fail D_mean`` estimated by simulation, undetected errors included. The conv and rep families are
tried with ``crc_bits`` 0, 8 and 16 (a CRC turns undetected errors into detected failures at a cost
in ``k``). The table of candidates is kept in ``codec.selection``.

**Failures**: a frame whose channel decoder says it failed (LDPC parity checks, CRC), whose image did
not fit the ``k`` bits (variable-rate codes: even the lowest quality needs more), or whose payload the
source decoder rejects is reconstructed as the training-mean image and flagged in the ``failures``
that ``decode`` returns (Pipeline.evaluate reports their rate as ``failure_rate``).
:meth:`SeparatedCodec.fits` says which images of a batch do not fit and how many bits they would need. Undetected channel
errors are not flagged: they are decoded as whatever the corrupted payload says.

**Ideal codes** (``ideal``, ``ideal-fbl``) are references, not codes: the payload
``k = floor(m C)`` (or the normal approximation's ``k`` at frame error rate ``p_error``) reaches the
decoder without passing the channel: ``decode(llr, x=x)`` source-encodes the original batch ``x``
again and ignores the channel's LLRs (a genie, given explicitly; without ``x`` it raises ``ValueError``). ``ideal-fbl`` picks ``p_error`` from
:data:`FBL_ERROR_RATES` by expected distortion and draws the failed frames with that probability from
the ``generator`` given to ``decode``.

**Devices**: a :class:`SeparatedCodec` is a ``torch.nn.Module`` whose channel code (a submodule) and
mean image (a buffer) move with ``.to(device)``; ``decode`` keeps the LLRs on their device through the
channel decoding (torch BP and Viterbi, repetition sums and CRCs in torch). The source codes are
numpy / Pillow (JPEG, WebP, JPEG 2000 are CPU libraries), so source encoding and decoding run on the
CPU: the payload bits cross to the CPU for source decoding, and the images come back to the LLRs'
device.

``neural`` source codes train a NECST model per ``k`` (minutes), so their rate choice simulates the
``pca`` code as a stand-in for the source and trains only the chosen ``k``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from commsim.fec import CHANNEL_CODES, capacity, channel_code_family, member_families
from commsim.source_codes import SOURCE_CODES, SourceCode, get_source_code
from commsim.channels import get_channel
from commsim.core.codec import Codec, checked_bits
from commsim.data.sources import ImageSource
from commsim.core.device import make_generator, resolve_device
from commsim.core.protocol import NoCodecHere, Request, TrainsNothing
from commsim.core.registry import CODECS, register_codec

FBL_ERROR_RATES = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4)
"""Frame error rates among which ``ideal-fbl`` schemes choose."""
SCREEN_LIMIT = 0.5
"""Codes losing at least this fraction of random frames in the screening pass are not simulated further
(their expected distortion is above half the zero-information one)."""
CRC_OPTIONS = {"conv": (0, 8, 16), "rep": (0, 8, 16), "polar": (6, 11)}
"""CRC lengths tried per family (the others detect failures by themselves or are ideal)."""


class SchemeError(NoCodecHere):
    """A separated scheme that cannot work at this budget (e.g. no image fits); one line for the CLI."""


def _images(source: ImageSource, split: str, limit: int | None, seed: int) -> np.ndarray:
    x, _ = source.tensors(split, make_generator(seed))
    return (x if limit is None else x[:limit]).numpy().astype(np.float32)


def _l2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return ((x - y) ** 2).reshape(len(x), -1).sum(1)


def _capacity(channel: str, params: dict) -> float | None:
    try:
        return capacity(channel, **params)
    except (ValueError, TypeError):
        return None


def _is_ideal(code) -> bool:
    return bool(getattr(code, "ideal", False))


def channel_word(code, info: np.ndarray, bits: int) -> torch.Tensor:
    """``info [F, k]`` -> the codeword zero-padded to ``bits`` channel bits, float32 ``[F, bits]``."""
    word = code.encode(info)
    out = torch.zeros(len(word), bits)
    out[:, : word.shape[1]] = torch.from_numpy(np.asarray(word, np.float32))
    return out


def channel_decode(code, llr: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``llr [F, bits]`` -> ``(info_hat [F, k] uint8, ok [F] bool)`` numpy arrays from the codeword's
    ``n`` positions (the padding carries nothing)."""
    info, ok = code.decode_tensor(llr[:, : code.n])
    return info.cpu().numpy(), ok.cpu().numpy()


class SeparatedCodec(Codec):
    """A source code, a channel code and zero padding to ``m = bits`` channel bits.

    ``encode(x [B, C, H, W], generator) -> bits [B, m]``; ``decode(llr [B, m], x=, generator=) ->
    (x_hat [B, C, H, W], failures [B])``. ``family`` is the channel-code family's registered name
    (it names the codec ``SOURCE+FAMILY``). Built for a channel by :meth:`SeparatedScheme.build`
    (``CODECS.get("jpeg+ldpc").build(...)``)."""

    has_logits = False
    flags_failures = True

    def __init__(self, source_code: SourceCode, channel_code, bits: int, image_shape, family: str = "custom",
                 p_error: float = 0.0, selection: list[dict] | None = None, channel: str | None = None,
                 params: dict | None = None):
        super().__init__(bits, image_shape)
        if channel_code.n > self.bits:
            raise ValueError(f"channel code {channel_code.name} has n = {channel_code.n} > m = {self.bits}")
        self.source_code = source_code
        self.channel_code = channel_code  # a submodule: its tables move with .to(device)
        self.register_buffer("mean_image", torch.from_numpy(np.asarray(source_code.mean, np.float32)), persistent=False)
        self.k = int(channel_code.k)
        self.ideal = _is_ideal(channel_code)
        self.p_error = float(p_error)
        self.selection = selection or []
        self.channel, self.params = channel, dict(params or {})
        self.name = f"{source_code.name}+{family}"

    # accounting ----------------------------------------------------------------------------------
    def accounting(self) -> dict:
        """``{"m", "n", "k", "overhead", "padding"}`` with ``k + overhead + padding == m``."""
        n = self.channel_code.n
        return {"m": self.bits, "n": n, "k": self.k, "overhead": n - self.k, "padding": self.bits - n,
                "code": self.channel_code.name, "p_error": self.p_error}

    def row_fields(self) -> dict[str, str]:
        """The chosen channel code, in the sweep row's ``channel_code`` column."""
        return {"channel_code": self.channel_code.name}

    def extra_repr(self) -> str:
        a = self.accounting()
        return f"{self.name}: m={a['m']} = k {a['k']} + overhead {a['overhead']} + padding {a['padding']} ({a['code']})"

    # link ----------------------------------------------------------------------------------------
    def fits(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(fits [B] bool, needed_bits [B] int)``: which images of ``x [B, C, H, W]`` the source code
        fits in the ``k`` payload bits, and how many bits each one that does not fit would need (0 for
        those that fit)."""
        images = self._numpy(self.check_images(x))
        _, fits = self.source_code.encode_batch(images, self.k)
        needed = np.zeros(len(fits), np.int64)
        for i in np.nonzero(~fits)[0]:
            needed[i] = self.source_code.needed_bits(images[i])
        return fits, needed

    @staticmethod
    def _numpy(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().numpy().astype(np.float32)

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        images = self._numpy(self.check_images(x))
        info, _ = self.source_code.encode_batch(images, self.k)
        return channel_word(self.channel_code, info, self.bits).to(x.device)

    def decode(self, llr: torch.Tensor, *, x: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``llr [B, m]`` -> ``(x_hat [B, C, H, W], failures [B] bool)``; ideal codes read the payload
        from ``x`` (the genie) and draw ``ideal-fbl``'s lost frames from ``generator``."""
        llr = self.check_llr(llr)
        device = llr.device
        if self.ideal:
            if x is None:
                raise ValueError(f"{self.name} is an ideal-code reference: its decoder reads the payload from the "
                                 "encoded batch, so call decode(llr, x=x) (Pipeline passes it)")
            if x.shape[0] != llr.shape[0]:
                raise ValueError(f"{self.name}: decode() got {llr.shape[0]} frames of LLRs but {x.shape[0]} images x")
            info, _ = self.source_code.encode_batch(self._numpy(self.check_images(x)), self.k)
            ok = torch.ones(len(info), dtype=torch.bool, device=device)
            if self.p_error > 0:
                draw_on = generator.device if generator is not None else device
                ok = (torch.rand(len(info), generator=generator, device=draw_on) >= self.p_error).to(device)
        else:
            info, ok = self.channel_code.decode_tensor(llr[:, : self.channel_code.n])  # stays on llr's device
            info = info.cpu().numpy()
        # the source codes are numpy / Pillow: the payload bits go to the CPU for source decoding only
        x_hat, source_ok = self.source_code.decode_batch(info)
        x_hat = torch.from_numpy(x_hat).to(device)
        x_hat[~ok] = self.mean_image.to(device)
        return x_hat, ~(ok & torch.from_numpy(source_ok).to(device))


class RateSelection:
    """Chooses the channel code of a ``SOURCE+CODE`` scheme for ``bits`` channel bits on ``channel``
    with ``params``, as the module doc says: :meth:`choose` -> ``(code, p_error, rows)``.

    ``source_code`` is the fitted source code (its mean image stands in for failed frames, its
    ``max_k`` and ``needed_bits`` bound the candidates); ``proxy`` is the source code simulated
    (``neural`` simulates ``pca``). Randomness comes from named streams, :meth:`generators`
    (``"screening"``, ``"validation"``), one per purpose and candidate, derived from ``seed``: the same
    seed gives the same choice.
    """

    STREAMS = ("screening", "validation")
    """The purposes that draw random numbers; their position in this tuple keys their stream."""

    def __init__(self, scheme: "SeparatedScheme", source_code: SourceCode, proxy: SourceCode, bits: int, channel: str,
                 params: dict, seed: int):
        self.scheme, self.source_code, self.proxy = scheme, source_code, proxy
        self.bits, self.channel, self.params, self.seed = int(bits), channel, dict(params), int(seed)
        self.channel_block = get_channel(channel)
        self.capacity = _capacity(channel, self.params)

    def generators(self, purpose: str, index: int) -> tuple[np.random.Generator, torch.Generator]:
        """``(numpy generator, torch generator)`` of candidate ``index``'s stream for ``purpose`` (one
        of :data:`STREAMS`): independent of every other purpose and candidate, the same for the same seed."""
        sequence = np.random.SeedSequence([self.seed % 2**64, self.STREAMS.index(purpose), int(index)])
        numpy_stream, torch_stream = sequence.spawn(2)
        return np.random.default_rng(numpy_stream), make_generator(int(torch_stream.generate_state(1, np.uint64)[0]))

    def send(self, code, info: np.ndarray, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``info [F, k]`` encoded, padded, sent once through the channel and decoded: ``(info_hat, ok)``."""
        llr = self.channel_block(channel_word(code, info, self.bits), generator, **self.params)
        return channel_decode(code, llr)

    def usable(self, candidates: list[tuple], forced: str | None = None) -> list[tuple]:
        """The candidates ``[(code, p_error)]`` worth simulating: the ``forced`` one by name, else those
        within capacity (or the lowest-rate one if none is); none that carries nothing or more than the
        source code takes."""
        if forced is not None:
            candidates = [(c, p) for c, p in candidates if c.name == forced]
            if not candidates:
                raise ValueError(f"no candidate code named {forced!r} for {self.bits} bits")
        elif self.capacity is not None:
            usable = [(c, p) for c, p in candidates if _is_ideal(c) or c.k / c.n <= self.capacity]
            candidates = usable or sorted(candidates, key=lambda cp: cp[0].k / cp[0].n)[:1]
        candidates = [(c, p) for c, p in candidates if c.k >= 1]
        max_k = self.source_code.max_k
        if max_k is not None:
            candidates = [(c, p) for c, p in candidates if c.k <= max_k]
            if not candidates:
                raise SchemeError(f"{self.scheme.source_name} takes at most {max_k:,} bits per image, but every "
                                  f"{self.scheme.family_name} code for {self.bits:,} channel bits carries more; use fewer --bits")
        return candidates

    def choose(self, val: np.ndarray, candidates: list[tuple], screen_frames: int = 64,
               forced: str | None = None) -> tuple[object, float, list[dict]]:
        """The best candidate ``(code, p_error)`` on the validation images ``val [N, C, H, W]`` and the
        table of all candidates (``rows``, the chosen one marked ``"chosen"``)."""
        candidates = self.usable(candidates, forced)
        d_mean = _l2(val, self.source_code.mean[None])
        rows, screened = [], []
        clean_k = 0  # the largest k seen without any frame error: smaller k cannot do better
        for i, (candidate, p_error) in sorted(enumerate(candidates), key=lambda ic: -ic[1][0].k):
            head = {"code": candidate.name, "k": int(candidate.k), "n": int(candidate.n), "rate": candidate.k / candidate.n,
                    "p_error": p_error}
            if candidate.k < clean_k:
                rows.append({**head, "dominated": True})
                continue
            if screen_frames and len(candidates) > 1 and not _is_ideal(candidate):
                rate = self.frame_error_rate(candidate, screen_frames, i)
                if rate >= SCREEN_LIMIT:
                    rows.append({**head, "screen_failure": rate, "frames": screen_frames, "screened_out": True})
                    screened.append((rate, i, candidate, p_error, len(rows) - 1))
                    continue
            row = self.simulate(candidate, p_error, val, d_mean, i)
            rows.append(row)
            if row["frame_failure"] == 0 and row["undetected"] == 0 and row["p_error"] == 0:
                clean_k = max(clean_k, row["k"])
        if screened and not any("expected_l2" in r for r in rows):  # all fail often: simulate the best of them
            _, i, candidate, p_error, at = min(screened, key=lambda t: (t[0], -t[2].k))
            rows[at] = self.simulate(candidate, p_error, val, d_mean, i)
        if not rows:
            raise SchemeError(f"{self.scheme.name}: no {self.scheme.family_name} code carries any information "
                              f"in {self.bits} channel bits")
        if self.source_code.variable_rate and not any(r.get("fit_rate", 0) > 0 for r in rows):
            needed = np.array([self.source_code.needed_bits(img) for img in val])
            # codes screened out for their frame errors may still be the only ones some images fit in
            for _, i, candidate, p_error, at in screened:
                if candidate.k >= needed.min():
                    rows[at] = self.simulate(candidate, p_error, val, d_mean, i)
            if not any(r.get("fit_rate", 0) > 0 for r in rows):
                raise SchemeError(self._cannot_fit(rows, needed, forced))
        best = min((r for r in rows if "expected_l2" in r), key=lambda r: (r["expected_l2"], -r["k"]))
        chosen = next(c for c, p in candidates if c.name == best["code"] and p == best["p_error"])
        for r in rows:
            r["chosen"] = r is best
        return chosen, best["p_error"], rows

    def _cannot_fit(self, rows: list[dict], needed: np.ndarray, forced: str | None) -> str:
        source, family = self.scheme.source_name, self.scheme.family_name
        if family.startswith("ideal"):
            which = f"{family} code carries"
        else:
            cap = self.capacity
            which = f"{family} codes" + (f" of rate <= capacity {cap:.3f}" if cap is not None and forced is None else "")
            which += " carry"
        return (f"{source} cannot fit any image in {self.bits} channel bits: the {which} at most "
                f"k = {max(r['k'] for r in rows)} information bits, but {source} needs {int(needed.min())}..{int(needed.max())} bits "
                f"per image (median {int(np.median(needed))}) even at its lowest quality ({len(needed)} validation images)")

    def frame_error_rate(self, code, frames: int, index: int) -> float:
        """Frame error rate (failed or wrong) of ``code`` on ``frames`` random information bits (stream
        ``"screening"``); 0 for ideal codes."""
        if _is_ideal(code):
            return 0.0
        rng, generator = self.generators("screening", index)
        info = rng.integers(0, 2, (frames, code.k), dtype=np.uint8)
        info_hat, ok = self.send(code, info, generator)
        return float((~ok | (info_hat != info).any(1)).mean())

    def simulate(self, code, p_error: float, val: np.ndarray, d_mean: np.ndarray, index: int) -> dict:
        """Expected distortion of one candidate on the validation images (one channel pass each, stream
        ``"validation"``)."""
        k = int(code.k)
        info, fits = self.proxy.encode_batch(val, k)
        x_src, _ = self.proxy.decode_batch(info)
        d_src = _l2(val, x_src)
        if _is_ideal(code):
            fail = np.zeros(len(val), bool)
            d = (1 - p_error) * d_src + p_error * d_mean
            undetected = 0.0
        else:
            info_hat, ok = self.send(code, info, self.generators("validation", index)[1])
            wrong = ok & (info_hat != info).any(1)
            d = np.where(ok, d_src, d_mean)
            if wrong.any():
                x_wrong, ok_wrong = self.proxy.decode_batch(info_hat[wrong])
                d[wrong] = np.where(ok_wrong, _l2(val[wrong], x_wrong), d_mean[wrong])
            fail = ~ok
            undetected = float(wrong.mean())
        return {"code": code.name, "k": k, "n": int(code.n), "rate": k / code.n, "p_error": p_error,
                "fit_rate": float(fits.mean()), "source_l2": float(d_src.mean()), "frame_failure": float(fail.mean()),
                "undetected": undetected, "expected_l2": float(d.mean()), "frames": len(val)}


@dataclass(frozen=True)
class SeparatedScheme(TrainsNothing):
    """The registered codec ``SOURCE+FAMILY``: checks a budget and builds the :class:`SeparatedCodec`
    for a channel. Its side of the codec protocol (:mod:`commsim.core.protocol`): it needs nothing
    before it is built (the source code's fit is cached by the source code itself) and trains nothing
    (``neural``'s compressor reads the budget's ``epochs``)."""

    source_name: str
    family_name: str
    what = "a separated scheme"

    @property
    def name(self) -> str:
        return f"{self.source_name}+{self.family_name}"

    @property
    def budget_reads(self) -> frozenset[str]:
        """``neural``'s compressor trains for the budget's epochs (given, or made from its images); the
        other source codes read nothing of the budget."""
        return frozenset({"epochs", "images", "config"}) if self.source_name == "neural" else frozenset()

    def bits_limit(self) -> tuple[int, str]:
        """``(most channel bits per image, why)``: the codec contract's limit or the family's, if lower."""
        limit, why = Codec.bits_limit()
        family = CHANNEL_CODES.get(self.family_name)
        family_limit = getattr(family, "max_length", None)
        if family_limit is not None and family_limit < limit:
            return family_limit, family.max_length_reason
        return limit, why

    def check_bits(self, bits: int) -> int:
        """``bits`` if this scheme can take that many channel bits per image, else ``ValueError``."""
        return checked_bits(bits, *self.bits_limit(), self.name)

    def codec_for(self, request: Request, source: ImageSource, artifact=None) -> "SeparatedCodec":
        """The protocol's build: :meth:`build` for the request's bits, channel, parameters and seed."""
        epochs = getattr(request.budget.config, "epochs", None) or request.budget.epochs_for(source.size("train"))
        options = {"epochs": epochs} if self.source_name == "neural" else {}
        codec = self.build(source, bits=request.bits, channel=request.channel, params=request.params, seed=request.seed,
                           source_options=options)
        return codec.to(resolve_device(request.device))

    def build(self, source: ImageSource, bits: int, channel: str = "bsc", params: dict | None = None, seed: int = 0,
              val_images: int = 400, screen_frames: int = 64, source_options: dict | None = None,
              family_options: dict | None = None, code: str | None = None) -> SeparatedCodec:
        """The scheme for ``bits`` channel bits on ``channel`` with ``params`` (e.g. ``{"eps": 0.1}``).

        Fits the source code on the training split, then picks the channel code with
        :class:`RateSelection` on the first ``val_images`` validation images. ``code`` forces a
        candidate by name (skipping the choice); ``source_options`` go to the source code (e.g.
        ``{"epochs": 5}`` for ``neural``), ``family_options`` to the family. ``screen_frames`` random
        frames per code first screen out codes whose frame error rate (detected or not) is at least
        :data:`SCREEN_LIMIT` (0 = no screening).
        Raises :class:`SchemeError` when no validation image fits any candidate's ``k``.
        """
        params = dict(params or {})
        bits = self.check_bits(bits)
        source_code = get_source_code(self.source_name, source.image_shape, seed=seed, **(source_options or {})).fit(source)
        proxy = source_code
        if self.source_name == "neural":
            proxy = get_source_code("pca", source.image_shape, seed=seed).fit(source)
        selection = RateSelection(self, source_code, proxy, bits, channel, params, seed)
        chosen, p_error, rows = selection.choose(_images(source, "val", val_images, seed),
                                                 self.candidates(bits, channel, params, family_options), screen_frames, code)
        if hasattr(source_code, "model"):
            source_code.model(chosen.k)  # train (or load) the learned compressor now, not inside evaluation
        return SeparatedCodec(source_code, chosen, bits, source.image_shape, family=self.family_name, p_error=p_error,
                              selection=rows, channel=channel, params=params)

    def candidates(self, bits: int, channel: str, params: dict, family_options: dict | None = None) -> list[tuple]:
        """``[(channel code, p_error)]`` to choose from."""
        options = dict(family_options or {})
        if self.family_name == "ideal":
            return [(c, 0.0) for c in channel_code_family("ideal", **options).codes_for(bits, channel, **params)]
        if self.family_name == "ideal-fbl":
            return [(c, p) for p in FBL_ERROR_RATES
                    for c in channel_code_family("ideal-fbl", p_error=p, **options).codes_for(bits, channel, **params)]
        members = member_families(bits) if self.family_name == "best" else [self.family_name]
        out, seen = [], set()
        for member in members:
            member_options = dict(options)
            crcs = CRC_OPTIONS.get(member, (None,))
            if "crc_bits" in member_options:
                crcs = (member_options.pop("crc_bits"),)
            for crc in crcs:
                family = channel_code_family(member, **member_options, **({} if crc is None else {"crc_bits": crc}))
                for c in family.codes_for(bits):
                    if c.name not in seen:
                        seen.add(c.name)
                        out.append((c, 0.0))
        return out


def scheme_description(src: str, fam: str) -> str:
    return f"Separated: {src} source code + {fam} channel code, rate chosen on validation (commsim.separated)."


def compose_scheme(name: str) -> SeparatedScheme | None:
    """The codec ``SOURCE+FAMILY`` of a registered source code and channel-code family (``None`` otherwise):
    a family registered after this module was imported (a user's, a test's) is a codec too."""
    src, plus, fam = name.partition("+")
    if not plus or src not in SOURCE_CODES or fam not in CHANNEL_CODES:
        return None
    scheme = SeparatedScheme(src, fam)
    object.__setattr__(scheme, "description", scheme_description(src, fam))
    return scheme


def register_all() -> list[str]:
    """Register the ``SOURCE+FAMILY`` codec of every source code and channel-code family; return the names."""
    names = []
    for src in SOURCE_CODES.names():
        for fam in CHANNEL_CODES.names():
            scheme = SeparatedScheme(src, fam)
            register_codec(scheme.name, doc=scheme_description(src, fam))(scheme)
            names.append(scheme.name)
    return names


SEPARATED_CODECS = register_all()
"""Names of the separated codecs registered at import (later families: :func:`compose_scheme`)."""
CODECS.compose(compose_scheme)
