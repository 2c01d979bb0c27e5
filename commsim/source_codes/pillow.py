"""Standard image codecs through Pillow, with honest payload accounting: ``jpeg``, ``webp``, ``jpeg2000``.

Each runs the unmodified library encoder at a ladder of quality settings, keeps only the part of the
file that changes from image to image (the payload), and picks the best quality whose payload fits the
``k`` information bits (:meth:`LadderCode.choose_level`). What both ends fix in advance -- the image
size, the codec configuration and every header byte that is constant for it -- is shared, not sent. The
decoder rebuilds the full file from the shared part and the received bits and decodes it with Pillow;
with error-free bits the result is exactly Pillow's decode of the original file (tested).

What each sends (all bit strings MSB first, then padding up to ``k``):

- ``jpeg`` (baseline JPEG, standard Huffman tables, no optimisation, 4:2:0 for colour):
  ``[4-bit level index, 1..15; 0 = no image] [entropy-coded scan data]``. The scan data is what lies
  between the SOS segment and EOI, with the 0xFF00 byte stuffing removed and trailing 1-bits (JPEG's
  own padding value) stripped; the receiver appends 1-bits, re-stuffs and appends EOI. Shared: SOI, JFIF APP0, DQT (the quantisation tables of each of the 15 qualities), SOF,
  DHT (the standard tables), SOS -- 328 bytes for a 28x28 grey image. The level index is sent because
  the receiver must know which quantisation tables to use.
- ``webp`` (lossy VP8, ``method=6``): ``[w-bit first-partition size; 0 = no image] [VP8 data after
  the 10-byte frame header]``, trailing zero bits stripped (the receiver appends zeros),
  ``w = bit_length(ceil(k / 8))``. Shared: the RIFF/WEBP
  container and the "VP8 " chunk header (their length fields are rebuilt from the received length), the
  frame tag's key-frame/version/show bits, the start code and the dimensions -- 30 bytes. The quality
  needs no signalling: the quantiser indices are inside the first partition.
- ``jpeg2000`` (OpenJPEG through Pillow, raw codestream, 9/7 irreversible wavelet, one quality layer,
  rate control by target size): ``[1 bit: 1 = image, 0 = no image] [packet data after SOD]``, trailing
  zero bits stripped. Shared: the main header (SOC, SIZ, COD, QCD and OpenJPEG's COM marker -- 129 bytes
  for 28x28 grey) and the SOT/SOD tile-part header, whose length field Psot is set to 0 ("up to EOC",
  allowed by the standard); the receiver appends zeros and EOC.

Stripping trailing padding is lossless because the receiver appends the same value: after the ``k``
received bits it fills the last byte and adds :attr:`LadderCode.TAIL_BYTES` (16) more bytes, so the
sender strips at most 128 bits (libwebp and libjpeg do read that far). The files the receiver rebuilds
thus carry some extra padding bytes, which the libraries ignore; the tests check that the decoded
pixels equal Pillow's decode of the original file, at the tightest ``k`` for every level.
"""
from __future__ import annotations

import io
import math
import struct

import numpy as np
from PIL import Image

from commsim.source_codes.base import (
    LRU,
    SourceCode,
    bits_to_bytes,
    bits_to_int,
    bytes_to_bits,
    int_to_bits,
    strip_trailing,
    to_uint8,
)


def to_pil(img_u8: np.ndarray) -> Image.Image:
    """``[C, H, W]`` uint8 -> a Pillow image (``L`` for one channel, ``RGB`` for three)."""
    return Image.fromarray(img_u8[0]) if img_u8.shape[0] == 1 else Image.fromarray(np.moveaxis(img_u8, 0, -1))


def from_pil(image: Image.Image, channels: int) -> np.ndarray:
    """A decoded Pillow image -> ``[C, H, W]`` float in [0, 1]."""
    arr = np.asarray(image.convert("L" if channels == 1 else "RGB"), np.float32) / 255.0
    return arr[None] if channels == 1 else np.moveaxis(arr, -1, 0)


class StreamFormatError(RuntimeError):
    """The library wrote a file whose fixed part is not what the shared header says (a bug, not a
    channel error)."""


class LadderCode(SourceCode):
    """A variable-rate code run at a ladder of settings (``levels``, worst to best quality).

    Subclasses implement ``_payload(img_u8, level) -> payload bits`` (without the per-frame header),
    ``header_bits(k)``, ``_header(index, side, k)`` and ``decode``.
    """

    variable_rate = True
    levels: tuple = ()
    TAIL_BYTES = 16
    """The receiver appends this many bytes of padding after the received bits, so the sender may strip
    up to ``8 * TAIL_BYTES`` trailing padding bits (the library needs them on reading)."""

    def __init__(self, image_shape, seed: int = 0, levels=None):
        super().__init__(image_shape, seed)
        if levels is not None:
            self.levels = tuple(levels)
        if not self.levels:
            raise ValueError(f"{self.name} needs at least one level")
        self._cache = LRU(5000)

    def header_bits(self, k: int) -> int:
        raise NotImplementedError

    def _payload(self, img_u8: np.ndarray, level) -> tuple[np.ndarray, int]:
        """``(payload bits, side value)``; the side value goes into the header (WebP's partition size)."""
        raise NotImplementedError

    def _header(self, index: int, side: int, k: int) -> np.ndarray:
        raise NotImplementedError

    def _slots(self, img: np.ndarray) -> tuple[np.ndarray, list]:
        """``(img_u8, per-level cache slots)``; a slot is ``None`` until that level is encoded."""
        img_u8 = to_uint8(img)
        self.check_shape(img_u8.shape)
        key = img_u8.tobytes()
        slots = self._cache.get(key)
        if slots is None:
            slots = self._cache.put(key, [None] * len(self.levels))
        return img_u8, slots

    def entry(self, img: np.ndarray, index: int) -> tuple[np.ndarray, int, int]:
        """``(packed payload, payload bits, side value)`` at one level (encoded once per image)."""
        img_u8, slots = self._slots(img)
        if slots[index] is None:
            bits, side = self._payload(img_u8, self.levels[index])
            slots[index] = (np.packbits(bits), bits.size, side)
        return slots[index]

    def _entries(self, img: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
        return [self.entry(img, i) for i in range(len(self.levels))]

    def choose_level(self, img: np.ndarray, k: int) -> int | None:
        """Index of the best level whose header + payload fits ``k`` bits, else ``None`` (levels are
        tried from the best down, each encoded at most once per image). A smaller ``k`` can only lower
        the choice: the set of fitting levels shrinks."""
        for index in range(len(self.levels) - 1, -1, -1):
            _, size, side = self.entry(img, index)
            if self.fits(size, side, k):
                return index
        return None

    def fits(self, size: int, side: int, k: int) -> bool:
        """Whether a payload of ``size`` bits with side value ``side`` fits ``k`` bits with its header."""
        return size + self.header_bits(k) <= k

    def encode(self, img: np.ndarray, k: int) -> np.ndarray | None:
        index = self.choose_level(img, k)
        if index is None:
            return None
        packed, size, side = self.entry(img, index)
        return np.concatenate([self._header(index, side, k), np.unpackbits(packed)[:size]]).astype(np.uint8)

    def needed_bits(self, img: np.ndarray) -> int:
        """The smallest ``k`` at which some level fits (header included)."""
        entries = self._entries(img)
        k = int(min(size for _, size, _ in entries)) + 1
        while not any(self.fits(size, side, k) for _, size, side in entries):
            k += 1
        return k


def _jpeg_split(data: bytes) -> tuple[bytes, bytes]:
    """A baseline JPEG file -> (everything up to the end of the SOS segment, scan data before EOI)."""
    at = data.find(b"\xff\xda")
    if at < 0 or data[-2:] != b"\xff\xd9":
        raise StreamFormatError("not a single-scan JPEG stream")
    end = at + 2 + (data[at + 2] << 8 | data[at + 3])
    return data[:end], data[end:-2]


class JPEGCode(LadderCode):
    """Baseline JPEG (Pillow/libjpeg): sends a 4-bit quality index and the entropy-coded scan; the
    tables and headers are shared."""

    name = "jpeg"
    pad_bit = 1
    levels = (1, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90)
    INDEX_BITS = 4

    def __init__(self, image_shape, seed: int = 0, levels=None):
        super().__init__(image_shape, seed, levels)
        if len(self.levels) >= 2**self.INDEX_BITS:
            raise ValueError(f"jpeg takes at most {2**self.INDEX_BITS - 1} levels")
        self._headers: dict[int, bytes] = {}

    def _save(self, img_u8: np.ndarray, quality: int) -> bytes:
        out = io.BytesIO()
        to_pil(img_u8).save(out, "JPEG", quality=int(quality), optimize=False, progressive=False, subsampling=2)
        return out.getvalue()

    def shared_header(self, quality: int) -> bytes:
        """The bytes both ends hold for a quality: SOI .. SOS (tables included)."""
        if quality not in self._headers:
            self._headers[quality] = _jpeg_split(self._save(np.zeros(self.image_shape, np.uint8), quality))[0]
        return self._headers[quality]

    def header_bits(self, k: int) -> int:
        return self.INDEX_BITS

    def _header(self, index, side, k):
        return int_to_bits(index + 1, self.INDEX_BITS)

    def empty_payload(self, k):
        return np.zeros(self.INDEX_BITS, np.uint8)

    def _payload(self, img_u8, quality):
        header, scan = _jpeg_split(self._save(img_u8, quality))
        if header != self.shared_header(quality):
            raise StreamFormatError(f"JPEG header at quality {quality} differs from the shared one")
        # no restart interval is set, so the only 0xFF bytes in the scan are stuffed ones (0xFF00)
        return strip_trailing(bytes_to_bits(scan.replace(b"\xff\x00", b"\xff")), 1, 8 * self.TAIL_BYTES), 0

    def decode(self, bits):
        bits = np.asarray(bits, np.uint8)
        if bits.size < self.INDEX_BITS:
            return None
        index = bits_to_int(bits[: self.INDEX_BITS])
        if index == 0 or index > len(self.levels):
            return None
        scan = (bits_to_bytes(bits[self.INDEX_BITS:], 1) + b"\xff" * self.TAIL_BYTES).replace(b"\xff", b"\xff\x00")
        data = self.shared_header(self.levels[index - 1]) + scan + b"\xff\xd9"
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return from_pil(image, self.image_shape[0])


class WebPCode(LadderCode):
    """Lossy WebP (VP8, Pillow/libwebp): sends the first-partition size and the VP8 data; the
    container, frame header and dimensions are shared."""

    name = "webp"
    pad_bit = 0
    levels = (0, 5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 100)
    TAG_LOW = 0x10  # key frame, version 0, show_frame: the low 5 bits of the frame tag
    method = 6

    def __init__(self, image_shape, seed: int = 0, levels=None):
        super().__init__(image_shape, seed, levels)
        self._fixed: bytes | None = None

    def _vp8(self, img_u8, quality) -> tuple[int, bytes]:
        out = io.BytesIO()
        to_pil(img_u8).save(out, "WEBP", quality=int(quality), method=self.method, lossless=False)
        data = out.getvalue()
        if data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8 ":
            raise StreamFormatError("libwebp did not write a simple lossy (VP8) file")
        size = struct.unpack("<I", data[16:20])[0]
        vp8 = data[20 : 20 + size]
        tag = vp8[0] | vp8[1] << 8 | vp8[2] << 16
        if tag & 0x1F != self.TAG_LOW:
            raise StreamFormatError(f"unexpected VP8 frame tag {tag & 0x1F:#x}")
        return tag >> 5, vp8

    def fixed_bytes(self) -> bytes:
        """Start code and dimensions (bytes 3..9 of the VP8 frame): shared."""
        if self._fixed is None:
            self._fixed = self._vp8(np.zeros(self.image_shape, np.uint8), 50)[1][3:10]
        return self._fixed

    def header_bits(self, k: int) -> int:
        return max(1, math.ceil(k / 8).bit_length())

    def _header(self, index, side, k):
        return int_to_bits(side, self.header_bits(k))

    def fits(self, size, side, k):
        width = self.header_bits(k)
        return size + width <= k and side < 2**width

    def _payload(self, img_u8, quality):
        psize, vp8 = self._vp8(img_u8, quality)
        if vp8[3:10] != self.fixed_bytes():
            raise StreamFormatError("VP8 start code / dimensions differ from the shared ones")
        return strip_trailing(bytes_to_bits(vp8[10:]), 0, 8 * self.TAIL_BYTES), psize

    def decode(self, bits):
        bits = np.asarray(bits, np.uint8)
        width = self.header_bits(bits.size)
        if bits.size <= width:
            return None
        psize = bits_to_int(bits[:width])
        if psize == 0:
            return None
        body = bits_to_bytes(bits[width:], 0) + bytes(self.TAIL_BYTES)
        if len(body) % 2:
            body += b"\x00"
        tag = psize << 5 | self.TAG_LOW
        vp8 = bytes([tag & 0xFF, tag >> 8 & 0xFF, tag >> 16 & 0xFF]) + self.fixed_bytes() + body
        data = b"RIFF" + struct.pack("<I", 12 + len(vp8)) + b"WEBPVP8 " + struct.pack("<I", len(vp8)) + vp8
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return from_pil(image, self.image_shape[0])


class JPEG2000Code(LadderCode):
    """JPEG 2000 (OpenJPEG through Pillow, 9/7 wavelet, rate control by size): sends a 1-bit flag
    and the packet data; the main and tile-part headers are shared."""

    name = "jpeg2000"
    pad_bit = 0

    def __init__(self, image_shape, seed: int = 0, levels=None, resolutions: int | None = None):
        c, h, w = (int(s) for s in image_shape)
        raw = c * h * w
        if levels is None:  # target packet-data sizes in bytes, geometric from 8 to the raw size
            levels = tuple(int(v) for v in np.unique(np.rint(np.geomspace(8, raw, 20))))
        super().__init__(image_shape, seed, levels)
        self.resolutions = resolutions or max(1, min(6, int(math.log2(min(h, w))) - 1))
        self._main: bytes | None = None
        self._overhead = None

    def _save(self, img_u8, target_bytes: float) -> bytes:
        raw = int(np.prod(self.image_shape))
        overhead = self._overhead if self._overhead is not None else 0
        ratio = raw / max(target_bytes + overhead, 1.0)
        out = io.BytesIO()
        to_pil(img_u8).save(out, "JPEG2000", no_jp2=True, irreversible=True, quality_mode="rates",
                            quality_layers=[max(ratio, 1.0)], num_resolutions=self.resolutions,
                            mct=1 if self.image_shape[0] == 3 else 0)
        return out.getvalue()

    @staticmethod
    def _split(data: bytes) -> tuple[bytes, bytes, bytes]:
        """(main header, SOT segment, packet data) of a one-tile, one-tile-part codestream."""
        at = data.find(b"\xff\x90")
        if at < 0 or data[-2:] != b"\xff\xd9" or data[at + 12 : at + 14] != b"\xff\x93":
            raise StreamFormatError("not a one-tile-part JPEG 2000 codestream")
        sot = data[at : at + 12]
        psot = struct.unpack(">I", sot[6:10])[0]
        if psot not in (0, len(data) - 2 - at):
            raise StreamFormatError("more than one tile-part")
        return data[:at], sot[:6] + b"\x00\x00\x00\x00" + sot[10:], data[at + 14 : -2]

    def shared_header(self) -> bytes:
        """Main header + SOT (Psot = 0) + SOD: what both ends hold."""
        if self._main is None:
            main, sot, _ = self._split(self._save(np.zeros(self.image_shape, np.uint8), 100))
            self._main = main + sot + b"\xff\x93"
            self._overhead = len(self._main) + 2
        return self._main

    def header_bits(self, k: int) -> int:
        return 1

    def _header(self, index, side, k):
        return np.ones(1, np.uint8)

    def empty_payload(self, k):
        return np.zeros(1, np.uint8)

    def _payload(self, img_u8, target):
        shared = self.shared_header()
        main, sot, data = self._split(self._save(img_u8, target))
        if main + sot + b"\xff\x93" != shared:
            raise StreamFormatError("JPEG 2000 main header differs from the shared one")
        return strip_trailing(bytes_to_bits(data), 0, 8 * self.TAIL_BYTES), 0

    def decode(self, bits):
        bits = np.asarray(bits, np.uint8)
        if bits.size < 2 or bits[0] == 0:
            return None
        data = self.shared_header() + bits_to_bytes(bits[1:], 0) + bytes(self.TAIL_BYTES) + b"\xff\xd9"
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return from_pil(image, self.image_shape[0])
