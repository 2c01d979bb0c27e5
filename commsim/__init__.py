"""commsim: Source -> Encoder -> Channel -> Decoder simulation with learned joint source-channel codes."""
__version__ = "0.1.0"

from commsim.channels import Chain, Channel, LambdaChannel, Param, get_channel  # noqa: E402
from commsim.codecs import Codec, TrainConfig, load_codec, train_codec  # noqa: E402
from commsim.data import ImageSource, load_dataset  # noqa: E402
from commsim.pipeline import EvalResult, Pipeline  # noqa: E402
from commsim.registry import CHANNELS, CODECS, DATASETS, register_channel, register_codec, register_dataset  # noqa: E402

__all__ = [
    "CHANNELS", "CODECS", "Chain", "Channel", "Codec", "DATASETS", "EvalResult", "ImageSource", "LambdaChannel",
    "Param", "Pipeline", "TrainConfig", "get_channel", "load_codec", "load_dataset", "register_channel",
    "register_codec", "register_dataset", "train_codec", "__version__",
]
