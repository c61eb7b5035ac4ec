from __future__ import annotations

import pytest
import torch
from testkit import make_pipeline

from encoders.level_crossing import LevelCrossingEncoder
from settings.errors import ConfigError

SDIGITS = """\
data: {type: SequentialDigits, val_fraction: 0.2, test_fraction: 0.2}
encoder: {type: LevelCrossingEncoder, level: 0.25}
model:
  layers:
    - {type: Recurrent, out_features: 8, kernel: LIFKernel}
  readout: {type: LeakyIntegrator, out_features: 10}
loss: {type: SequenceNLL, mode: last}
optimizer: {type: Adam, lr: 0.01}
epochs: 1
"""


def test_up_and_down_spikes_where_the_signal_changes_by_a_level():
    # two signals over 5 steps, time-major [T, B, F]
    x = torch.tensor([[0.0, 1.0], [0.3, 0.8], [0.3, 0.4], [0.0, 0.4], [0.5, 1.0]]).reshape(5, 1, 2)
    spikes = LevelCrossingEncoder(level=0.3, baseline=None).encode_sequence(x)
    assert spikes.shape == (5, 1, 4)
    # signal 0: changes 0, +0.3, 0, -0.3, +0.5 -> up at 1 and 4, down at 3 (>= L and <= -L count)
    assert spikes[:, 0, 0].tolist() == [0, 1, 0, 0, 1] and spikes[:, 0, 1].tolist() == [0, 0, 0, 1, 0]
    # signal 1: changes 0, -0.2, -0.4, 0, +0.6 -> a change of 0.2 is below the level
    assert spikes[:, 0, 2].tolist() == [0, 0, 0, 0, 1] and spikes[:, 0, 3].tolist() == [0, 0, 1, 0, 0]
    # from a baseline of 0, signal 1 rises by 1.0 at step 0
    from_zero = LevelCrossingEncoder(level=0.3).encode_sequence(x)
    assert from_zero[0, 0].tolist() == [0, 0, 1, 0] and torch.equal(from_zero[1:], spikes[1:])


def test_features_are_a_one_step_signal_and_images_keep_their_shape():
    enc = LevelCrossingEncoder(level=0.5)
    out = enc.encode(torch.tensor([[0.2, 0.7, -0.6]]))
    assert out.tolist() == [[[0, 0, 1, 0, 0, 1]]] and enc.out_features(3) == 6
    images = torch.zeros(3, 2, 1, 2, 2)  # [T, B, C, H, W]
    images[1, 0, 0, 1, 0] = 1.0
    spikes = enc.encode_sequence(images)
    assert spikes.shape == (3, 2, 2, 2, 2)
    assert spikes[1, 0, 0, 1, 0] == 1 and spikes[2, 0, 1, 1, 0] == 1 and spikes.sum() == 2


def test_a_sequence_data_set_goes_through_a_sequence_encoder():
    pipe = make_pipeline(SDIGITS)
    splits, encoded, model = pipe.prepare(seed=0)
    raw = splits.train.x  # [P, 64, 1] pixels in [0, 1]
    x = encoded["train"].inputs
    assert x.shape == (64, raw.shape[0], 2) and model.layers[0].in_features == 2
    delta = torch.diff(raw[:, :, 0], dim=1, prepend=torch.zeros(raw.shape[0], 1)).T  # [T, P]
    assert torch.equal(x[:, :, 0], (delta >= 0.25 - 1e-6).float())
    assert torch.equal(x[:, :, 1], (delta <= -0.25 + 1e-6).float())


def test_an_encoder_of_features_on_sequence_data_is_refused():
    with pytest.raises(ConfigError, match="encoder must be null: SequentialDigits already gives a sequence .*"
                                          "encoders of sequences: LevelCrossingEncoder"):
        make_pipeline(SDIGITS.replace("{type: LevelCrossingEncoder, level: 0.25}", "RateEncoder"))
