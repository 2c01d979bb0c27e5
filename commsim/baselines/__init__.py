"""Separated source + channel coding baselines."""
from commsim.baselines import codes, sources  # noqa: F401  (channel-code families, source codes)
from commsim.baselines.separated import SEPARATED_CODECS, SchemeError, SeparatedCodec  # noqa: F401  (registers SOURCE+CHANNEL codecs)
