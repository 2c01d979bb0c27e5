"""Channel codes of the separated baselines: exact decoding, corrections, accounting, commpy's sign
conventions, the design loader, constructions and the ideal-code closed forms.

The default decoders are the batched torch ones (LDPC: layered sum-product BP; conv: Viterbi); the
tests compare them with the references that stay selectable (``decoder="numpy"`` and
``decoder="commpy"``) on the same frames."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from commsim.fec import (
    CHANNEL_CODES, CRC, ConvCode, IdealCode, LDPCCode, RepetitionCode, awgn_capacity, bp_decode, bsc_capacity,
    capacity, channel_code_family, commpy_bp_decode, load_design, normal_approximation_bits, regular_ldpc,
    z_capacity,
)
from commsim.fec.ldpc import gf2_systematic, syndrome_ok, torch_bp_decoder
from commsim.channels.base import LLR_LIMIT
from commsim.core.registry import UnknownNameError


def perfect_llr(words: np.ndarray) -> np.ndarray:
    return LLR_LIMIT * (2.0 * words - 1.0)


def bsc_llr(words: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
    received = words ^ (rng.random(words.shape) < eps)
    return math.log((1 - eps) / eps) * (2.0 * received - 1.0)


def random_info(code, frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (frames, code.k)).astype(np.uint8)


@pytest.fixture(scope="module")
def wimax() -> LDPCCode:
    return LDPCCode(load_design("wimax/1440.720"))


DECODERS = ("torch", "numpy", "commpy")
"""The default decoder first, then the references."""


def make_small_codes(decoder: str = "torch") -> list:
    """A few codes of every kind; the LDPC and conv ones use ``decoder``."""
    return [
        LDPCCode(load_design("wimax/1440.720"), decoder=decoder),
        LDPCCode(regular_ldpc(200, 100), decoder=decoder),
        LDPCCode(regular_ldpc(100, 75), repeat=3, decoder=decoder),
        ConvCode(60, memory=6, decoder=decoder),
        ConvCode(60, memory=2, puncture="3/4", crc_bits=8, decoder=decoder),
        ConvCode(40, memory=6, puncture="2/3", repeat=3, crc_bits=16, decoder=decoder),
        RepetitionCode(50, 5),
        RepetitionCode(50, 3, crc_bits=16),
    ]


def test_default_decoders_are_the_torch_ones():
    from commsim.fec import ldpc

    H = regular_ldpc(200, 100)
    ldpc._TORCH_DECODERS.clear()
    for code in (LDPCCode(H), channel_code_family("ldpc").code(200, 1 / 2)):
        code.decode(perfect_llr(code.encode(random_info(code, 2))))
    assert len(ldpc._TORCH_DECODERS) == 1  # one decoder per matrix, built on the first decode, shared
    dec = next(iter(ldpc._TORCH_DECODERS.values()))
    assert torch_bp_decoder(H.copy()) is dec and (dec.algorithm, dec.schedule) == ("sum-product", "layered")
    assert ConvCode(10).decoder == "torch" and channel_code_family("conv").codes_for(200)[0].decoder == "torch"
    with pytest.raises(ValueError, match="decoder"):
        LDPCCode(H, decoder="julia")
    with pytest.raises(ValueError, match="decoder"):
        ConvCode(10, decoder="julia")


# Every code: exact on a clean channel, corrects a few flips, with every decoder ------------------

@pytest.mark.parametrize("decoder", DECODERS)
def test_error_free_channel_decodes_exactly(decoder):
    for code in make_small_codes(decoder):
        info = random_info(code, 4)
        words = code.encode(info)
        assert words.shape == (4, code.n) and words.dtype == np.uint8, code.name
        decoded, ok = code.decode(perfect_llr(words))
        assert decoded.dtype == np.uint8 and ok.dtype == bool and ok.shape == (4,), code.name
        np.testing.assert_array_equal(decoded, info, err_msg=f"{code.name} {decoder}")
        assert ok.all(), code.name


@pytest.mark.parametrize("decoder", DECODERS)
def test_corrects_hand_placed_flips(decoder):
    for code in make_small_codes(decoder):
        if decoder == "commpy" and isinstance(code, ConvCode) and code.memory == 2 and code.puncture != "1/2":
            continue  # commpy's traceback of 5 * memory = 10 steps is too short for punctured K = 3
        info = random_info(code, 3, seed=1)
        llr = perfect_llr(code.encode(info))
        # commpy's Viterbi does not force the terminal state, so it need not correct a flip in the tail
        last = code.n // 2 + 9 if decoder == "commpy" and isinstance(code, ConvCode) else code.n - 1
        for frame, positions in enumerate([[0], [5, code.n // 2], [1, code.n // 3, last]]):
            llr[frame, positions] *= -1  # certain but wrong
        if not (decoder == "commpy" and isinstance(code, LDPCCode)):  # commpy's BP breaks on erasures
            llr[:, 2] = 0.0  # and an erasure
        decoded, ok = code.decode(llr)
        np.testing.assert_array_equal(decoded, info, err_msg=f"{code.name} {decoder}")
        assert ok.all(), code.name


def test_wrong_shapes_are_rejected():
    code = RepetitionCode(8, 3)
    with pytest.raises(ValueError, match="shape"):
        code.encode(np.zeros((2, 9), np.uint8))
    with pytest.raises(ValueError, match="only 0 and 1"):
        code.encode(np.full((2, 8), 2))
    with pytest.raises(ValueError, match="shape"):
        code.decode(np.zeros((2, 23)))


# LDPC ------------------------------------------------------------------------------------------

def test_wimax_loader_shape_and_degrees(wimax):
    H = load_design("wimax/1440.720")
    assert H.shape == (720, 1440) and H.nnz == 4560 and set(H.data) == {1}
    var_deg = np.bincount(np.asarray(H.sum(axis=0)).ravel())
    chk_deg = np.bincount(np.asarray(H.sum(axis=1)).ravel())
    assert {d: c for d, c in enumerate(var_deg) if c} == {2: 660, 3: 480, 6: 300}
    assert {d: c for d, c in enumerate(chk_deg) if c} == {6: 480, 7: 240}
    assert (wimax.k, wimax.n, wimax.name) == (720, 1440, "ldpc(1440,720)")
    gallager = load_design("gallager/96.33.964")
    assert gallager.shape == (48, 96)
    assert set(np.asarray(gallager.sum(axis=0)).ravel()) == {3} and set(np.asarray(gallager.sum(axis=1)).ravel()) == {6}


@pytest.mark.parametrize("n, rate", [(100, 1 / 2), (1000, 1 / 4), (600, 3 / 4), (3000, 1 / 3)])
def test_constructed_codes_have_requested_length_and_rate(n, rate):
    H = regular_ldpc(n, round(n * (1 - rate)), dv=3, seed=0)
    assert H.shape == (round(n * (1 - rate)), n)
    assert set(H.data) == {1}  # no column meets a row twice
    assert set(np.asarray(H.sum(axis=0)).ravel()) == {3}
    row_deg = np.asarray(H.sum(axis=1)).ravel()
    assert row_deg.max() - row_deg.min() <= 2
    code = LDPCCode(H)
    assert code.n == n and abs(code.rate - rate) <= 0.05 * rate
    assert code.k == n - code.parity_cols.size >= n - H.shape[0]  # k = n - rank(H)


def test_construction_is_deterministic_from_the_seed():
    a, b, c = regular_ldpc(300, 150, seed=3), regular_ldpc(300, 150, seed=3), regular_ldpc(300, 150, seed=4)
    assert (a != b).nnz == 0 and (a != c).nnz > 0


def test_systematic_encoding_satisfies_all_checks(wimax):
    for code in (wimax, LDPCCode(regular_ldpc(500, 375)), LDPCCode(regular_ldpc(240, 120), repeat=2)):
        info = random_info(code, 20, seed=2)
        base = code.encode(info)[:, : code.n_base]
        assert not ((code.H @ base.T.astype(np.int64)) % 2).any(), code.name
        np.testing.assert_array_equal(base[:, code.info_cols], info)


def test_gf2_elimination_on_a_small_matrix():
    # Hamming(7,4): rank 3, k = 4
    H = sp.csr_matrix(np.array([[1, 1, 0, 1, 1, 0, 0], [1, 0, 1, 1, 0, 1, 0], [0, 1, 1, 1, 0, 0, 1]]))
    info_cols, parity_cols, A = gf2_systematic(H)
    assert info_cols.size == 4 and parity_cols.size == 3 and A.shape == (3, 4)
    # a rank-deficient H (a repeated row) gives the same code
    info_cols2, parity_cols2, _ = gf2_systematic(sp.vstack([H, H[0]]))
    assert info_cols2.size == 4 and parity_cols2.size == 3


def test_commpy_ldpc_decoder_takes_the_negated_llr():
    from commpy.channelcoding.ldpc import ldpc_bp_decode

    code = LDPCCode(regular_ldpc(200, 100))
    rng = np.random.default_rng(5)
    words = code.encode(random_info(code, 1))
    llr = bsc_llr(words, 0.02, rng)[0]  # ours: log P1/P0
    params = {"n_vnodes": 200, "n_cnodes": 100, "parity_check_matrix": code.H.tocsc().astype(np.int8)}
    right, _ = ldpc_bp_decode(0.0 - llr, params, "SPA", 50)  # commpy wants log P0/P1
    wrong, _ = ldpc_bp_decode(llr.copy(), params, "SPA", 50)
    np.testing.assert_array_equal(right, words[0])
    assert (wrong != words[0]).sum() > 50
    np.testing.assert_array_equal(commpy_bp_decode(code.H, llr[None])[0][0], words[0])


def test_ldpc_fer_matches_commpy_decoder_on_the_same_frames():
    """BSC near the waterfall of a (3,6) code: the flooding decoders (numpy reference, torch
    flooding) fail on the same frames as commpy's; the default (torch, layered) fails on no more."""
    code = LDPCCode(regular_ldpc(400, 200))
    rng = np.random.default_rng(6)
    words = code.encode(random_info(code, 30, seed=6))
    llr = bsc_llr(words, 0.07, rng)
    ours, ours_ok = bp_decode(code.H, llr)
    theirs, theirs_ok = commpy_bp_decode(code.H, llr)
    ours_fail, theirs_fail = (ours != words).any(axis=1), (theirs != words).any(axis=1)
    assert 0 < ours_fail.sum() < 30  # the point is in the waterfall: the comparison means something
    assert (ours_fail != theirs_fail).sum() <= 2
    assert np.array_equal(ours_ok, syndrome_ok(code.H, ours)) and not ours_ok[ours_fail].all()
    flooding, _ = torch_bp_decoder(code.H, schedule="flooding").decode(llr)
    assert ((flooding != words).any(axis=1) != theirs_fail).sum() <= 2
    default, default_ok = code.decode(llr)
    default_fail = (default != words[:, code.info_cols]).any(axis=1)
    assert default_fail.sum() <= theirs_fail.sum() + 1
    assert not default_ok[default_fail].all()
    # BP may stop on a word whose information bits are right but whose parity bits are not (its
    # checks fail, so it is flagged not-ok): allowed, but rare
    assert (~default_ok[~default_fail]).sum() <= 2


@pytest.mark.parametrize("n, m, repeat, eps", [(400, 200, 1, 0.06), (600, 150, 1, 0.02), (250, 188, 4, 0.3)])
def test_default_ldpc_decoder_fer_is_no_worse_than_the_numpy_reference(n, m, repeat, eps):
    """A few hundred BSC frames near each code's waterfall: the default decoder (torch, layered
    sum-product) fails on no more frames than the numpy reference (flooding) beyond noise, decodes
    every frame the reference decodes but a few, and its ``ok`` flags are exact (checks hold)."""
    default = LDPCCode(regular_ldpc(n, m), repeat=repeat)
    reference = LDPCCode(default.H, repeat=repeat, decoder="numpy")
    frames = 240
    info = random_info(default, frames, seed=11)
    llr = bsc_llr(default.encode(info), eps, np.random.default_rng(11))
    ours, ours_ok = default.decode(llr)
    ref, ref_ok = reference.decode(llr)
    ours_fail, ref_fail = (ours != info).any(axis=1), (ref != info).any(axis=1)
    assert 0 < ref_fail.sum() < frames and ours_fail.any()  # a point where decoding is at work
    assert ours_fail.sum() <= ref_fail.sum() + max(2, 0.02 * frames)
    assert (ours_fail & ~ref_fail).sum() <= max(2, 0.02 * frames)
    assert ours_ok[ours_fail].mean() < 0.5  # failures are mostly detected (ok: all checks hold)
    # ok means "all checks hold": a frame whose information bits are right can still end on wrong
    # parity bits (flagged not-ok); BP promises nothing more, so only its rarity is asserted
    assert (~ours_ok[~ours_fail]).sum() <= max(2, 0.02 * frames)
    assert (~ref_ok[~ref_fail]).sum() <= max(2, 0.02 * frames)


@pytest.mark.parametrize("decoder", ["torch", "numpy"])  # commpy's BP breaks on erasures
def test_ldpc_decodes_erasures(decoder):
    code = LDPCCode(regular_ldpc(600, 300), decoder=decoder)
    rng = np.random.default_rng(7)
    info = random_info(code, 10, seed=7)
    llr = perfect_llr(code.encode(info))
    llr[rng.random(llr.shape) < 0.25] = 0.0  # BEC(0.25), well below the (3,6) threshold 0.43
    decoded, ok = code.decode(llr)
    np.testing.assert_array_equal(decoded, info)
    assert ok.all()


def test_pluggable_decoder_sees_combined_llrs():
    H = regular_ldpc(120, 60)
    seen = []

    def decoder(llr):
        seen.append(llr)
        return (llr > 0).astype(np.uint8), np.ones(llr.shape[0], bool)

    code = LDPCCode(H, repeat=2, decoder=decoder)
    words = code.encode(random_info(code, 2))
    llr = perfect_llr(words)
    llr[:, 0] = -10.0  # first copy of bit 0 says 0, second copy says the truth with 30
    decoded, _ = code.decode(llr)
    assert seen[0].shape == (2, 120)
    np.testing.assert_allclose(seen[0][:, 1:], 2 * llr[:, 1:120])
    np.testing.assert_array_equal(decoded, random_info(code, 2))


# Convolutional and repetition -------------------------------------------------------------------

def test_conv_encoder_matches_commpy():
    from commpy.channelcoding.convcode import conv_encode

    for memory in (2, 6):
        code = ConvCode(30, memory=memory)
        info = random_info(code, 3, seed=memory)
        reference = np.stack([conv_encode(row, code.trellis) for row in info])
        np.testing.assert_array_equal(code.encode(info), reference)


def test_commpy_viterbi_soft_mode_takes_our_llr_and_agrees_with_numpy_viterbi():
    from commpy.channelcoding.convcode import viterbi_decode

    code = ConvCode(40, memory=2)
    rng = np.random.default_rng(8)
    info = random_info(code, 6, seed=8)
    llr = bsc_llr(code.encode(info), 0.03, rng)
    right = np.stack([viterbi_decode(row, code.trellis, decoding_type="soft") for row in llr])[:, :40]
    wrong = np.stack([viterbi_decode(-row, code.trellis, decoding_type="soft") for row in llr])[:, :40]
    np.testing.assert_array_equal(right, info)
    assert (wrong != info).any(axis=1).all() and (wrong != info).mean() > 0.1
    for decoder in DECODERS:
        decoded, _ = ConvCode(40, memory=2, decoder=decoder).decode(llr)
        np.testing.assert_array_equal(decoded, right, err_msg=decoder)


@pytest.mark.parametrize("puncture, repeat, crc_bits", [("1/2", 1, 0), ("3/4", 1, 16), ("1/2", 3, 8)])
def test_default_viterbi_matches_the_numpy_reference_on_noisy_frames(puncture, repeat, crc_bits):
    """K = 7 over AWGN (continuous LLRs, no ties between paths): the torch Viterbi (float32) makes the
    numpy reference's (float64) decisions on every frame. Over a BSC all LLRs have one magnitude and
    paths tie; ties are broken by rounding, differently in float32 and float64, so decisions differ
    on some failed frames but the frame error rates agree."""
    default = ConvCode(120, 6, puncture, repeat, crc_bits)
    reference = ConvCode(120, 6, puncture, repeat, crc_bits, decoder="numpy")
    frames = 300
    info = random_info(default, frames, seed=12)
    words = default.encode(info)
    rng = np.random.default_rng(12)
    sigma = {1: 0.8, 3: 1.35}[repeat] if puncture == "1/2" else 0.62
    y = (2.0 * words - 1.0) + sigma * rng.standard_normal(words.shape)
    awgn = np.clip(2.0 * y / sigma**2, -LLR_LIMIT, LLR_LIMIT)
    ours, ours_ok = default.decode(awgn)
    ref, ref_ok = reference.decode(awgn)
    ref_fail = (ref != info).any(axis=1)
    assert 0 < ref_fail.sum() < frames
    assert (ours == ref).all(axis=1).mean() >= 0.99
    np.testing.assert_array_equal(ours_ok, ref_ok)
    eps = {1: 0.045, 3: 0.17}[repeat] if puncture == "1/2" else 0.012
    bsc = bsc_llr(words, eps, rng)
    ours_fail = (default.decode(bsc)[0] != info).any(axis=1)
    ref_fail = (reference.decode(bsc)[0] != info).any(axis=1)
    assert 0 < ref_fail.sum() < frames
    assert abs(int(ours_fail.sum()) - int(ref_fail.sum())) <= max(4, 0.3 * ref_fail.sum())


def test_accounting_adds_up():
    for puncture, kept in (("1/2", 1.0), ("2/3", 3 / 4), ("3/4", 2 / 3)):
        code = ConvCode(98, memory=6, puncture=puncture, repeat=2, crc_bits=16)
        assert code.payload == code.k + 16 and code.steps == code.payload + code.tail_bits == 98 + 16 + 6
        assert code.n == 2 * code.punctured_length == 2 * round(2 * code.steps * kept)  # 240 bits, whole periods
    rep = RepetitionCode(30, 7, crc_bits=8)
    assert rep.n == 7 * (30 + 8)
    for name in ("ldpc", "conv", "rep"):
        for n in (150, 1000):
            codes = channel_code_family(name).codes_for(n)
            assert len(codes) >= 5 and all(0 < c.k < c.n <= n or c.k == c.n == n for c in codes), name
            rates = [c.rate for c in codes]
            assert rates == sorted(rates, reverse=True), name
    ldpc = channel_code_family("ldpc").codes_for(1000)
    assert min(c.rate for c in ldpc) < 1 / 40 and max(c.rate for c in ldpc) > 0.7
    for code in ldpc:
        assert code.k + code.parity_cols.size == code.n_base and code.n == code.repeat * code.n_base


def test_repetition_ties_decide_zero_and_crc_flags_failures():
    code = RepetitionCode(16, 3, crc_bits=16)
    decoded, ok = code.decode(np.zeros((1, code.n)))
    assert not decoded.any() and ok.all()  # all-zero payload has an all-zero CRC
    info = random_info(code, 2, seed=9)
    llr = perfect_llr(code.encode(info))
    llr[0, [4, 4 + code.payload]] *= -1  # two of three copies of bit 4 flipped: uncorrectable
    decoded, ok = code.decode(llr)
    assert decoded[0, 4] != info[0, 4] and not ok[0] and ok[1]


def test_crc_matches_known_check_values():
    message = np.unpackbits(np.frombuffer(b"123456789", np.uint8))[None]
    for bits, check in ((8, 0xF4), (16, 0x31C3)):  # CRC-8 (poly 0x07), CRC-16/XMODEM (poly 0x1021)
        value = int("".join(map(str, CRC(bits).compute(message)[0])), 2)
        assert value == check
    with pytest.raises(ValueError):
        CRC(12)


# Ideal codes -----------------------------------------------------------------------------------

def test_capacities_match_closed_forms():
    assert bsc_capacity(0.11) == pytest.approx(0.5, abs=1e-3)
    np.testing.assert_allclose(bsc_capacity([0.0, 0.5, 1.0]), [1.0, 0.0, 1.0], atol=1e-12)
    assert capacity("bec", eps=0.3) == pytest.approx(0.7)
    assert z_capacity(0.5) == pytest.approx(math.log2(1.25)) and capacity("z", eps=0.0) == 1.0
    assert capacity("z", eps=0.2) > capacity("bsc", eps=0.2)
    assert awgn_capacity(snr_db=20.0) == pytest.approx(1.0, abs=1e-9)
    assert awgn_capacity(snr_db=-30.0) < 0.01
    assert awgn_capacity(snr_db=-2.823) == pytest.approx(0.5, abs=2e-3)  # rate 1/2 limit, Eb/N0 = 0.19 dB
    assert awgn_capacity(ebno_db=3.0) == awgn_capacity(snr_db=3.0)  # rate 1: Es/N0 = Eb/N0
    with pytest.raises(ValueError, match="gilbert"):
        capacity("gilbert_elliott", eps_bad=0.3)


def test_ideal_codes():
    code = channel_code_family("ideal").codes_for(1000)[0]
    assert code.ideal and code.capacity_bits(1000, "bsc", eps=0.11) == 500
    assert code.capacity_bits(1000, "awgn", snr_db=0.0) == math.floor(1000 * awgn_capacity(snr_db=0.0))
    assert channel_code_family("ideal").codes_for(1000, "bec", eps=0.25)[0].k == 750
    eps, n = 0.11, 1000
    v = eps * (1 - eps) * math.log2((1 - eps) / eps) ** 2
    expected = math.floor(n * float(bsc_capacity(eps)) - math.sqrt(n * v) * 3.090232306 + 0.5 * math.log2(n))
    assert normal_approximation_bits(n, eps, 1e-3) == expected
    assert normal_approximation_bits(n, 0.5) == 0 and normal_approximation_bits(100, 0.0) == 100
    fbl = channel_code_family("ideal-fbl").codes_for(n, "bsc", eps=eps)[0]
    assert fbl.ideal and fbl.k == expected < 500
    padded = IdealCode(8, k=5).encode(np.ones((2, 5), np.uint8))
    np.testing.assert_array_equal(padded, [[1] * 5 + [0] * 3] * 2)
    with pytest.raises(RuntimeError, match="without a channel"):
        fbl.decode(np.zeros((1, n)))


def test_registry():
    assert {"ldpc", "nrldpc", "conv", "rep", "polar", "ideal", "ideal-fbl", "best"} <= set(CHANNEL_CODES.names())
    with pytest.raises(UnknownNameError):
        channel_code_family("turbo")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="no CUDA"))])
@pytest.mark.parametrize("make", [
    lambda: LDPCCode(regular_ldpc(96, 48, seed=1), repeat=2), lambda: LDPCCode(regular_ldpc(96, 48, seed=1), decoder="numpy"),
    lambda: ConvCode(30, memory=2, puncture="3/4", repeat=2, crc_bits=8), lambda: ConvCode(20, memory=2, decoder="numpy"),
    lambda: RepetitionCode(20, 3, crc_bits=8), lambda: RepetitionCode(20, 1),
], ids=["ldpc-torch", "ldpc-numpy", "conv-torch", "conv-numpy", "rep-crc", "rep"])
def test_decode_tensor_stays_on_the_device_and_matches_decode(make, device):
    import torch

    code = make()
    rng = np.random.default_rng(0)
    info = random_info(code, 40)
    llr = bsc_llr(code.encode(info), 0.06, rng).astype(np.float32)
    llr[:, ::7] = 0.0  # some erasures too
    expected_info, expected_ok = code.decode(llr)
    info_hat, ok = code.decode_tensor(torch.from_numpy(llr).to(device))
    assert info_hat.device.type == ok.device.type == device
    assert info_hat.dtype == torch.uint8 and ok.dtype == torch.bool
    np.testing.assert_array_equal(info_hat.cpu().numpy(), expected_info)
    np.testing.assert_array_equal(ok.cpu().numpy(), expected_ok)
