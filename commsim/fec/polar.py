"""5G NR polar codes (3GPP TS 38.212) with CRC-aided successive-cancellation list decoding.

Construction, following TS 38.212 V15 sections 5.3.1 and 5.4.1 (CA-polar, as for uplink control
information), for ``A = k`` information bits, a CRC of ``c`` bits (``K = A + c``) and ``E`` channel bits:

- CRC attachment (section 5.1): ``K = A + c`` bits ``[info, crc]`` (:class:`~commsim.fec.base.CRC`,
  CRC-6, CRC-11, CRC-16, CRC-24A/C). The downlink's CRC interleaver is skipped (the CRC sits at the end).
- Mother code length (5.3.1): ``n1 = ceil(log2 E) - 1`` if ``E <= (9/8) 2^(ceil(log2 E) - 1)`` and
  ``K / E < 9/16``, else ``ceil(log2 E)``; ``n2 = ceil(log2(8 K))`` (rate >= 1/8); ``N = 2^n`` with
  ``n = max(min(n1, n2, 10), 5)`` (``n_max = 10`` as for uplink; the downlink's 9 is not used). ``N`` may
  also be given (any power of two >= 2 up to 1024).
- Frozen set (5.3.1.2): the reliability sequence :data:`RELIABILITY` (Table 5.3.1.2-1) restricted to
  ``< N``; the positions that rate matching makes useless are frozen first (puncturing: the ``N - E``
  first interleaved positions and the lowest ``ceil(3N/4 - E/2)`` (``E >= 3N/4``) or ``ceil(9N/16 - E/4)``
  indices; shortening: the last ``N - E`` interleaved positions), then the ``K`` most reliable of the
  rest carry ``[info, crc]`` in increasing index order. No parity-check (PC) bits: ``n_PC = 0`` for every
  ``K`` (5G adds 3 PC bits to uplink codes of 12 <= A <= 19 information bits; not modelled).
- Encoding (5.3.1.2): ``x = u G_N``, ``G_N`` the n-fold Kronecker power of ``[[1, 0], [1, 1]]``.
- Rate matching (5.4.1): sub-block interleaver (32 sub-blocks, :data:`SUBBLOCK_PATTERN`), then bit
  selection from the circular buffer: repetition if ``E >= N``, else puncturing (first ``N - E`` dropped)
  if ``K / E <= 7/16``, else shortening (last ``N - E`` dropped). The channel interleaver (5.4.1.3, for
  uplink) and code block segmentation (``K >= 360`` with ``E >= 1088``) are not modelled.

Decoding (:mod:`commsim.fec.decoders.polar`): rate recovery (punctured LLR 0, shortened "certainly 0",
repeated copies summed), then SC or CRC-aided SCL with list size ``L`` in the LLR domain, batched.
``ok`` says whether the CRC of the chosen path holds (True without a CRC).

Checked against published curves (``tests/test_polar.py``, ``benchmarks/results/polar.md``): AFF3CT's
(1024, 512) SC with the 5G frozen set (FER points) and the 3GPP PUCCH CA-polar codes of
robmaunder/polar-3gpp-matlab (E = 216, CRC-11, CA-SCL-8: puncturing and shortening, Es/N0 at BLER 1e-3).
The (128, 64) code with CA-SCL-8 reaches BLER 1e-3 at Eb/N0 = 3.23 dB with CRC-6 (0.75 dB from the
normal approximation) and 3.58 dB with CRC-11 (1.10 dB).

    code = PolarCode(64, 128, crc="11", list_size=8)     # (E = 128, A = 64) + CRC-11, CA-SCL-8
    info_hat, ok = code.decode_tensor(llr)                  # llr [F, 128] (log P1/P0)
    codes = channel_code_family("polar").codes_for(500)     # rates ~5/6 .. ~1/8, each code.n == 500
"""
from __future__ import annotations

import math

import numpy as np
import torch

from commsim.fec.base import CRC, ChannelCode, check_info, check_llr, register_channel_code
from commsim.fec.decoders.polar import LIST_SIZES, SCDecoder, SCLDecoder, polar_transform_np

N_MAX = 1024
"""Longest mother code (``n_max = 10``, the uplink's; 38.212 5.3.1)."""

E_MAX = 8192
"""Most channel bits of one polar codeword (38.212 5.4.1)."""

SHORTENED_LLR = 1.0e4
"""LLR magnitude (log P1/P0 = -this) given to shortened positions, known to be 0."""

# 3GPP TS 38.212 V15.x, Table 5.3.1.2-1: the polar sequence Q_0^{N_max - 1} for N_max = 1024, bit indices in
# ascending order of reliability (W(Q_0) < W(Q_1) < ...). Copied as data from the standard (cross-checked
# with the table in robmaunder/polar-3gpp-matlab, components/get_3GPP_sequence_pattern.m).
RELIABILITY = np.array("""
    0 1 2 4 8 16 32 3 5 64 9 6 17 10 18 128 12 33 65 20 256 34 24 36 7 129 66 512 11 40 68 130 19 13 48 14 72
    257 21 132 35 258 26 513 80 37 25 22 136 260 264 38 514 96 67 41 144 28 69 42 516 49 74 272 160 520 288 528
    192 544 70 44 131 81 50 73 15 320 133 52 23 134 384 76 137 82 56 27 97 39 259 84 138 145 261 29 43 98 515 88
    140 30 146 71 262 265 161 576 45 100 640 51 148 46 75 266 273 517 104 162 53 193 152 77 164 768 268 274 518
    54 83 57 521 112 135 78 289 194 85 276 522 58 168 139 99 86 60 280 89 290 529 524 196 141 101 147 176 142
    530 321 31 200 90 545 292 322 532 263 149 102 105 304 296 163 92 47 267 385 546 324 208 386 150 153 165 106
    55 328 536 577 548 113 154 79 269 108 578 224 166 519 552 195 270 641 523 275 580 291 59 169 560 114 277 156
    87 197 116 170 61 531 525 642 281 278 526 177 293 388 91 584 769 198 172 120 201 336 62 282 143 103 178 294
    93 644 202 592 323 392 297 770 107 180 151 209 284 648 94 204 298 400 608 352 325 533 155 210 305 547 300
    109 184 534 537 115 167 225 326 306 772 157 656 329 110 117 212 171 776 330 226 549 538 387 308 216 416 271
    279 158 337 550 672 118 332 579 540 389 173 121 553 199 784 179 228 338 312 704 390 174 554 581 393 283 122
    448 353 561 203 63 340 394 527 582 556 181 295 285 232 124 205 182 643 562 286 585 299 354 211 401 185 396
    344 586 645 593 535 240 206 95 327 564 800 402 356 307 301 417 213 568 832 588 186 646 404 227 896 594 418
    302 649 771 360 539 111 331 214 309 188 449 217 408 609 596 551 650 229 159 420 310 541 773 610 657 333 119
    600 339 218 368 652 230 391 313 450 542 334 233 555 774 175 123 658 612 341 777 220 314 424 395 673 583 355
    287 183 234 125 557 660 616 342 316 241 778 563 345 452 397 403 207 674 558 785 432 357 187 236 664 624 587
    780 705 126 242 565 398 346 456 358 405 303 569 244 595 189 566 676 361 706 589 215 786 647 348 419 406 464
    680 801 362 590 409 570 788 597 572 219 311 708 598 601 651 421 792 802 611 602 410 231 688 653 248 369 190
    364 654 659 335 480 315 221 370 613 422 425 451 614 543 235 412 343 372 775 317 222 426 453 237 559 833 804
    712 834 661 808 779 617 604 433 720 816 836 347 897 243 662 454 318 675 618 898 781 376 428 665 736 567 840
    625 238 359 457 399 787 591 678 434 677 349 245 458 666 620 363 127 191 782 407 436 626 571 465 681 246 707
    350 599 668 790 460 249 682 573 411 803 789 709 365 440 628 689 374 423 466 793 250 371 481 574 413 603 366
    468 655 900 805 615 684 710 429 794 252 373 605 848 690 713 632 482 806 427 904 414 223 663 692 835 619 472
    455 796 809 714 721 837 716 864 810 606 912 722 696 377 435 817 319 621 812 484 430 838 667 488 239 378 459
    622 627 437 380 818 461 496 669 679 724 841 629 351 467 438 737 251 462 442 441 469 247 683 842 738 899 670
    783 849 820 728 928 791 367 901 630 685 844 633 711 253 691 824 902 686 740 850 375 444 470 483 415 485 905
    795 473 634 744 852 960 865 693 797 906 715 807 474 636 694 254 717 575 913 798 811 379 697 431 607 489 866
    723 486 908 718 813 476 856 839 725 698 914 752 868 819 814 439 929 490 623 671 739 916 463 843 381 497 930
    821 726 961 872 492 631 729 700 443 741 845 920 382 822 851 730 498 880 742 445 471 635 932 687 903 825 500
    846 745 826 732 446 962 936 475 853 867 637 907 487 695 746 828 753 854 857 504 799 255 964 909 719 477 915
    638 748 944 869 491 699 754 858 478 968 383 910 815 976 870 917 727 493 873 701 931 756 860 499 731 823 922
    874 918 502 933 743 760 881 494 702 921 501 876 847 992 447 733 827 934 882 937 963 747 505 855 924 734 829
    965 938 884 506 749 945 966 755 859 940 830 911 871 639 888 479 946 750 969 508 861 757 970 919 875 862 758
    948 977 923 972 761 877 952 495 703 935 978 883 762 503 925 878 735 993 885 939 994 980 926 764 941 967 886
    831 947 507 889 984 751 942 996 971 890 509 949 973 1000 892 950 863 759 1008 510 979 953 763 974 954 879
    981 982 927 995 765 956 887 985 997 986 943 891 998 766 511 988 1001 951 1002 893 975 894 1009 955 1004 1010
    957 983 958 987 1012 999 1016 767 989 1003 990 1005 959 1011 1013 895 1006 1014 1017 1018 991 1020 1007 1015
    1019 1021 1022 1023
""".split(), dtype=np.int64)

SUBBLOCK_PATTERN = np.array([0, 1, 2, 4, 3, 5, 6, 7, 8, 16, 9, 17, 10, 18, 11, 19,
                             12, 20, 13, 21, 14, 22, 15, 23, 24, 25, 26, 28, 27, 29, 30, 31])
"""P(i) of the sub-block interleaver, 3GPP TS 38.212 Table 5.4.1.1-1."""


def mother_length(K: int, E: int, n_max: int = 10, n_min: int = 5) -> int:
    """``N`` for ``K`` bits (info + CRC) sent in ``E`` channel bits, 38.212 section 5.3.1."""
    ce = math.ceil(math.log2(E))
    n1 = ce - 1 if (E <= (9 / 8) * 2 ** (ce - 1) and K / E < 9 / 16) else ce
    n2 = math.ceil(math.log2(8 * K))
    return 2 ** max(min(n1, n2, n_max), n_min)


def subblock_interleaver(N: int) -> np.ndarray:
    """``J [N]``: the interleaved output ``y_n = d_{J(n)}`` (38.212 5.4.1.1); ``N`` >= 32 a power of two."""
    i = np.arange(N) * 32 // N
    return SUBBLOCK_PATTERN[i] * (N // 32) + np.arange(N) % (N // 32)


def rate_matching_mode(K: int, E: int, N: int) -> str:
    """``"repetition"`` (``E >= N``), ``"puncturing"`` (``K / E <= 7/16``) or ``"shortening"`` (38.212 5.4.1.2)."""
    if E >= N:
        return "repetition"
    return "puncturing" if 16 * K <= 7 * E else "shortening"


def polar_construction(K: int, E: int, N: int | None = None) -> dict:
    """The code's tables: ``N``, ``mode``, ``frozen [N]`` bool, ``info_positions [K]`` (increasing),
    ``positions [E]`` (the index of ``x`` each channel bit carries), ``shortened`` and ``punctured``
    (indices of ``x`` not sent). Raises ``ValueError`` for impossible parameters."""
    if K < 1:
        raise ValueError(f"need K >= 1 information + CRC bits, got K = {K}")
    if not 1 <= E <= E_MAX:
        raise ValueError(f"E (channel bits) must be in 1..{E_MAX} (38.212 5.4.1), got E = {E}")
    if K > E:
        raise ValueError(f"K = {K} information + CRC bits do not fit in E = {E} channel bits: need K <= E")
    if N is None:
        N = mother_length(K, E)
    if N < 2 or N > N_MAX or N & (N - 1):
        raise ValueError(f"N must be a power of two in 2..{N_MAX}, got N = {N}")
    if K >= N:
        raise ValueError(f"K = {K} information + CRC bits need K < N = {N}; use a longer mother code "
                         f"(at most {N_MAX}) or fewer bits")
    J = subblock_interleaver(N) if N >= 32 else np.arange(N)
    mode = rate_matching_mode(K, E, N)
    frozen_tmp = np.zeros(N, bool)
    shortened = punctured = np.zeros(0, np.int64)
    if mode == "puncturing":
        punctured = J[: N - E]
        frozen_tmp[punctured] = True
        low = math.ceil(3 * N / 4 - E / 2) if E >= 3 * N / 4 else math.ceil(9 * N / 16 - E / 4)
        frozen_tmp[:low] = True
        start = N - E
    elif mode == "shortening":
        shortened = J[E:]
        frozen_tmp[shortened] = True
        start = 0
    else:
        start = 0
    usable = [q for q in RELIABILITY[RELIABILITY < N] if not frozen_tmp[q]]
    if len(usable) < K:
        raise ValueError(f"K = {K} bits do not fit: rate matching of N = {N} to E = {E} leaves {len(usable)} "
                         f"usable positions; send more channel bits or fewer information bits")
    info = np.sort(np.array(usable[len(usable) - K:], np.int64))
    frozen = np.ones(N, bool)
    frozen[info] = False
    positions = J[(np.arange(E) + start) % N]
    return {"N": N, "mode": mode, "frozen": frozen, "info_positions": info, "positions": positions,
            "shortened": np.sort(shortened), "punctured": np.sort(punctured)}


DECODERS = ("sc", "scl")


class PolarCode(ChannelCode):
    """A 5G NR CA-polar code: ``k`` information bits + ``crc`` in ``n = E`` channel bits.

    ``crc``: a CRC name of :data:`commsim.fec.base.CRC_NAMES` (``"6"``, ``"11"``, ``"16"``, ``"24A"``,
    ``"24C"``), its length in bits (0 = none) or a :class:`CRC`. ``list_size`` L (power of two, 1..32);
    ``decoder``: ``"scl"`` (the default when L > 1, CA-SCL with a CRC) or ``"sc"`` (the default when
    L = 1). ``N`` overrides the mother length of 38.212 5.3.1. Tables: :attr:`frozen` ``[N]``,
    :attr:`info_positions` ``[K]``, :attr:`positions` ``[E]``.

    ``encode(info [F, k]) -> [F, n]``; ``decode_tensor(llr [F, n]) -> (info_hat [F, k] uint8, ok [F] bool)``.
    """

    def __init__(self, k: int, n: int, crc: int | str | CRC = "11", list_size: int = 8, decoder: str | None = None,
                 N: int | None = None):
        super().__init__()
        self.crc = crc if isinstance(crc, CRC) else CRC(crc)
        if list_size not in LIST_SIZES:
            raise ValueError(f"list_size must be a power of two in 1..32, got {list_size}")
        decoder = decoder or ("scl" if list_size > 1 else "sc")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        if decoder == "sc" and list_size != 1:
            raise ValueError(f"the SC decoder keeps one path: use list_size=1 (got {list_size}) or decoder='scl'")
        if k < 1:
            raise ValueError(f"need k >= 1 information bits, got k = {k}")
        if self.crc.bits > k:
            raise ValueError(f"a CRC of {self.crc.bits} bits is longer than the k = {k} information bits it protects: "
                             "use a shorter CRC (or none)")
        self.k, self.n, self.K = int(k), int(n), int(k) + self.crc.bits
        tables = polar_construction(self.K, self.n, N)
        self.N, self.mode = tables["N"], tables["mode"]
        self.frozen, self.info_positions = tables["frozen"], tables["info_positions"]
        self.positions = tables["positions"]
        self.shortened, self.punctured = tables["shortened"], tables["punctured"]
        self.list_size, self.decoder = int(list_size), decoder
        crc_matrix = self.crc.matrix(self.k) if self.crc.bits else None
        self.tree = (SCDecoder(self.frozen) if decoder == "sc"
                     else SCLDecoder(self.frozen, self.list_size, crc_matrix))
        self.register_buffer("_positions", torch.from_numpy(self.positions), persistent=False)
        self.register_buffer("_shortened", torch.from_numpy(self.shortened), persistent=False)
        crc_name = f"+crc{self.crc.label.lower()}" if self.crc.bits else ""
        dec = "sc" if decoder == "sc" else f"scl{self.list_size}"
        self.name = f"polar({self.n},{self.k}){crc_name}-{dec}"

    def encode(self, info: np.ndarray) -> np.ndarray:
        word = self.crc.attach(check_info(info, self.k))
        u = np.zeros((word.shape[0], self.N), np.uint8)
        u[:, self.info_positions] = word
        return polar_transform_np(u)[:, self.positions]

    def mother_llr(self, llr: torch.Tensor) -> torch.Tensor:
        """Rate recovery: ``llr [F, E] -> [F, N]`` over the mother codeword ``x`` (punctured 0, shortened
        ``-SHORTENED_LLR``, repeated copies summed)."""
        if llr.dim() != 2 or llr.shape[1] != self.n:
            raise ValueError(f"llr must have shape [F, {self.n}], got {list(llr.shape)}")
        llr = llr.float()
        positions = self._positions.to(llr.device)
        if self.mode != "repetition" or self.n == self.N:
            out = llr.new_zeros((llr.shape[0], self.N)).index_copy_(1, positions, llr)
        else:
            out = llr.new_zeros((llr.shape[0], self.N)).index_add_(1, positions, llr)
        if self.shortened.size:
            out[:, self._shortened.to(llr.device)] = -SHORTENED_LLR
        return out

    def decode_tensor(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if llr.dim() != 2 or llr.shape[1] != self.n:
            raise ValueError(f"llr must have shape [F, {self.n}], got {list(llr.shape)}")
        if torch.isnan(llr).any():
            raise ValueError("llr must not contain NaN")
        word, ok = self.tree(self.mother_llr(llr))
        if self.decoder == "sc":
            return self.crc.split_tensor(word)
        return word[:, : self.k], ok

    def decode(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        llr = check_llr(llr, self.n)
        info, ok = self.decode_tensor(torch.from_numpy(llr.astype(np.float32)))
        return info.numpy(), ok.numpy()


RATES = (5 / 6, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 1 / 3, 1 / 4, 1 / 5, 1 / 6, 1 / 8)
"""Rates ``(k + crc) / n`` offered by :class:`PolarFamily`."""


@register_channel_code("polar")
class PolarFamily:
    """5G NR CA-polar codes of ``n`` channel bits (rate matched), rates ~5/6 .. 1/8, CA-SCL decoding.

    ``codes_for(n)``: one code per rate of :data:`RATES` that fits (``k >= crc_bits``, ``k + crc < N <=
    1024``: at large ``n`` only the low rates fit, there being no code block segmentation), highest rate
    first, each with ``code.n == n``; built once and cached.
    """

    max_length = E_MAX
    max_length_reason = f"a 5G NR polar codeword carries at most E = {E_MAX} channel bits (38.212 5.4.1)"

    def __init__(self, list_size: int = 8, crc_bits: int | str = 11, decoder: str | None = None):
        self.list_size, self.crc, self.decoder = list_size, CRC(crc_bits), decoder
        self._codes: dict[tuple[int, int], PolarCode] = {}

    def code(self, n: int, k: int) -> PolarCode:
        """The cached code of ``k`` information bits in ``n`` channel bits."""
        key = (n, k)
        if key not in self._codes:
            self._codes[key] = PolarCode(k, n, self.crc, self.list_size, self.decoder)
        return self._codes[key]

    def build(self, n: int, k: int) -> PolarCode:
        """The code of ``k`` information bits (+ CRC) in exactly ``n`` channel bits (e.g. for ``commsim ber``)."""
        if n > E_MAX:
            raise ValueError(f"polar codes send at most {E_MAX} channel bits per codeword, got n = {n}")
        return self.code(n, k)

    def codes_for(self, n: int) -> list[PolarCode]:
        if n > E_MAX:
            raise ValueError(f"polar codes send at most {E_MAX} channel bits per codeword, got n = {n}")
        out, seen = [], set()
        for rate in RATES:
            K = int(round(rate * n))
            k = K - self.crc.bits
            if k < max(1, self.crc.bits) or k in seen or K >= N_MAX:
                continue
            try:
                code = self.code(n, k)
            except ValueError:
                continue
            seen.add(k)
            out.append(code)
        return out
