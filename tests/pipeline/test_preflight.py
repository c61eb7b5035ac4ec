"""The sizes and metric names the up-front checks assume are the ones a run really has."""
from __future__ import annotations

import pytest
from testkit import TEMPOTRON_CONFIG, TINY_CONFIG, make_pipeline

from data.digits import Digits
from data.random_patterns import RandomDataset
from pipeline.preflight import memory_estimate, run_sizes
from settings.metrics import produced_metrics
from settings.registries import PIPELINES
from settings.resolve import resolve_config
from settings.yaml_io import parse_yaml


@pytest.mark.parametrize("dataset", [Digits(), RandomDataset(size=50, input_size=7)])
def test_a_data_set_shape_is_what_it_loads(dataset):
    shape, splits = dataset.shape(), dataset.load(seed=0)
    assert shape.samples == sum(splits.sizes().values())
    assert shape.features == splits.n_features and shape.classes == splits.n_classes


@pytest.mark.parametrize("config, train_metrics", [(TINY_CONFIG, "eval"), (TINY_CONFIG, "running"),
                                                   (TEMPOTRON_CONFIG, "eval")])
def test_the_metrics_a_run_records_are_the_ones_monitors_may_name(config, train_metrics):
    pipe = make_pipeline(config.replace("epochs: 2", "epochs: 1").replace("epochs: 3", "epochs: 1"),
                         train_metrics=train_metrics)
    result = pipe.fit(seed=0)
    recorded = set.intersection(*(set(epoch) for epoch in result.history)) - {"epoch"}  # what a monitor always finds
    splits = [name for name, size in pipe.data.load(0).sizes().items() if size]
    spiking = any(layer.spiking for layer in pipe.model_factory(input_size=pipe.data.shape().features).layers)
    expected = produced_metrics(splits, pipe.data.shape().classes, train_metrics == "running", spiking)
    assert recorded == expected


def test_the_memory_estimate_is_a_lower_bound_of_the_weights():
    config = resolve_config(parse_yaml(TINY_CONFIG), {})
    config.pop("env")
    sizes = run_sizes(config, Digits().shape())
    assert (sizes.inputs, sizes.layers, sizes.outputs, sizes.steps) == (64, [16], 10, 100)
    estimate = memory_estimate(config, sizes)
    assert estimate["parameters"] == 2 * 4 * (64 * 16 + 16 * 10)
    assert estimate["activations"] == 100 * 256 * 16 * 4
    assert PIPELINES.get("TrainingPipeline").check_params(config) == []
