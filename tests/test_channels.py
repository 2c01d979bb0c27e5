"""Statistical and contract tests of commsim.channels.

Every random test uses a fixed generator seed, so a run is deterministic; the statistical tolerances are
99.9 % binomial intervals (or 5 sigma where bits are correlated), so a correct channel passes for
essentially any seed.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom, norm

from commsim.channels import (
    AWGN,
    BEC,
    BSC,
    LLR_LIMIT,
    Bound,
    Chain,
    Channel,
    GilbertElliott,
    LambdaChannel,
    Param,
    ZChannel,
    check_bits,
    get_channel,
    hard_decisions,
    long_run_error_rate,
)

CONF = 0.999


pytestmark = pytest.mark.usefixtures("one_torch_thread")

EDGE_AND_INNER_EPS = [0.0, 0.01, 0.1, 0.3, 0.5, 1.0]
BSC_EPS = EDGE_AND_INNER_EPS + [0.7]  # eps > 1/2: negative reliability, inverted LLR sign


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_bits(b: int, m: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 2, (b, m), generator=gen(seed)).to(torch.float32)


def assert_binomial(k: int, n: int, p: float, what: str = "") -> None:
    """k successes out of n lie in the central 99.9 % interval of Binomial(n, p) (exact at p = 0 or 1)."""
    k, n = int(k), int(n)
    assert n > 0
    if p <= 0.0:
        assert k == 0, f"{what}: {k}/{n} events at p = 0"
    elif p >= 1.0:
        assert k == n, f"{what}: {k}/{n} events at p = 1"
    else:
        lo, hi = binom.interval(CONF, n, p)
        assert lo <= k <= hi, f"{what}: {k}/{n} = {k / n:.5f} outside the {CONF:.1%} interval [{lo}, {hi}] of p = {p}"


def reliability64(eps: float) -> float:
    """|log((1 - eps) / eps)| clipped, in float64, for the float32 value of eps the channel sees."""
    e = float(np.float32(eps))
    if e in (0.0, 1.0):
        return LLR_LIMIT
    return min(LLR_LIMIT, abs(math.log1p(-e) - math.log(e)))


def received_from_bsc_llr(llr: torch.Tensor, eps: float) -> torch.Tensor:
    """The hard bit the BSC delivered: the LLR sign, inverted when eps > 1/2 (negative reliability)."""
    return (llr < 0) if eps > 0.5 else (llr > 0)


# --------------------------------------------------------------------------------------------------------
# BSC, BEC, Z: rates and LLR values
# --------------------------------------------------------------------------------------------------------

N_BITS = (1000, 1000)  # 1e6 bits


@pytest.mark.parametrize("eps", BSC_EPS)
def test_bsc_flip_rate_and_llr(eps):
    bits = random_bits(*N_BITS, seed=1)
    llr = BSC()(bits, generator=gen(2), eps=eps)
    assert llr.shape == bits.shape and llr.dtype == torch.float32
    assert torch.isfinite(llr).all()
    expected_mag = reliability64(eps)
    assert torch.allclose(llr.abs().double(), torch.full_like(llr, expected_mag, dtype=torch.float64), rtol=1e-5, atol=1e-5)
    if eps == 0.5:
        # no information at all: every LLR is 0 (an erasure to hard_decisions)
        assert (llr == 0).all()
        assert (hard_decisions(llr) == 0.5).all()
        return
    received = received_from_bsc_llr(llr, eps)
    flips = int((received != bits.bool()).sum())
    assert_binomial(flips, bits.numel(), eps, f"BSC({eps}) flips")
    # the decision llr > 0 is the MAP decision: it errs with probability min(eps, 1 - eps)
    decision_errors = int(((llr > 0) != bits.bool()).sum())
    assert_binomial(decision_errors, bits.numel(), min(eps, 1 - eps), f"BSC({eps}) decision errors")


def test_bsc_llr_is_logit_of_posterior():
    """sigmoid(llr) must be the posterior P(b = 1 | received): the fraction of ones among bits with llr > 0."""
    eps = 0.2
    bits = random_bits(*N_BITS, seed=3)
    llr = BSC()(bits, generator=gen(4), eps=eps)
    positive = llr > 0
    assert torch.allclose(llr[positive], torch.tensor(math.log(0.8 / 0.2)), rtol=1e-6)
    ones_given_positive = int(bits[positive].sum())
    assert_binomial(ones_given_positive, int(positive.sum()), float(torch.sigmoid(torch.tensor(math.log(4.0)))), "P(b=1 | llr>0)")


@pytest.mark.parametrize("eps", EDGE_AND_INNER_EPS)
def test_bec_erasure_rate_and_llr(eps):
    bits = random_bits(*N_BITS, seed=5)
    llr = BEC()(bits, generator=gen(6), eps=eps)
    assert llr.shape == bits.shape and llr.dtype == torch.float32
    erased = llr == 0
    assert_binomial(int(erased.sum()), bits.numel(), eps, f"BEC({eps}) erasures")
    # bits that arrive are certain and correct; erasures carry exactly 0
    kept = ~erased
    assert torch.equal(llr[kept], (2 * bits[kept] - 1) * LLR_LIMIT)
    assert ((llr.abs() == LLR_LIMIT) | erased).all()
    assert torch.equal(hard_decisions(llr)[kept], bits[kept])
    assert (hard_decisions(llr)[erased] == 0.5).all()


@pytest.mark.parametrize("eps", EDGE_AND_INNER_EPS)
def test_z_channel_rate_and_llr(eps):
    bits = random_bits(1000, 2000, seed=7)  # ~1e6 ones
    llr = ZChannel()(bits, generator=gen(8), eps=eps)
    assert llr.shape == bits.shape and llr.dtype == torch.float32
    assert torch.isfinite(llr).all()
    received_one = llr == LLR_LIMIT
    ones = bits.bool()
    # a 0 is never corrupted
    assert not received_one[~ones].any()
    # a 1 turns into 0 with probability eps
    n_ones = int(ones.sum())
    assert n_ones >= 900_000
    assert_binomial(n_ones - int(received_one[ones].sum()), n_ones, eps, f"Z({eps}) 1->0")
    # received 1 -> +LLR_LIMIT (certain); received 0 -> log(eps) (clipped), the posterior log-ratio
    llr_zero = max(-LLR_LIMIT, math.log(float(np.float32(eps)))) if eps > 0 else -LLR_LIMIT
    assert torch.allclose(llr[~received_one], torch.tensor(llr_zero), atol=1e-5)
    if 0 < eps < 1:
        # calibration: among received zeros the fraction of ones is sigmoid(log eps) = eps / (1 + eps)
        zeros_rx = ~received_one
        assert_binomial(int(bits[zeros_rx].sum()), int(zeros_rx.sum()), eps / (1 + eps), f"Z({eps}) P(b=1|r=0)")


# --------------------------------------------------------------------------------------------------------
# AWGN
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ebno_db", [0.0, 2.0, 4.0])
def test_awgn_hard_decision_ber(ebno_db):
    bits = random_bits(*N_BITS, seed=11)
    llr = AWGN()(bits, generator=gen(12), ebno_db=ebno_db)
    assert llr.shape == bits.shape and llr.dtype == torch.float32
    assert torch.isfinite(llr).all() and llr.abs().max() <= LLR_LIMIT
    errors = int(((llr > 0) != bits.bool()).sum())
    ber = norm.sf(math.sqrt(2 * 10 ** (ebno_db / 10)))
    assert_binomial(errors, bits.numel(), ber, f"AWGN Eb/N0={ebno_db} dB BER")


def test_awgn_ebno_rate_equals_snr():
    bits = random_bits(64, 256, seed=13)
    for x in (-3.0, 0.0, 5.0):
        a = AWGN()(bits, generator=gen(14), ebno_db=x, rate=0.5)
        b = AWGN()(bits, generator=gen(14), snr_db=x + 10 * math.log10(0.5))
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)
        # at rate 1 Eb/N0 and Es/N0 coincide
        c = AWGN()(bits, generator=gen(14), ebno_db=x)
        d = AWGN()(bits, generator=gen(14), snr_db=x)
        assert torch.allclose(c, d, rtol=1e-6, atol=1e-6)
        # and the rate matters: rate 0.5 at the same Eb/N0 is noisier, so not the same output
        assert not torch.allclose(a, c)
    # snr_db ignores rate
    e = AWGN()(bits, generator=gen(14), snr_db=1.0, rate=0.25)
    f = AWGN()(bits, generator=gen(14), snr_db=1.0)
    assert torch.equal(e, f)


def test_awgn_llr_is_2r_over_sigma2():
    """Recreate the noise from the same seed and check llr = 2 r / sigma^2 exactly (before clipping)."""
    bits = random_bits(32, 128, seed=15)
    snr_db = 1.0
    llr = AWGN()(bits, generator=gen(16), snr_db=snr_db)
    sigma2 = 1 / (2 * 10 ** (snr_db / 10))
    noise = torch.randn(bits.shape, generator=gen(16))
    r = (2 * bits - 1) + math.sqrt(sigma2) * noise
    assert torch.allclose(llr, (2 * r / sigma2).clamp(-LLR_LIMIT, LLR_LIMIT), rtol=1e-5, atol=1e-4)


def calibration_gaps(llr: torch.Tensor, bits: torch.Tensor, width: float = 0.5, lo: float = -8.0, hi: float = 8.0):
    """Per llr bin with >= 2000 samples: (|fraction of ones - mean sigmoid(llr)| / 5-sigma binomial tolerance,
    |fraction of ones - sigmoid(bin centre)|)."""
    x = llr.double().numpy().ravel()
    y = bits.double().numpy().ravel()
    inside = (x >= lo) & (x < hi)
    x, y = x[inside], y[inside]
    n_bins = int(round((hi - lo) / width))
    idx = np.minimum(((x - lo) / width).astype(np.int64), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    ones = np.bincount(idx, weights=y, minlength=n_bins)
    prob = np.bincount(idx, weights=1 / (1 + np.exp(-x)), minlength=n_bins)
    out = []
    for k in np.flatnonzero(count >= 2000):
        n = count[k]
        frac, p = ones[k] / n, prob[k] / n
        tol = 5 * math.sqrt(max(p * (1 - p), 1e-4) / n) + 1e-3
        centre = lo + (k + 0.5) * width
        out.append((abs(frac - p) / tol, abs(frac - 1 / (1 + math.exp(-centre)))))
    return out


def test_awgn_llr_is_calibrated():
    bits = random_bits(*N_BITS, seed=17)
    llr = AWGN()(bits, generator=gen(18), ebno_db=0.0)
    gaps = calibration_gaps(llr, bits)
    assert len(gaps) >= 20
    assert max(g[0] for g in gaps) <= 1.0, gaps  # exact calibration within 5 sigma
    assert max(g[1] for g in gaps) <= 0.05, gaps  # loose: fraction of ones ~ sigmoid(bin centre)
    # the check has teeth: an LLR off by a factor of 2 is visibly miscalibrated
    wrong = calibration_gaps(2 * llr, bits)
    assert max(g[0] for g in wrong) > 3.0


def test_awgn_needs_exactly_one_of_ebno_or_snr():
    bits = random_bits(4, 8, seed=19)
    with pytest.raises(ValueError, match="ebno_db"):
        AWGN()(bits)
    with pytest.raises(ValueError, match="exactly one"):
        AWGN()(bits, ebno_db=1.0, snr_db=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        AWGN()(bits, rate=0.5)
    # one of them is enough
    assert AWGN()(bits, ebno_db=1.0).shape == bits.shape
    assert AWGN()(bits, snr_db=1.0).shape == bits.shape


def test_awgn_per_sample_snr():
    """A [B] tensor gives each row its own noise level: the BER per row follows Q(sqrt(2 Eb/N0))."""
    ebno = torch.tensor([0.0, 4.0, 8.0, 60.0])
    bits = random_bits(4, 250_000, seed=20)
    llr = AWGN()(bits, generator=gen(21), ebno_db=ebno)
    for row, x in enumerate(ebno.tolist()):
        errors = int(((llr[row] > 0) != bits[row].bool()).sum())
        assert_binomial(errors, bits.shape[1], norm.sf(math.sqrt(2 * 10 ** (x / 10))), f"row Eb/N0={x}")


# --------------------------------------------------------------------------------------------------------
# Gilbert-Elliott
# --------------------------------------------------------------------------------------------------------

GE_B, GE_M = 2000, 500


def ge_errors(seed: int, **params) -> torch.Tensor:
    bits = random_bits(GE_B, GE_M, seed=seed)
    llr = GilbertElliott()(bits, generator=gen(seed + 1), **params)
    assert llr.shape == bits.shape and llr.dtype == torch.float32
    rate = float(long_run_error_rate(*(params.get(k, d) for k, d in
                                       (("p_gb", 0.05), ("p_bg", 0.25), ("eps_good", 0.01), ("eps_bad", 0.3)))))
    # LLR magnitude is the reliability of the long-run error rate
    assert torch.allclose(llr.abs().double(), torch.full_like(llr, reliability64(rate), dtype=torch.float64), rtol=1e-5)
    return received_from_bsc_llr(llr, rate) != bits.bool()


def assert_mean_within_5_sigma(per_row: torch.Tensor, expected: float, what: str) -> None:
    per_row = per_row.double()
    se = float(per_row.std()) / math.sqrt(per_row.numel())
    mean = float(per_row.mean())
    assert abs(mean - expected) <= 5 * se + 1e-9, f"{what}: {mean:.5f} vs {expected:.5f} (5 sigma = {5 * se:.5f})"


@pytest.mark.parametrize(
    "params",
    [
        {},  # defaults: p_gb 0.05, p_bg 0.25, eps_good 0.01, eps_bad 0.3
        {"p_gb": 0.01, "p_bg": 0.1, "eps_good": 0.0, "eps_bad": 0.5},
    ],
)
def test_gilbert_elliott_long_run_rate(params):
    errors = ge_errors(31, **params)
    expected = float(long_run_error_rate(params.get("p_gb", 0.05), params.get("p_bg", 0.25),
                                         params.get("eps_good", 0.01), params.get("eps_bad", 0.3)))
    assert 0.01 < expected < 0.2
    # rows are independent (each starts from the stationary distribution); bits within a row are not
    assert_mean_within_5_sigma(errors.float().mean(dim=1), expected, "GE long-run error rate")


def test_long_run_error_rate_closed_form():
    assert float(long_run_error_rate(0.05, 0.25, 0.01, 0.3)) == pytest.approx(5 / 6 * 0.01 + 1 / 6 * 0.3)
    assert float(long_run_error_rate(0.0, 0.0, 0.02, 0.4)) == pytest.approx(0.02)  # stays in the good state
    assert float(long_run_error_rate(1.0, 0.0, 0.02, 0.4)) == pytest.approx(0.4)  # absorbed in the bad state


def test_gilbert_elliott_is_bursty():
    p_gb, p_bg, eps_g, eps_b = 0.02, 0.2, 0.001, 0.4
    errors = ge_errors(41, p_gb=p_gb, p_bg=p_bg, eps_good=eps_g, eps_bad=eps_b)
    # exact marginal and pair probabilities of the hidden Markov chain
    pi = np.array([p_bg, p_gb]) / (p_gb + p_bg)
    trans = np.array([[1 - p_gb, p_gb], [p_bg, 1 - p_bg]])
    e = np.array([eps_g, eps_b])
    marginal = float(pi @ e)
    joint = float((pi * e) @ trans @ e)
    pairs = (errors[:, :-1] & errors[:, 1:]).float()
    assert_mean_within_5_sigma(errors.float().mean(dim=1), marginal, "GE marginal")
    assert_mean_within_5_sigma(pairs.mean(dim=1), joint, "GE P(e_i, e_i+1)")
    conditional = float(pairs.sum() / errors[:, :-1].float().sum())
    assert conditional == pytest.approx(joint / marginal, rel=0.1)
    assert conditional > 5 * marginal  # errors come in bursts

    # control: with eps_good == eps_bad the channel is memoryless and the conditional equals the marginal
    flat = ge_errors(43, p_gb=p_gb, p_bg=p_bg, eps_good=0.1, eps_bad=0.1)
    flat_pairs = (flat[:, :-1] & flat[:, 1:]).float()
    assert_mean_within_5_sigma(flat_pairs.mean(dim=1), 0.01, "memoryless GE P(e_i, e_i+1)")


def test_gilbert_elliott_per_sample_params():
    bits = random_bits(4, 20_000, seed=45)
    eps_bad = torch.tensor([0.0, 0.0, 0.3, 0.3])
    eps_good = torch.tensor([0.0, 0.05, 0.0, 0.05])
    llr = GilbertElliott()(bits, generator=gen(46), eps_bad=eps_bad, eps_good=eps_good)
    assert torch.all((llr[0] > 0) == bits[0].bool())  # no errors in either state
    # a [B, m] parameter is refused: the state chain runs along the row
    with pytest.raises(ValueError, match="per sample"):
        GilbertElliott()(bits, eps_bad=torch.full(bits.shape, 0.3))


# --------------------------------------------------------------------------------------------------------
# Per-sample and per-bit parameters
# --------------------------------------------------------------------------------------------------------


def test_bsc_per_sample_eps():
    eps = torch.tensor([0.0, 0.05, 0.3, 1.0, 0.0, 1.0])
    bits = random_bits(6, 200_000, seed=51)
    llr = BSC()(bits, generator=gen(52), eps=eps)
    for row, e in enumerate(eps.tolist()):
        received = received_from_bsc_llr(llr[row], e)
        flips = int((received != bits[row].bool()).sum())
        assert_binomial(flips, bits.shape[1], e, f"row {row} eps={e}")
        assert torch.allclose(llr[row].abs().double(), torch.tensor(reliability64(e), dtype=torch.float64), rtol=1e-5)
    # eps = 0 and eps = 1 rows both decode perfectly (llr > 0 is the sent bit)
    for row in (0, 3, 4, 5):
        assert torch.equal((llr[row] > 0).float(), bits[row])


def test_bec_and_z_per_sample_eps():
    eps = torch.tensor([0.0, 0.2, 1.0])
    bits = torch.ones(3, 100_000)
    bec = BEC()(bits, generator=gen(53), eps=eps)
    z = ZChannel()(bits, generator=gen(54), eps=eps)
    for row, e in enumerate(eps.tolist()):
        assert_binomial(int((bec[row] == 0).sum()), bits.shape[1], e, f"BEC row {row}")
        assert_binomial(int((z[row] != LLR_LIMIT).sum()), bits.shape[1], e, f"Z row {row}")


def test_bsc_per_bit_eps():
    b, m = 8, 100_000
    bits = random_bits(b, m, seed=55)
    # deterministic columns: first quarter eps = 0, second quarter eps = 1, the rest random eps
    eps = torch.rand(b, m, generator=gen(56)) * 0.5
    eps[:, : m // 4] = 0.0
    eps[:, m // 4 : m // 2] = 1.0
    llr = BSC()(bits, generator=gen(57), eps=eps)
    mag = (torch.log1p(-eps.double()) - torch.log(eps.double())).abs().clamp(max=LLR_LIMIT)
    assert torch.allclose(llr.abs().double(), mag, rtol=1e-5, atol=1e-5)
    received_sign = torch.where(eps > 0.5, -llr, llr) > 0
    flipped = received_sign != bits.bool()
    assert not flipped[:, : m // 4].any()
    assert flipped[:, m // 4 : m // 2].all()
    # random columns: number of flips is Poisson-binomial with mean sum(eps), variance sum(eps (1 - eps))
    rest = eps[:, m // 2 :].double()
    mean, var = float(rest.sum()), float((rest * (1 - rest)).sum())
    assert abs(int(flipped[:, m // 2 :].sum()) - mean) <= 5 * math.sqrt(var)


def test_per_sample_eps_of_shape_b1_and_scalar_tensor():
    bits = random_bits(3, 1000, seed=58)
    a = BSC()(bits, generator=gen(59), eps=torch.tensor([0.1, 0.2, 0.3]))
    b = BSC()(bits, generator=gen(59), eps=torch.tensor([[0.1], [0.2], [0.3]]))
    assert torch.equal(a, b)
    c = BSC()(bits, generator=gen(59), eps=torch.tensor(0.1))
    d = BSC()(bits, generator=gen(59), eps=0.1)
    assert torch.equal(c, d)


# --------------------------------------------------------------------------------------------------------
# Reproducibility
# --------------------------------------------------------------------------------------------------------

CHANNEL_CASES = {
    "bsc": (BSC, {"eps": 0.2}),
    "bec": (BEC, {"eps": 0.2}),
    "z": (ZChannel, {"eps": 0.2}),
    "awgn": (AWGN, {"ebno_db": 1.0}),
    "gilbert_elliott": (GilbertElliott, {}),
    "chain": (lambda: Chain(Bound(BSC(), eps=0.1), BEC()), {"eps": 0.2}),
    "lambda": (
        lambda: LambdaChannel(lambda bits, generator: (bits + (torch.rand(bits.shape, generator=generator) < 0.3)) % 2),
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(CHANNEL_CASES))
def test_same_seed_same_output_different_seed_differs(name):
    factory, params = CHANNEL_CASES[name]
    bits = random_bits(16, 64, seed=61)
    a = factory()(bits, generator=gen(7), **params)
    b = factory()(bits, generator=gen(7), **params)
    c = factory()(bits, generator=gen(8), **params)
    assert a.shape == bits.shape and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # generator=None draws from torch's global generator
    assert factory()(bits, **params).shape == bits.shape


@pytest.mark.parametrize("name", ["bsc", "bec", "z", "awgn", "gilbert_elliott"])
def test_registry_names(name):
    channel = get_channel(name)
    assert isinstance(channel, Channel) and isinstance(channel, CHANNEL_CASES[name][0])
    assert channel.main_param in channel.params


def test_unknown_channel_name():
    with pytest.raises(ValueError, match="no_such_channel"):
        get_channel("no_such_channel")


# --------------------------------------------------------------------------------------------------------
# Bad parameters and bad bits
# --------------------------------------------------------------------------------------------------------

B, M = 4, 6


@pytest.mark.parametrize("channel_cls", [BSC, BEC, ZChannel])
@pytest.mark.parametrize(
    "eps",
    [
        -0.1,
        1.5,
        -1e-9,
        math.nan,
        math.inf,
        torch.tensor([0.1, 0.2, -0.3, 0.4]),
        torch.tensor([0.1, math.nan, 0.3, 0.4]),
        torch.full((B + 1,), 0.1),
        torch.full((B, M + 1), 0.1),
        torch.full((1, M), 0.1),
        torch.full((B, M, 1), 0.1),
        "0.1",
        True,
        None,
    ],
    ids=repr,
)
def test_bad_eps_is_refused(channel_cls, eps):
    bits = random_bits(B, M, seed=71)
    with pytest.raises(ValueError, match="eps"):
        channel_cls()(bits, eps=eps)


@pytest.mark.parametrize("channel_cls", [BSC, BEC, ZChannel])
def test_missing_and_unknown_parameter(channel_cls):
    bits = random_bits(B, M, seed=72)
    with pytest.raises(ValueError, match="eps"):
        channel_cls()(bits)
    with pytest.raises(ValueError, match="epsilon"):
        channel_cls()(bits, epsilon=0.1)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"ebno_db": 100.0}, "ebno_db"),
        ({"ebno_db": math.nan}, "ebno_db"),
        ({"snr_db": -80.0}, "snr_db"),
        ({"ebno_db": 1.0, "rate": 0.0}, "rate"),
        ({"ebno_db": 1.0, "rate": 1.5}, "rate"),
        ({"ebno_db": torch.zeros(B + 1)}, "ebno_db"),
        ({"ebno_db": 1.0, "eps": 0.1}, "eps"),
    ],
)
def test_awgn_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AWGN()(random_bits(B, M, seed=73), **kwargs)


@pytest.mark.parametrize("name", ["p_gb", "p_bg", "eps_good", "eps_bad"])
def test_gilbert_elliott_bad_parameters(name):
    bits = random_bits(B, M, seed=74)
    with pytest.raises(ValueError, match=name):
        GilbertElliott()(bits, **{name: -0.5})
    with pytest.raises(ValueError, match=name):
        GilbertElliott()(bits, **{name: torch.full((B + 2,), 0.1)})


BAD_BITS = {
    "1-D": torch.zeros(6),
    "3-D": torch.zeros(2, 3, 4),
    "0-D": torch.tensor(1.0),
    "int64": torch.zeros(B, M, dtype=torch.int64),
    "bool": torch.zeros(B, M, dtype=torch.bool),
    "value 2": torch.full((B, M), 2.0),
    "value 0.5": torch.full((B, M), 0.5),
    "value -1": torch.full((B, M), -1.0),
    "nan": torch.full((B, M), math.nan),
    "list": [[0.0, 1.0], [1.0, 0.0]],
    "numpy": np.zeros((B, M), dtype=np.float32),
}


@pytest.mark.parametrize("case", sorted(BAD_BITS))
@pytest.mark.parametrize("name", sorted(CHANNEL_CASES))
def test_bad_bits_are_refused(case, name):
    factory, params = CHANNEL_CASES[name]
    with pytest.raises(ValueError, match="bits"):
        factory()(BAD_BITS[case], **params)


def test_check_bits_accepts_float64_and_empty():
    assert check_bits(torch.ones(2, 3, dtype=torch.float64)).shape == (2, 3)
    assert check_bits(torch.zeros(0, 5)).shape == (0, 5)
    llr = BSC()(torch.ones(2, 3, dtype=torch.float64), eps=0.1)
    assert llr.dtype == torch.float32


def test_hard_decisions():
    llr = torch.tensor([[-3.0, 0.0, 2.0, -LLR_LIMIT, LLR_LIMIT]])
    assert torch.equal(hard_decisions(llr), torch.tensor([[0.0, 0.5, 1.0, 0.0, 1.0]]))


# --------------------------------------------------------------------------------------------------------
# Chain and Bound
# --------------------------------------------------------------------------------------------------------


def test_chain_of_two_bsc():
    a, b = 0.05, 0.1
    c = a * (1 - b) + b * (1 - a)
    bits = random_bits(*N_BITS, seed=81)
    chain = Chain(Bound(BSC(), eps=a), Bound(BSC(), eps=b))
    llr = chain(bits, generator=gen(82))
    assert llr.shape == bits.shape and llr.dtype == torch.float32
    assert_binomial(int(((llr > 0) != bits.bool()).sum()), bits.numel(), c, "BSC->BSC flips")
    assert torch.allclose(llr.abs().double(), torch.full_like(llr, math.log((1 - c) / c), dtype=torch.float64), rtol=1e-5)
    # the composite is calibrated too: P(b = 1 | llr > 0) = 1 - c
    pos = llr > 0
    assert_binomial(int(bits[pos].sum()), int(pos.sum()), 1 - c, "BSC->BSC P(b=1|llr>0)")


def test_chain_bsc_then_bec():
    a, e = 0.1, 0.3
    bits = random_bits(*N_BITS, seed=83)
    llr = Chain(Bound(BSC(), eps=a), Bound(BEC(), eps=e))(bits, generator=gen(84))
    erased = llr == 0
    assert_binomial(int(erased.sum()), bits.numel(), e, "BSC->BEC erasures")
    kept = ~erased
    assert_binomial(int(((llr[kept] > 0) != bits[kept].bool()).sum()), int(kept.sum()), a, "BSC->BEC flips")
    assert torch.allclose(llr[kept].abs(), torch.tensor(math.log((1 - a) / a)), rtol=1e-5)


def test_chain_bec_then_bsc_keeps_erasures():
    bits = random_bits(200, 1000, seed=85)
    llr = Chain(Bound(BEC(), eps=0.25), Bound(BSC(), eps=0.1))(bits, generator=gen(86))
    assert_binomial(int((llr == 0).sum()), bits.numel(), 0.25, "BEC->BSC erasures")


def test_chain_of_one_stage_equals_the_stage():
    bits = random_bits(50, 200, seed=87)
    for eps in (0.0, 1e-9, 0.01, 0.3, 0.7, 1.0):
        alone = BSC()(bits, generator=gen(88), eps=eps)
        chained = Chain(Bound(BSC(), eps=eps))(bits, generator=gen(88))
        assert torch.allclose(alone, chained, rtol=1e-5, atol=1e-5), eps
    # noiseless stages stay certain (LLR_LIMIT), also through several of them and for float64 bits
    clean = Chain(Bound(BSC(), eps=0.0), Bound(BEC(), eps=0.0), Bound(ZChannel(), eps=0.0))(bits.double(), generator=gen(89))
    assert clean.dtype == torch.float32
    assert torch.equal(clean, (2 * bits - 1) * LLR_LIMIT)


def test_chain_routes_call_parameters():
    bits = torch.ones(4, 100_000)
    chain = Chain(BSC(), Bound(BEC(), eps=0.0))
    assert set(chain.params) == {"eps"} and chain.main_param == "eps"
    llr = chain(bits, generator=gen(90), eps=0.2)  # eps goes to the BSC only (the BEC's is bound)
    assert not (llr == 0).any()
    assert_binomial(int((llr < 0).sum()), bits.numel(), 0.2, "Chain(BSC, BEC(0)) flips")
    with pytest.raises(ValueError, match="ebno_db"):
        chain(bits, eps=0.2, ebno_db=3.0)
    with pytest.raises(ValueError, match="Chain needs"):
        Chain()


def test_bound():
    bits = random_bits(8, 16, seed=91)
    bound = Bound(BSC(), eps=0.1)
    assert bound.params == {} and bound.main_param is None
    assert torch.equal(bound(bits, generator=gen(92)), BSC()(bits, generator=gen(92), eps=0.1))
    with pytest.raises(ValueError, match="eps"):
        bound(bits, eps=0.2)
    with pytest.raises(ValueError, match="epsilon"):
        Bound(BSC(), epsilon=0.1)
    with pytest.raises(ValueError, match="eps"):
        Bound(BSC(), eps=2.0)(bits)  # the range is still checked at call time
    partly = Bound(AWGN(), rate=0.5)
    assert "rate" not in partly.params and "ebno_db" in partly.params
    assert torch.equal(partly(bits, generator=gen(93), ebno_db=2.0), AWGN()(bits, generator=gen(93), ebno_db=2.0, rate=0.5))


# --------------------------------------------------------------------------------------------------------
# LambdaChannel
# --------------------------------------------------------------------------------------------------------


def test_lambda_flip_everything():
    flip_all = LambdaChannel(lambda bits, generator: 1 - bits)
    bits = random_bits(5, 7, seed=101)
    llr = flip_all(bits)
    assert llr.dtype == torch.float32
    assert torch.equal(llr, (1 - 2 * bits) * LLR_LIMIT)
    assert flip_all.params == {} and flip_all.main_param is None


def test_lambda_user_bsc_with_parameter():
    def my_bsc(bits, generator, eps):
        return (bits + (torch.rand(bits.shape, generator=generator) < eps).float()) % 2

    channel = LambdaChannel(my_bsc, params={"eps": Param(0.0, 1.0)})
    assert channel.main_param == "eps" and channel.name == "my_bsc"
    bits = random_bits(1000, 1000, seed=102)
    llr = channel(bits, generator=gen(103), eps=0.1)
    assert set(torch.unique(llr.abs()).tolist()) == {LLR_LIMIT}
    assert_binomial(int(((llr > 0) != bits.bool()).sum()), bits.numel(), 0.1, "LambdaChannel BSC")
    with pytest.raises(ValueError, match="eps"):
        channel(bits, eps=1.5)
    with pytest.raises(ValueError, match="eps"):
        channel(bits)


def test_lambda_llr_output():
    channel = LambdaChannel(lambda bits, generator, scale: scale * (2 * bits - 1), params={"scale": Param(0.0, 1e6)}, output="llr")
    bits = random_bits(3, 9, seed=104)
    assert torch.allclose(channel(bits, scale=2.5), 2.5 * (2 * bits - 1))
    assert torch.equal(channel(bits, scale=1000.0), LLR_LIMIT * (2 * bits - 1))  # clipped


def test_lambda_bad_functions():
    bits = random_bits(3, 9, seed=105)
    with pytest.raises(ValueError, match="shape"):
        LambdaChannel(lambda bits, generator: bits[:, :-1])(bits)
    with pytest.raises(ValueError, match="shape"):
        LambdaChannel(lambda bits, generator: bits.T, output="llr")(bits)
    with pytest.raises(ValueError, match="shape"):
        LambdaChannel(lambda bits, generator: bits.tolist())(bits)
    with pytest.raises(ValueError, match="output='llr'"):
        LambdaChannel(lambda bits, generator: 2 * bits + 0.5)(bits)  # output="bits" must be 0/1: say what to pass
    with pytest.raises(ValueError, match="output"):
        LambdaChannel(lambda bits, generator: bits, output="prob")


# --------------------------------------------------------------------------------------------------------
# Property test
# --------------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(data=st.data(), b=st.integers(1, 5), m=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_bsc_property(data, b, m, seed):
    eps = data.draw(st.lists(st.floats(0.0, 1.0), min_size=b, max_size=b), label="eps")
    bits = random_bits(b, m, seed=seed)
    llr = BSC()(bits, generator=gen(seed), eps=torch.tensor(eps))
    assert llr.shape == (b, m) and llr.dtype == torch.float32
    assert torch.isfinite(llr).all()
    for row, e in enumerate(eps):
        mags = llr[row].abs().double()
        assert torch.all(mags == mags[0])  # constant per row
        assert float(mags[0]) == pytest.approx(reliability64(e), rel=1e-5, abs=1e-5)
    # a scalar eps gives every row the same magnitude
    scalar = BSC()(bits, generator=gen(seed), eps=eps[0])
    assert torch.all(scalar.abs() == llr[0].abs()[0])


def test_a_channel_that_writes_into_its_input_or_returns_nonfinite_llrs_is_refused():
    """The one check every channel block passes through (Channel.forward): a transmit that modifies the
    sender's bits in place, returns NaN / infinite LLRs or something else than a tensor of the bits'
    shape raises one line naming the channel."""
    from commsim.channels import LambdaChannel

    bits = torch.randint(0, 2, (4, 16)).float()
    sent = bits.clone()

    def in_place(b, generator):
        return b.mul_(0)

    with pytest.raises(ValueError, match="in_place modified its input bits in place"):
        LambdaChannel(in_place)(bits)
    bits.copy_(sent)
    nan = LambdaChannel(lambda b, g: torch.full_like(b, float("nan")), output="llr", name="nan_llr")
    with pytest.raises(ValueError, match="nan_llr returned LLRs that are NaN or infinite"):
        nan(bits)

    class Numpy(Channel):
        def transmit(self, b, generator):
            return b.numpy()

    with pytest.raises(ValueError, match="Numpy returned a ndarray; transmit must return a torch.Tensor"):
        Numpy()(bits)
    assert torch.equal(bits, sent)
    assert torch.isfinite(get_channel("bsc")(bits, eps=0.1)).all()  # a good channel passes
