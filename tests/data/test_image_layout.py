"""``layout: image``: image data sets give ``x [P, C, H, W]`` (the same pixels as the flat
default, row-major), the loop builds the model for the sample shape, and a model that takes
only flat features is refused up front."""
from __future__ import annotations

import pytest
import torch

from data.digits import Digits
from data.mnist import MNIST5k, MNISTIDX
from network.events import SpikeTimes, n_features
from settings.errors import ConfigError


@pytest.mark.parametrize("make, shape", [(Digits, (1, 8, 8)), (MNIST5k, (1, 28, 28))])
def test_image_layout_reshapes_the_flat_pixels(make, shape):
    flat, image = make().load(0), make(layout="image").load(0)
    for (_, a), (_, b) in zip(flat.items(), image.items()):
        assert b.x.shape == (len(a), *shape)
        assert torch.equal(b.x.reshape(len(a), -1), a.x) and torch.equal(a.y, b.y)
    assert image.n_classes == flat.n_classes == 10


def test_idx_files_as_images(tmp_path):
    from datafiles import write_mnist_folder

    arrays = write_mnist_folder(tmp_path)
    splits = MNISTIDX(data_dir=str(tmp_path), layout="image").load(0)
    rows, cols = arrays["t10k-images-idx3-ubyte"].shape[1:]
    assert splits.test.x.shape == (len(arrays["t10k-labels-idx1-ubyte"]), 1, rows, cols)
    expected = torch.as_tensor(arrays["t10k-images-idx3-ubyte"], dtype=torch.float32) / 255.0
    assert torch.equal(splits.test.x[:, 0], expected)


def test_n_features_of_rasters_images_and_events():
    assert n_features(torch.zeros(3, 2, 7)) == 7
    assert n_features(torch.zeros(1, 2, 1, 8, 8)) == (1, 8, 8)
    assert n_features(SpikeTimes(torch.zeros(2, 5, dtype=torch.long), 4)) == 5


def test_the_model_is_built_for_the_image_shape():
    from testkit import make_pipeline

    pipe = make_pipeline("""\
data: {type: Digits, layout: image}
model: {type: SRNN, out_features: 10, hidden: 8}
loss: CrossEntropyLoss
optimizer: Adam
epochs: 0
""")
    splits, encoded, model = pipe.prepare(seed=0)
    assert encoded["train"].inputs.shape[2:] == (1, 8, 8) and model.input_size == (1, 8, 8)
    assert model.hidden.in_features == 64


def test_flat_models_refuse_images_up_front():
    from testkit import TINY_CONFIG, make_pipeline

    with pytest.raises(ConfigError, match=r"data\.layout must be flat for a Network model .* got 'image'; or use a "
                                          r"model that takes images: .*SRNN, Spikformer"):
        make_pipeline(TINY_CONFIG, data={"layout": "image"})
