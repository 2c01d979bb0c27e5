"""Learned codecs (NECST, ABF, IABF): networks, objectives, training, checkpoints and the zoo."""
from commsim.learned import abf, iabf, necst  # noqa: F401  (registers "necst", "abf", "iabf")
from commsim.core.codec import Codec
from commsim.learned.codec import LearnedCodec
from commsim.learned.training import TrainConfig, train_codec
from commsim.learned.zoo import load_codec

__all__ = ["Codec", "LearnedCodec", "TrainConfig", "load_codec", "train_codec"]
