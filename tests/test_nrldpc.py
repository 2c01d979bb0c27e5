"""5G NR LDPC codes: the base-graph tables, lifting, encoding, rate matching, decoding, the family,
bad input, and published frame error rates (AFF3CT, tests/expected/nrldpc_references.json)."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from commsim.channels import AWGN
from commsim.channels.base import LLR_LIMIT
from commsim.core.metrics import binomial_ci
from commsim.fec import NRLDPCCode, NRLDPCFamily, build_code, channel_code_family
from commsim.fec.nrldpc import (
    LIFTING_SETS, LIFTING_SIZES, base_graph, lifted_encoder, lifting_set, lifting_size, parity_check_matrix,
    select_base_graph,
)

REFERENCES = os.path.join(os.path.dirname(__file__), "expected", "nrldpc_references.json")


def random_info(k: int, frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (frames, k)).astype(np.uint8)


def syndrome(H, words: np.ndarray) -> np.ndarray:
    return (H.astype(np.int64) @ words.T.astype(np.int64)) % 2


# Tables ------------------------------------------------------------------------------------------

def test_base_graph_tables():
    for bg, (nnz, m, n, checksum) in {1: (316, 46, 68, 289507), 2: (197, 42, 52, 114902)}.items():
        rows, cols, values = base_graph(bg)
        assert rows.size == nnz and values.shape == (nnz, 8)
        assert rows.max() + 1 == m and cols.max() + 1 == n
        assert len(set(zip(rows.tolist(), cols.tolist()))) == nnz  # no entry listed twice
        assert int(values.sum()) == checksum  # regression checksum of the transcription
        assert (values >= 0).all() and values.max() < 384
    rows, cols, values = base_graph(1)
    entry = {(r, c): v for r, c, v in zip(rows.tolist(), cols.tolist(), values.tolist())}
    assert entry[(0, 0)] == [250, 307, 73, 223, 211, 294, 0, 135]  # TS 38.212 Table 5.3.2-2, first entry
    assert entry[(1, 22)][6] == 105 and entry[(0, 22)] == [1, 1, 1, 1, 1, 1, 0, 1]  # the i_LS = 6 core
    assert entry[(45, 10)] == [167, 15, 126, 29, 144, 235, 153, 93]  # last row
    assert np.bincount(rows)[:4].tolist() == [19, 19, 19, 19]  # the dense core rows of BG1
    rows, cols, values = base_graph(2)
    entry = {(r, c): v for r, c, v in zip(rows.tolist(), cols.tolist(), values.tolist())}
    assert entry[(0, 0)] == [9, 174, 0, 72, 3, 156, 143, 145]  # Table 5.3.2-3, first entry
    assert entry[(2, 10)] == [1, 1, 1, 0, 1, 1, 1, 0]
    assert entry[(41, 11)] == [118, 60, 55, 81, 19, 8, 167, 230]
    # extension parity blocks: one identity each, on the diagonal
    for bg, (m, kb) in {1: (46, 22), 2: (42, 10)}.items():
        rows, cols, values = base_graph(bg)
        ext = cols >= kb + 4
        assert (cols[ext] - kb == rows[ext]).all() and (values[ext] == 0).all()


def test_lifting_sizes():
    assert len(LIFTING_SIZES) == 51 and LIFTING_SIZES[0] == 2 and LIFTING_SIZES[-1] == 384
    assert LIFTING_SETS[0] == (2, 4, 8, 16, 32, 64, 128, 256) and LIFTING_SETS[6] == (13, 26, 52, 104, 208)
    assert lifting_set(384) == 1 and lifting_set(11) == 5 and lifting_set(240) == 7
    with pytest.raises(ValueError, match="lifting size"):
        lifting_set(17)


@pytest.mark.parametrize("bg", [1, 2])
def test_lifted_codewords_have_zero_syndrome(bg):
    rng = np.random.default_rng(bg)
    for z in sorted({sizes[0] for sizes in LIFTING_SETS.values()} | {sizes[-1] for sizes in LIFTING_SETS.values()}):
        H = parity_check_matrix(bg, z)
        enc = lifted_encoder(bg, z)
        m, n = (46, 68) if bg == 1 else (42, 52)
        assert H.shape == (m * z, n * z)
        assert H.nnz == (316 if bg == 1 else 197) * z and (np.diff(H.indptr) > 0).all()
        c = rng.integers(0, 2, (3, enc.kb * z)).astype(np.uint8)
        word = enc.encode(c)
        assert not syndrome(H, word).any(), f"BG{bg} Z={z}"
        assert np.array_equal(word[:, : enc.kb * z], c)  # systematic
        assert word[:, enc.kb * z:].any()


def test_base_graph_selection_and_lifting():
    assert select_base_graph(292, 0.9) == 2 and select_base_graph(293, 0.9) == 1
    assert select_base_graph(3824, 0.67) == 2 and select_base_graph(3825, 0.5) == 1
    assert select_base_graph(5000, 0.25) == 2 and select_base_graph(500, 0.7) == 1
    for (k, n), (bg, z, K, fillers) in {(64, 128): (2, 11, 110, 46), (20, 40): (2, 4, 40, 20),
                                        (512, 1024): (2, 64, 640, 128), (4000, 6000): (1, 192, 4224, 224),
                                        (8448, 9000): (1, 384, 8448, 0)}.items():
        code = NRLDPCCode(k, n)
        assert (code.bg, code.z, code.K, code.fillers) == (bg, z, K, fillers), (k, n)
        assert code.N == (66 if bg == 1 else 50) * z
    assert lifting_size(2, 192) == 32 and lifting_size(2, 193) == 26  # K_b = 6 then 8


# Encoding and rate matching ----------------------------------------------------------------------

@pytest.mark.parametrize("k,n,crc", [(64, 128, 0), (20, 40, 0), (100, 1000, 16), (1000, 1150, 24), (300, 3000, 0)])
def test_encoding_and_rate_matching(k, n, crc):
    code = NRLDPCCode(k, n, crc_bits=crc)
    info = random_info(k, 5, seed=k)
    full = code.codewords(info)
    assert not syndrome(code.H, full).any()
    assert np.array_equal(full[:, :k], info)
    assert not full[:, code.k + code.crc.bits: code.K].any()  # fillers are zeros
    words = code.encode(info)
    assert words.shape == (5, n) and np.array_equal(words, full[:, code.tx_cols])
    z = code.z
    filler_cols = np.arange(code.block, code.K)
    assert not np.isin(code.tx_cols, filler_cols).any()  # fillers are never sent
    assert (code.tx_cols >= 2 * z).all()  # the first 2Z systematic bits are punctured
    sent_info = code.block - 2 * z
    assert np.array_equal(code.tx_cols[:sent_info], np.arange(2 * z, code.block))  # rv 0 starts at d_0
    buffer = code.N - code.fillers
    assert code.repeated == (n > buffer)
    if code.repeated:
        assert np.array_equal(code.tx_cols[buffer:], code.tx_cols[: n - buffer])  # circular repetition
    else:
        assert np.unique(code.tx_cols).size == n


def test_redundancy_version_and_interleaver():
    base = NRLDPCCode(64, 128)
    rv2 = NRLDPCCode(64, 400, rv=2)  # from k0 to the end of the buffer, then wraps to the systematic bits
    assert rv2.tx_cols[0] == 2 * rv2.z + 25 * rv2.z  # k0 = 25 Z for BG2, rv 2
    assert rv2.tx_cols[25 * rv2.z] == 2 * rv2.z
    inter = NRLDPCCode(64, 128, qm=4)
    assert np.array_equal(inter.tx_cols, base.tx_cols.reshape(4, 32).T.reshape(-1))
    info = random_info(64, 4)
    for code in (rv2, inter):
        assert np.array_equal(code.decode(LLR_LIMIT * (2.0 * code.encode(info) - 1))[0], info)


def test_decoding_matrix_prunes_unsent_extension():
    code = NRLDPCCode(64, 128)  # sends 42 systematic and 86 parity bits: 8 of 42 base rows are needed
    assert code.H_dec.shape == (8 * 11, 18 * 11 - code.fillers)
    assert NRLDPCCode(64, 600).H_dec.shape[0] == code.H.shape[0]  # repetition: every row is kept


# Decoding ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("k,n,crc", [(64, 128, 0), (20, 40, 0), (100, 1000, 16), (1000, 1150, 24), (40, 640, 0)])
def test_noiseless_and_low_noise_decoding(k, n, crc):
    code = NRLDPCCode(k, n, crc_bits=crc)
    info = random_info(k, 40, seed=1)
    x = 2.0 * code.encode(info) - 1
    decoded, ok = code.decode(LLR_LIMIT * x)
    assert np.array_equal(decoded, info) and ok.all()
    rng = np.random.default_rng(2)
    sigma2 = 1 / (2 * code.rate * 10 ** (6.0 / 10))  # Eb/N0 = 6 dB: far above every threshold here
    llr = np.clip(2 * (x + rng.normal(0, math.sqrt(sigma2), x.shape)) / sigma2, -LLR_LIMIT, LLR_LIMIT)
    decoded_t, ok_t = code.decode_tensor(torch.from_numpy(llr).float())
    assert decoded_t.dtype == torch.uint8 and ok_t.dtype == torch.bool
    assert np.array_equal(decoded_t.numpy(), info) and ok_t.all()


def test_failures_are_flagged_and_crc_checks():
    code = NRLDPCCode(64, 128, crc_bits=16)
    rng = np.random.default_rng(3)
    llr = rng.normal(0, 1, (50, 128))  # noise only: no codeword
    decoded, ok = code.decode(llr)
    assert decoded.shape == (50, 64) and not ok.any()


def test_default_decoder_is_the_shared_layered_bp():
    code = NRLDPCCode(64, 128)
    dec = code.bp_decoder()
    assert (dec.algorithm, dec.schedule, dec.max_iter) == ("sum-product", "layered", 20)
    assert NRLDPCCode(64, 128).bp_decoder() is dec
    assert NRLDPCCode(64, 128, max_iters=7).bp_decoder().max_iter == 7


# Family ------------------------------------------------------------------------------------------

def test_family():
    family = channel_code_family("nrldpc")
    assert isinstance(family, NRLDPCFamily)
    codes = family.codes_for(1000)
    rates = [c.rate for c in codes]
    assert all(c.n == 1000 for c in codes) and rates == sorted(rates, reverse=True)
    assert rates[0] == pytest.approx(8 / 9, abs=1e-3) and rates[-1] == pytest.approx(1 / 8, abs=1e-3)
    assert family.codes_for(1000)[3] is codes[3]  # cached
    assert {c.bg for c in codes} == {1, 2}
    crc = channel_code_family("nrldpc", crc_bits=24).codes_for(500)
    assert all(c.crc.bits == 24 and c.name.endswith("+crc24") for c in crc)
    big = family.codes_for(30000)  # only the low rates fit one code block
    assert big and all(c.k + c.crc.bits <= 8448 for c in big)
    built = build_code("nrldpc(128,64)")
    assert isinstance(built, NRLDPCCode) and (built.n, built.k) == (128, 64)
    assert build_code("nrldpc(200,40,crc_bits=16)").crc.bits == 16
    with pytest.raises(ValueError, match="outside"):
        family.build(100, 99)
    info = random_info(64, 8)
    llr = torch.from_numpy(LLR_LIMIT * (2.0 * built.encode(info) - 1)).float()
    decoded, ok, iterations = built.decode_iterations(llr)
    assert np.array_equal(decoded.numpy(), info) and ok.all() and (iterations >= 1).all()  # punctured bits start erased


# Bad input ---------------------------------------------------------------------------------------

def test_bad_input():
    with pytest.raises(ValueError, match="outside"):
        NRLDPCCode(64, 64)  # rate 1
    with pytest.raises(ValueError, match="outside"):
        NRLDPCCode(10, 1000)  # rate 1/100
    with pytest.raises(ValueError, match="code block"):
        NRLDPCCode(9000, 10000)
    with pytest.raises(ValueError, match="code block"):
        NRLDPCCode(4000, 4300, base_graph=2)
    with pytest.raises(ValueError, match="k >= 1"):
        NRLDPCCode(0, 10)
    with pytest.raises(ValueError, match="crc_bits"):
        NRLDPCCode(64, 128, crc_bits=13)
    with pytest.raises(ValueError, match="rv"):
        NRLDPCCode(64, 128, rv=4)
    with pytest.raises(ValueError, match="multiple"):
        NRLDPCCode(64, 130, qm=4)
    code = NRLDPCCode(64, 128)
    with pytest.raises(ValueError, match=r"\[F, 64\]"):
        code.encode(np.zeros((2, 63), np.uint8))
    with pytest.raises(ValueError, match=r"\[F, 128\]"):
        code.decode_tensor(torch.zeros(2, 127))
    family = NRLDPCFamily()
    with pytest.raises(ValueError, match="n <= "):
        family.codes_for(100000)
    with pytest.raises(ValueError, match="32 <= n"):
        family.codes_for(10)


# Published points --------------------------------------------------------------------------------

def simulate_fer(code, ebno_db: float, frames: int, seed: int = 0, batch: int = 4000) -> tuple[int, int]:
    """Frame errors of ``code`` on BPSK-AWGN at ``ebno_db`` (R = k/n), seeded."""
    gen = torch.Generator().manual_seed(seed)
    errors = 0
    for start in range(0, frames, batch):
        f = min(batch, frames - start)
        info = torch.randint(0, 2, (f, code.k), generator=gen, dtype=torch.uint8)
        llr = AWGN()(torch.from_numpy(code.encode(info.numpy())).float(), gen, ebno_db=ebno_db, rate=code.rate)
        decoded, _ = code.decode_tensor(llr)
        errors += int((decoded != info).any(dim=1).sum())
    return errors, frames


def reference_points(fast: bool):
    with open(REFERENCES) as f:
        refs = json.load(f)["references"]
    return [pytest.param(ref, point, id=f"{ref['name']}@{point['ebno_db']}dB",
                         marks=() if point["fast"] else pytest.mark.slow)
            for ref in refs for point in ref["points"] if point["fast"] == fast and "excluded" not in point]


@pytest.mark.parametrize("ref,point", reference_points(True) + reference_points(False))
def test_published_frame_error_rates(ref, point):
    spec, dec = ref["code"], ref["decoder"]
    code = NRLDPCCode(spec["k"], spec["n"], max_iters=dec["iterations"], schedule=dec["schedule"])
    assert (code.bg, code.z, code.K, code.H.shape[1]) == (spec["base_graph"], spec["Z"], spec["K_ldpc"], spec["N_ldpc"])
    errors, frames = simulate_fer(code, point["ebno_db"], point["test_frames"], seed=int(10 * point["ebno_db"]))
    ours, theirs = binomial_ci(errors, frames), binomial_ci(point["errors"], point["frames"])
    assert errors >= 50, "too few errors for the check to mean something"
    # the two 95 % Clopper-Pearson intervals overlap
    assert ours.low <= theirs.high and theirs.low <= ours.high, (
        f"{ref['name']} at {point['ebno_db']} dB: ours {ours.mean:.3g} [{ours.low:.3g}, {ours.high:.3g}], "
        f"published {theirs.mean:.3g} [{theirs.low:.3g}, {theirs.high:.3g}]")
