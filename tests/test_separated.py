"""Separated source + channel baselines: source codes, payload accounting, the SOURCE+CHANNEL codecs,
failures, the CLI and the reference curves.

Most tests run on a 900-image slice of the embedded MNIST (train 600 / val 150 / test 150) so that
fitting and rate selection take about a second; caches go to a temporary ``$COMMSIM_HOME``.
"""
from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from commsim.fec import bsc_capacity
from commsim.separated import SchemeError
from commsim.source_codes import get_source_code
from commsim.source_codes.base import bits_to_ints, ints_to_bits, strip_trailing, to_uint8
from commsim.source_codes.pillow import _jpeg_split, from_pil
from commsim.bounds import capacity_bits, normal_approximation_bits, vq_proxy_l2, zero_information_l2
from commsim.channels import get_channel
from commsim.data import load_dataset, split_in_order
from commsim.data.sources import ImageSource
from commsim.pipeline import Pipeline
from commsim.core.registry import CODECS

SHAPE = (1, 28, 28)


@pytest.fixture(scope="module", autouse=True)
def _cache_home(tmp_path_factory):
    """Codebooks and checkpoints of these tests go to a temporary cache, never the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMMSIM_HOME", str(tmp_path_factory.mktemp("commsim_home")))
        yield


@pytest.fixture(scope="module")
def tiny() -> ImageSource:
    full = load_dataset("mnist")
    return ImageSource("mnist-tiny", full.images[:900], full.labels[:900], split_in_order(900, 600, 150, 150))


@pytest.fixture(scope="module")
def test_images(tiny) -> np.ndarray:
    return tiny.tensors("test")[0].numpy()


def l2(x, y) -> np.ndarray:
    return ((np.asarray(x) - np.asarray(y)) ** 2).reshape(len(x), -1).sum(1)


def build(name, source, bits, eps, **options):
    return CODECS.get(name).build(source, bits=bits, channel="bsc", params={"eps": eps}, seed=0, **options)


# Bits ----------------------------------------------------------------------------------------------

def test_bit_helpers_round_trip():
    values = np.array([0, 1, 5, 255, 1023])
    bits = ints_to_bits(values, 10)
    assert bits.shape == (5, 10) and bits[2].tolist() == [0] * 7 + [1, 0, 1]
    assert bits_to_ints(bits).tolist() == values.tolist()
    tail = np.array([1, 0, 1, 1, 1, 1], np.uint8)
    assert strip_trailing(tail, 1).tolist() == [1, 0]
    assert strip_trailing(tail, 1, limit=2).tolist() == [1, 0, 1, 1]


# Source codes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, k, max_l2", [
    ("jpeg", 3000, 0.5), ("webp", 3000, 0.5), ("jpeg2000", 3000, 0.5), ("vq", 6, 40.0), ("pca", 100, 15.0),
])
def test_source_codes_round_trip(tiny, test_images, name, k, max_l2):
    code = get_source_code(name, SHAPE).fit(tiny)
    bits, fits = code.encode_batch(test_images, k)
    assert bits.shape == (len(test_images), k) and bits.dtype == np.uint8 and fits.all()
    x_hat, ok = code.decode_batch(bits)
    assert ok.all() and x_hat.shape == test_images.shape
    assert l2(test_images, x_hat).mean() < max_l2 < l2(test_images, code.mean[None]).mean()
    if not code.variable_rate:  # fixed rate: exactly k bits, and more bits never hurt on average
        assert all(code.encode(img, k).size == k for img in test_images[:3])


def test_pca_distortion_falls_with_k(tiny, test_images):
    code = get_source_code("pca", SHAPE).fit(tiny)
    d = [l2(test_images, code.decode_batch(code.encode_batch(test_images, k)[0])[0]).mean() for k in (10, 40, 160)]
    assert d[0] > d[1] > d[2]
    assert code.allocation(40).sum() == 40


@pytest.mark.parametrize("name", ["jpeg", "webp", "jpeg2000"])
def test_budget_picks_best_fitting_quality(test_images, name):
    code = get_source_code(name, SHAPE)
    for img in test_images[:4]:
        need = code.needed_bits(img)
        assert code.encode(img, need - 1) is None and code.encode(img, need) is not None
        previous = -1
        for k in range(need, need + 2400, 61):
            level = code.choose_level(img, k)
            payload = code.encode(img, k)
            assert payload.size <= k
            assert level >= previous  # a smaller budget never picks a higher quality
            previous = level
            for higher in range(level + 1, len(code.levels)):  # every better level would overflow
                _, size, side = code.entry(img, higher)
                assert not code.fits(size, side, k)


def _pillow_file(code, img_u8, level) -> bytes:
    if code.name == "jpeg":
        return code._save(img_u8, level)
    if code.name == "jpeg2000":
        return code._save(img_u8, level)
    out = io.BytesIO()
    from commsim.source_codes.pillow import to_pil

    to_pil(img_u8).save(out, "WEBP", quality=level, method=code.method, lossless=False)
    return out.getvalue()


@pytest.mark.parametrize("name", ["jpeg", "webp", "jpeg2000"])
def test_payload_accounting_reproduces_pillow_decode(test_images, name):
    """The counted payload is all that is sent; with the shared headers alone, a fresh decoder that
    never saw the image reproduces Pillow's own decode of the full file, even at the tightest k."""
    sender = get_source_code(name, SHAPE)
    for j, img in enumerate(test_images[:6]):
        img_u8 = to_uint8(img)
        for index in (0, len(sender.levels) // 2, len(sender.levels) - 1):
            _, size, side = sender.entry(img, index)
            k = size + 1
            while not sender.fits(size, side, k):
                k += 1
            assert sender.choose_level(img, k) == index or sender.choose_level(img, k) > index
            if sender.choose_level(img, k) != index:
                continue
            payload = sender.encode(img, k)
            assert payload.size == size + sender.header_bits(k) <= k  # counted = sent
            full = _pillow_file(sender, img_u8, sender.levels[index])
            assert 8 * len(full) > payload.size
            receiver = get_source_code(name, SHAPE)
            decoded = receiver.decode(sender.pad(payload, k))
            expected = from_pil(Image.open(io.BytesIO(full)), 1)
            np.testing.assert_array_equal(decoded, expected)
            if name == "jpeg":  # the header really is constant: every image's file starts with the shared one
                header, scan = _jpeg_split(full)
                assert header == receiver.shared_header(sender.levels[index])
                assert size <= 8 * len(scan.replace(b"\xff\x00", b"\xff"))


def test_jpeg_header_is_shared_not_sent(test_images):
    code = get_source_code("jpeg", SHAPE)
    img = test_images[0]
    full = code._save(to_uint8(img), 50)
    _, size, _ = code.entry(img, code.levels.index(50))
    header, _ = _jpeg_split(full)
    assert len(header) >= 300  # tables and markers: 328 bytes that never cross the channel
    assert size <= 8 * (len(full) - len(header) - 2)  # at most the scan (EOI not sent either)
    k = size + code.INDEX_BITS
    assert code.choose_level(img, k) >= code.levels.index(50) and code.encode(img, k).size <= k


# Separated codecs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, bits, options", [
    ("pca+rep", 120, {}), ("vq+ldpc", 48, {}), ("jpeg2000+conv", 700, {"family_options": {"crc_bits": 16}}),
    ("jpeg+ideal", 600, {}),
])
def test_error_free_channel_reproduces_source_code(tiny, test_images, name, bits, options):
    codec = build(name, tiny, bits, eps=0.0, **options)
    x = torch.from_numpy(test_images[:20])
    sent = codec.encode(x, torch.Generator().manual_seed(0))
    llr = get_channel("bsc")(sent, torch.Generator().manual_seed(1), eps=0.0)
    x_hat, failures = codec.decode(llr, x=x)
    info, fits = codec.source_code.encode_batch(test_images[:20], codec.k)
    expected, ok = codec.source_code.decode_batch(info)
    np.testing.assert_allclose(x_hat.numpy(), expected, atol=1e-6)
    assert failures.dtype == torch.bool and failures.numpy().tolist() == (~(fits & ok)).tolist()


@pytest.mark.parametrize("name, bits, eps", [
    ("pca+ldpc", 100, 0.1), ("pca+ldpc", 257, 0.1), ("pca+conv", 100, 0.1), ("vq+rep", 60, 0.1), ("pca+rep", 99, 0.2),
    ("pca+ideal", 100, 0.1), ("pca+ideal-fbl", 100, 0.1),
])
def test_bit_accounting(tiny, test_images, name, bits, eps):
    codec = build(name, tiny, bits, eps)
    a = codec.accounting()
    assert a["k"] + a["overhead"] + a["padding"] == a["m"] == bits
    assert a["k"] >= 1 and a["n"] <= bits
    sent = codec.encode(torch.from_numpy(test_images[:8]))
    assert sent.shape == (8, bits)
    assert not sent[:, a["n"]:].any()  # padding is zeros
    info, _ = codec.source_code.encode_batch(test_images[:8], a["k"])
    assert info.shape[1] == a["k"]
    if name.endswith("+ideal"):
        assert a["k"] == math.floor(bits * bsc_capacity(eps))
    if name.endswith("+ideal-fbl"):
        assert a["k"] == normal_approximation_bits(bits, eps, codec.p_error)
    chosen = [r for r in codec.selection if r.get("chosen")]
    assert len(chosen) == 1 and chosen[0]["code"] == a["code"]


def test_failed_frames_become_the_mean_image_and_are_reported(tiny):
    codec = build("pca+ldpc", tiny, 100, eps=0.2, code="ldpc(100,77)")  # rate 0.77 >> capacity 0.28
    result = Pipeline(tiny, codec, get_channel("bsc")).evaluate("test", seed=0, eps=0.2)
    assert result.metrics["failure_rate"].mean > 0.9
    x = torch.from_numpy(tiny.tensors("test")[0].numpy()[:30])
    x_hat, failed = codec.decode(get_channel("bsc")(codec.encode(x), torch.Generator().manual_seed(3), eps=0.2))
    failed = failed.numpy()
    assert failed.any()
    np.testing.assert_array_equal(x_hat.numpy()[failed], np.broadcast_to(codec.source_code.mean, x_hat[failed].shape))
    zero = zero_information_l2(tiny).mean
    assert abs(result.metrics["l2_per_image"].mean - zero) < 0.15 * zero


def test_images_that_do_not_fit_are_failures_with_needed_bits(tiny, test_images):
    codec = build("jpeg+ideal", tiny, 450, eps=0.1)  # k = 238: only the simplest digits fit
    x = torch.from_numpy(test_images)
    sent = codec.encode(x)
    x_hat, failures = codec.decode(torch.zeros_like(sent), x=x)  # an ideal code's payload does not depend on the LLRs
    fits, needed = codec.fits(x)
    misfit = ~fits
    assert misfit.any() and fits.any()
    assert (needed[misfit] > codec.k).all() and (needed[fits] == 0).all()
    assert failures.numpy()[misfit].all()
    np.testing.assert_array_equal(x_hat.numpy()[misfit], np.broadcast_to(codec.source_code.mean, x_hat[misfit].shape))
    with pytest.raises(SchemeError, match="cannot fit"):
        build("jpeg+ldpc", tiny, 100, eps=0.1)


def test_ideal_fbl_draws_failures_from_the_generator(tiny, test_images):
    codec = build("pca+ideal-fbl", tiny, 100, eps=0.1)
    codec.p_error = 0.5  # exaggerate to see the draws
    x = torch.from_numpy(np.repeat(test_images[:1], 400, 0))
    runs = []
    for _ in range(2):
        sent = codec.encode(x, torch.Generator().manual_seed(0))
        _, failures = codec.decode(torch.zeros_like(sent), x=x, generator=torch.Generator().manual_seed(5))
        runs.append(failures.numpy())
    assert np.array_equal(runs[0], runs[1]) and 0.4 < runs[0].mean() < 0.6


def test_decode_returns_failures_and_keeps_no_state(tiny, test_images):
    x = torch.from_numpy(test_images[:6])
    ideal = build("pca+ideal", tiny, 100, eps=0.1)
    sent = ideal.encode(x)
    with pytest.raises(ValueError, match="ideal-code reference.*x=x"):
        ideal.decode(torch.zeros_like(sent))
    with pytest.raises(ValueError, match="frames"):
        ideal.decode(torch.zeros_like(sent), x=x[:2])
    real = build("pca+rep", tiny, 120, eps=0.0)
    for codec in (ideal, real):
        before = dict(vars(codec))
        x_hat, failures = codec.decode(get_channel("bsc")(codec.encode(x), torch.Generator().manual_seed(0), eps=0.0), x=x)
        assert x_hat.shape == x.shape and failures.shape == (6,) and failures.dtype == torch.bool
        assert not failures.any()
        assert vars(codec).keys() == before.keys()  # decode sets nothing on the codec
        for attribute in ("last_failures", "last_fits", "last_needed_bits", "_genie"):
            assert not hasattr(codec, attribute)
    x_hat, llr, bits = Pipeline(tiny, ideal, get_channel("bsc"))(x, torch.Generator().manual_seed(0), eps=0.1)
    assert x_hat.shape == x.shape and llr.shape == bits.shape == (6, 100)


def test_rate_selection_streams_are_named_and_reproducible(tiny):
    from commsim.separated import RateSelection

    scheme = CODECS.get("pca+ldpc")
    pca = get_source_code("pca", SHAPE).fit(tiny)
    selection = RateSelection(scheme, pca, pca, 100, "bsc", {"eps": 0.1}, seed=3)
    draws = {(purpose, i): RateSelection(scheme, pca, pca, 100, "bsc", {"eps": 0.1}, seed=3).generators(purpose, i)
             for purpose in RateSelection.STREAMS for i in (0, 1)}
    for (purpose, i), (rng, gen) in draws.items():  # the same seed, purpose and candidate: the same numbers
        again_rng, again_gen = selection.generators(purpose, i)
        assert rng.integers(0, 2**32, 4).tolist() == again_rng.integers(0, 2**32, 4).tolist()
        assert torch.equal(torch.rand(4, generator=gen), torch.rand(4, generator=again_gen))
    firsts = {key: selection.generators(*key)[0].integers(0, 2**32) for key in draws}
    assert len(set(firsts.values())) == len(firsts)  # every purpose and candidate has its own stream
    with pytest.raises(ValueError):
        selection.generators("training", 0)
    a, b = (build("pca+rep", tiny, 120, eps=0.15) for _ in range(2))
    assert a.selection == b.selection and a.channel_code.name == b.channel_code.name
    assert len(a.selection) > 1 and any("screen_failure" in r or "frame_failure" in r for r in a.selection)


def test_one_class_for_every_separated_codec(tiny):
    from commsim.separated import SEPARATED_CODECS, SeparatedCodec, SeparatedScheme

    from commsim.fec import CHANNEL_CODES
    from commsim.source_codes import SOURCE_CODES

    assert len(SEPARATED_CODECS) == len(SOURCE_CODES.names()) * len(CHANNEL_CODES.names()) >= 36 and all(isinstance(CODECS.get(n), SeparatedScheme) for n in SEPARATED_CODECS)
    codec = build("vq+rep", tiny, 40, eps=0.1)
    assert type(codec) is SeparatedCodec and codec.name == "vq+rep"
    with pytest.raises(ValueError, match=r"more than pca\+ldpc takes"):
        CODECS.get("pca+ldpc").check_bits(10**9)


@pytest.mark.parametrize("name, bits", [("pca+ldpc", 100), ("pca+conv", 100), ("vq+rep", 60)])
def test_channel_decoding_stays_in_torch(tiny, test_images, name, bits, monkeypatch):
    codec = build(name, tiny, bits, eps=0.05)
    x = torch.from_numpy(test_images[:12])
    llr = get_channel("bsc")(codec.encode(x), torch.Generator().manual_seed(2), eps=0.05)
    expected = codec.decode(llr)

    def numpy_decode(llr):
        raise AssertionError("the numpy decode adapter was called")

    monkeypatch.setattr(codec.channel_code, "decode", numpy_decode)
    x_hat, failures = codec.decode(llr)  # no torch -> numpy -> torch round trip for the channel decoding
    assert torch.equal(x_hat, expected[0]) and torch.equal(failures, expected[1])
    assert {b.device for b in codec.buffers()} == {torch.device("cpu")} and len(list(codec.buffers())) >= 1


def test_neural_source_code_is_deterministic(tiny, test_images):
    codec = build("neural+ideal", tiny, 8, eps=0.1, source_options={"epochs": 1})
    assert codec.k == 4
    x = torch.from_numpy(test_images[:10])
    a, b = codec.encode(x), codec.encode(x)
    assert torch.equal(a, b)
    x_hat, _ = codec.decode(torch.zeros_like(a), x=x)  # ideal: the payload comes from x (the genie)
    assert x_hat.shape == x.shape and torch.isfinite(x_hat).all()


# CLI ---------------------------------------------------------------------------------------------

def test_cli_reports_when_jpeg_cannot_fit():
    from commsim.cli import cli

    result = CliRunner().invoke(cli, ["run", "--codec", "jpeg+ldpc", "--channel", "bsc", "--eps", "0.1", "--bits", "100"])
    text = result.output  # stdout and stderr
    assert result.exit_code == 2
    assert "cannot fit" in text and "needs" in text and "k = " in text
    assert len([line for line in text.splitlines() if line.strip()]) == 1


def test_cli_runs_jpeg_ldpc_with_enough_bits():
    from commsim.cli import cli

    result = CliRunner().invoke(cli, ["run", "--codec", "jpeg+ldpc", "--channel", "bsc", "--eps", "0.1", "--bits", "2000",
                                      "--limit", "50"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("codec "))
    header, values = lines[at : at + 2]
    assert "95 % confidence interval" in lines[at + 2]
    cells = dict(zip(re.split(r"\s{2,}", header.strip()), re.split(r"\s{2,}", values.strip())))
    assert cells["codec"] == "jpeg+ldpc" and cells["images"] == "50"
    assert 0 < float(cells["l2_per_image"].split()[0]) < 20  # the mean image scores about 52


# Reference curves --------------------------------------------------------------------------------

def test_reference_curves(tiny):
    assert capacity_bits(100, eps=0.1) == pytest.approx(100 * (1 - 0.4689955935892812), rel=1e-9)
    assert normal_approximation_bits(100, 0.1) < capacity_bits(100, eps=0.1)
    x = tiny.tensors("test")[0]
    zero = zero_information_l2(tiny)
    assert zero.mean == pytest.approx(float(((x - tiny.mean_image()) ** 2).flatten(1).sum(1).mean()), rel=1e-6)
    k, est = vq_proxy_l2(tiny, 40, eps=0.1)
    assert k == math.floor(40 * bsc_capacity(0.1)) and est.mean < zero.mean
