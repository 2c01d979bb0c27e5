"""Learned codecs (NECST, ABF, IABF): networks, objectives, training, checkpoints and the zoo.

Importing the package registers ``necst``, ``abf`` and ``iabf`` as :class:`~commsim.learned.entry.LearnedEntry`
codecs (the codec protocol of :mod:`commsim.core.protocol`)."""
from commsim.core.codec import Codec
from commsim.core.registry import register_codec
from commsim.learned.abf import ABF
from commsim.learned.codec import LearnedCodec
from commsim.learned.entry import LearnedEntry
from commsim.learned.iabf import IABF
from commsim.learned.necst import NECST
from commsim.learned.training import TrainConfig, train_codec
from commsim.learned.zoo import load_codec

for _cls in (NECST, ABF, IABF):
    register_codec(_cls.name)(LearnedEntry(_cls))

__all__ = ["Codec", "LearnedCodec", "TrainConfig", "load_codec", "train_codec"]
