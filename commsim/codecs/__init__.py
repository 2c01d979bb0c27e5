"""Learned codecs (NECST, ABF, IABF): networks, objectives, training, checkpoints and the zoo."""
from commsim.codecs import abf, iabf, necst  # noqa: F401  (registers "necst", "abf", "iabf")
from commsim.core.codec import Codec
from commsim.codecs.learned import LearnedCodec
from commsim.codecs.training import TrainConfig, train_codec
from commsim.codecs.zoo import load_codec

__all__ = ["Codec", "LearnedCodec", "TrainConfig", "load_codec", "train_codec"]
