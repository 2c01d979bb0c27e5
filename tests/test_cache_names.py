"""Cache names are pinned: the checkpoint names below were computed by commsim at commit 06f92e9 (before
the codec protocol and the typed choices); the same configurations must keep those names, so existing
caches keep loading. A change here orphans every user's cache: do not regenerate these without a
migration. The configurations are written with the defaults of that commit (``OLD_DEFAULTS``: the
defaults changed since, and a changed default is another configuration, hence another name)."""
import pytest

from commsim.data import load_dataset
from commsim.learned.training import TrainConfig
from commsim.learned.zoo import cache_entry

OLD_DEFAULTS = {"recipe": "onecycle", "epochs": 100}
"""The defaults at 06f92e9 of the fields whose defaults changed since (and fp32, which records nothing)."""
PINNED = [
    ('necst', {'eps': 0.1}, 'necst-mnist-b100-eps0.1-e100-s0-420c8833.safetensors'),
    ('necst', {'eps': 0.2, 'epochs': 30, 'seed': 2}, 'necst-mnist-b100-eps0.2-e30-s2-d464155d.safetensors'),
    ('necst', {'eps': 0.1, 'estimator': 'vimco', 'recipe': 'paper'}, 'necst-mnist-b100-eps0.1-e100-s0-d7f559b5.safetensors'),
    ('necst', {'channel': 'awgn', 'channel_params': {'ebno_db': 2.0}, 'decoder_input': 'soft'}, 'necst-mnist-b100-awgn-ebno_db2-soft-e100-s0-45c869a6.safetensors'),
    ('necst', {'eps': 0.1, 'infomax_on': 'noisy'}, 'necst-mnist-b100-eps0.1-e100-s0-3a306423.safetensors'),
    ('iabf', {'eps': 0.1}, 'iabf-mnist-b100-eps0.1-e100-s0-f462e184.safetensors'),
    ('iabf', {'eps': 0.2, 'epochs': 30, 'seed': 2}, 'iabf-mnist-b100-eps0.2-e30-s2-64d6bf0d.safetensors'),
    ('iabf', {'eps': 0.1, 'estimator': 'vimco', 'recipe': 'paper'}, 'iabf-mnist-b100-eps0.1-e100-s0-0a615687.safetensors'),
    ('iabf', {'channel': 'awgn', 'channel_params': {'ebno_db': 2.0}, 'decoder_input': 'soft'}, 'iabf-mnist-b100-awgn-ebno_db2-soft-e100-s0-0c2fa7c3.safetensors'),
    ('iabf', {'eps': 0.1, 'infomax_on': 'noisy'}, 'iabf-mnist-b100-eps0.1-e100-s0-f9530bca.safetensors'),
]


@pytest.mark.parametrize("codec, config, name", PINNED)
def test_cache_names_stay_as_they_were(codec, config, name):
    assert cache_entry(codec, load_dataset("mnist"), 100, TrainConfig(**{**OLD_DEFAULTS, **config})).name == name
