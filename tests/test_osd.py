"""Ordered-statistics decoding: exact ML at full order (against brute force over all codewords),
monotone in the order, corrects every error pattern of weight <= order on the most reliable basis,
no worse than BP, generator matrices of real codes, the OSDCode wrapper and bad input."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from commsim.channels.base import LLR_LIMIT
from commsim.fec import LDPCCode, NRLDPCCode, OSDCode, OSDDecoder, generator_matrix, regular_ldpc
from commsim.fec.decoders.osd import gf2_rank_and_inverse


def golay24() -> np.ndarray:
    """Extended Golay code (24, 12, 8): the cyclic (23, 12) code of g(x) = x^11 + x^10 + x^6 + x^5 + x^4
    + x^2 + 1 (shifted copies of g as rows) plus an overall parity bit."""
    g = [1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1]  # coefficients of x^0 .. x^11
    G = np.zeros((12, 24), np.uint8)
    for i in range(12):
        G[i, i:i + 12] = g
    G[:, 23] = G[:, :23].sum(axis=1) % 2
    return G


def all_codewords(G: np.ndarray) -> np.ndarray:
    U = np.array(list(itertools.product((0, 1), repeat=G.shape[0])), np.uint8)
    return (U.astype(np.int64) @ G) % 2


def awgn_llr(words: np.ndarray, ebno_db: float, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma2 = 1 / (2 * rate * 10 ** (ebno_db / 10))
    r = 2.0 * words - 1 + rng.normal(0, math.sqrt(sigma2), words.shape)
    return np.clip(2 * r / sigma2, -LLR_LIMIT, LLR_LIMIT)


def correlation(words: torch.Tensor, llr: torch.Tensor) -> torch.Tensor:
    return ((2 * words.double() - 1) * llr).sum(dim=1)


@pytest.fixture(scope="module")
def golay():
    G = golay24()
    C = all_codewords(G)
    assert C[1:].sum(axis=1).min() == 8  # minimum distance
    return G, C


def test_full_order_is_maximum_likelihood(golay):
    G, C = golay
    rng = np.random.default_rng(0)
    info = rng.integers(0, 2, (200, 12)).astype(np.uint8)
    llr = awgn_llr((info.astype(np.int64) @ G) % 2, 1.0, 0.5, seed=1)
    ml = C[np.argmax(llr @ (2.0 * C - 1).T, axis=1)]
    word, decoded = OSDDecoder(G, order=12)(torch.from_numpy(llr))
    assert np.array_equal(word.numpy(), ml)
    assert np.array_equal(decoded.numpy(), ((ml[:, None, :] == C[None]).all(axis=2).argmax(axis=1)[:, None]
                                            >> np.arange(11, -1, -1)) & 1)  # the message of the ML codeword
    low = OSDDecoder(G, order=0)(torch.from_numpy(llr))[0].numpy()
    assert not np.array_equal(low, ml)  # order 0 is not ML here: the comparison can fail


def test_metric_never_decreases_with_the_order():
    rng = np.random.default_rng(2)
    G = rng.integers(0, 2, (16, 32)).astype(np.uint8)  # a random (32, 16) code
    gf2_rank_and_inverse(G)  # full rank
    info = rng.integers(0, 2, (300, 16)).astype(np.uint8)
    llr = torch.from_numpy(awgn_llr((info.astype(np.int64) @ G) % 2, -1.0, 0.5, seed=3))
    metrics = [correlation(OSDDecoder(G, order=t)(llr)[0], llr) for t in range(5)]
    for lower, higher in zip(metrics, metrics[1:]):
        assert (higher >= lower - 1e-9).all()
    assert (metrics[1] > metrics[0] + 1e-9).any() and (metrics[3] > metrics[1] + 1e-9).any()
    C = all_codewords(G)  # 65536 codewords: order 16 is ML
    ml = torch.from_numpy(llr[:30].numpy() @ (2.0 * C - 1).T).max(dim=1).values
    assert torch.allclose(correlation(OSDDecoder(G, order=16)(llr[:30])[0], llr[:30]), ml)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_corrects_every_pattern_of_weight_order_on_the_basis(golay, order):
    """Reliabilities put an information set J first (so J is the most reliable basis); ``order`` of its
    bits are wrong with reliability 1.5, everything else is right (J: 10, the rest: 1). The sent word is
    then the only codeword within the candidates' reach and the ML choice (any other codeword disagrees
    with the hard decisions on >= 8 - order positions), so order ``order`` must find it every time and
    order ``order - 1`` never can."""
    G, _ = golay
    J, _ = gf2_rank_and_inverse(G)
    rng = np.random.default_rng(order)
    frames = 60
    info = rng.integers(0, 2, (frames, 12)).astype(np.uint8)
    words = (info.astype(np.int64) @ G) % 2
    magnitude = np.ones((frames, 24))
    magnitude[:, J] = 10.0
    flips = np.array([rng.choice(J, order, replace=False) for _ in range(frames)])
    np.put_along_axis(magnitude, flips, 1.5, axis=1)
    sign = 2.0 * words - 1
    np.put_along_axis(sign, flips, -np.take_along_axis(sign, flips, axis=1), axis=1)
    llr = torch.from_numpy(sign * magnitude)
    word, decoded = OSDDecoder(G, order=order)(llr)
    assert np.array_equal(word.numpy(), words) and np.array_equal(decoded.numpy(), info)
    below = OSDDecoder(G, order=order - 1)(llr)[0].numpy()
    assert not (below == words).all(axis=1).any()


def test_at_least_as_good_as_bp_on_the_same_frames():
    code = NRLDPCCode(32, 64)
    osd = OSDCode(code, order=2)
    rng = np.random.default_rng(4)
    info = rng.integers(0, 2, (600, 32)).astype(np.uint8)
    llr = awgn_llr(code.encode(info), 2.5, code.rate, seed=5)
    bp_errors = (code.decode(llr)[0] != info).any(axis=1)
    osd_info, ok = osd.decode(llr)
    osd_errors = (osd_info != info).any(axis=1)
    assert ok.all()
    assert bp_errors.sum() >= 20  # enough errors to compare
    assert osd_errors.sum() < 0.7 * bp_errors.sum()  # OSD-2 is near ML here, clearly better than BP
    # and its choice is never less likely than BP's codeword where BP found one
    bp_words = code.encode(code.decode(llr)[0])
    osd_words = code.encode(osd_info)
    t = torch.from_numpy(llr)
    assert (correlation(torch.from_numpy(osd_words), t) >= correlation(torch.from_numpy(bp_words), t) - 1e-6).all()


def test_generator_matrices_of_codes():
    for code in (NRLDPCCode(64, 128), NRLDPCCode(20, 60, crc_bits=16), LDPCCode(regular_ldpc(48, 24))):
        G = generator_matrix(code)
        assert G.shape == (code.k, code.n)
        info = np.random.default_rng(6).integers(0, 2, (5, code.k)).astype(np.uint8)
        assert np.array_equal((info.astype(np.int64) @ G) % 2, code.encode(info))
        wrapped = OSDCode(code, order=1)
        decoded, ok = wrapped.decode(LLR_LIMIT * (2.0 * code.encode(info) - 1))
        assert np.array_equal(decoded, info) and ok.all()
        assert wrapped.name == f"{code.name}+osd1" and (wrapped.k, wrapped.n) == (code.k, code.n)

    class Affine:
        name, k, n = "affine", 4, 8

        def encode(self, info):
            return np.concatenate([info, info], axis=1) ^ 1

    with pytest.raises(ValueError, match="not linear"):
        generator_matrix(Affine())


def test_nr_ldpc_decoder_option():
    code = NRLDPCCode(32, 64, decoder="osd", osd_order=2)
    wrapped = OSDCode(NRLDPCCode(32, 64), order=2)
    assert code.name == "nrldpc(64,32)+osd2"
    info = np.random.default_rng(8).integers(0, 2, (50, 32)).astype(np.uint8)
    llr = awgn_llr(code.encode(info), 2.0, code.rate, seed=9)
    ours, ok, iterations = code.decode_iterations(torch.from_numpy(llr))
    assert iterations is None and ok.all()
    assert np.array_equal(ours.numpy(), wrapped.decode(llr)[0])
    from commsim.fec import build_code
    assert build_code("nrldpc(64,32,decoder=osd,osd_order=1)").name == "nrldpc(64,32)+osd1"
    with pytest.raises(ValueError, match="decoder"):
        NRLDPCCode(32, 64, decoder="ml")


def test_tensor_shapes_and_chunks():
    G = golay24()
    llr = torch.from_numpy(awgn_llr(np.zeros((70, 24)), 2.0, 0.5, seed=7)).float()
    a = OSDDecoder(G, order=2, chunk_size=16)(llr)
    b = OSDDecoder(G, order=2)(llr)
    assert a[0].dtype == torch.uint8 and a[0].shape == (70, 24) and a[1].shape == (70, 12)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    empty = OSDDecoder(G, order=1)(torch.zeros(0, 24))
    assert empty[0].shape == (0, 24) and empty[1].shape == (0, 12)


def test_bad_input():
    G = golay24()
    with pytest.raises(ValueError, match="order"):
        OSDDecoder(G, order=13)
    with pytest.raises(ValueError, match="rank"):
        OSDDecoder(np.vstack([G, G[:1]]))
    with pytest.raises(ValueError, match="0 and 1"):
        OSDDecoder(2 * G)
    dec = OSDDecoder(G, order=1)
    with pytest.raises(ValueError, match=r"\[F, 24\]"):
        dec(torch.zeros(3, 23))
    with pytest.raises(ValueError, match="NaN"):
        dec(torch.full((1, 24), float("nan")))
