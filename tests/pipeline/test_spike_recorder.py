"""SpikeRecorder writes what the model does on fixed samples (checked against the model run by
hand), survives a resume, and the confusion matrix of a run agrees with its accuracy metrics."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.callbacks import ModelCheckpoint, RunPlots, SpikeRecorder
from pipeline.callbacks.base import Callback
from pipeline.callbacks.checkpoint import load_checkpoint
from pipeline.callbacks.run_plots import confusion_matrix, per_class_accuracy, plot_confusion, write_confusion
from pipeline.callbacks.spike_recorder import balanced_indices
from settings.registries import CALLBACKS
from settings.schema import build
from testkit import TEMPOTRON_CONFIG, TINY_CONFIG, make_pipeline
from tools.recordings import (LayerRecording, Recording, load_recording, load_run_recordings, plot_raster,
                              plot_traces, recording_files, save_recording)

FAST = {"T": 20}  # 20 steps of 1 ms: a fit of 3 epochs takes about a second


def fit(run_dir: Path, recorder: SpikeRecorder, epochs: int = 2, extra=(), resume=None):
    pipe = make_pipeline(TINY_CONFIG, FAST, epochs=epochs)
    return pipe, pipe.fit(seed=0, run_dir=run_dir, callbacks=[recorder, ModelCheckpoint(), *extra], resume=resume)


def test_balanced_indices_take_each_class_in_turn():
    targets = torch.tensor([2, 0, 0, 1, 2, 1, 1])
    assert balanced_indices(targets, 4) == [1, 3, 0, 2]  # first 0, first 1, first 2, then the second 0
    assert balanced_indices(targets, 100) == [1, 3, 0, 2, 5, 4, 6]
    assert balanced_indices(torch.zeros(5, 3, dtype=torch.long), 2) == [0, 1]  # per-step targets: the first ones


def test_the_recordings_are_the_models_traces_on_fixed_samples(tmp_path):
    recorder = SpikeRecorder(samples=3, epochs=[0, 1])
    pipe, result = fit(tmp_path, recorder, epochs=2)
    assert list(recording_files(tmp_path)) == [0, 1, 2]  # epochs 0 and 1, and the last epoch
    recordings = load_run_recordings(tmp_path)
    splits, encoded, model = pipe.prepare(0)  # the untrained model and the fit's encoded data
    test = encoded["test"]
    first = recordings[0]
    assert first.split == "test" and first.n_samples == 3 and first.steps == 20 and first.dt == 1.0
    index = torch.as_tensor(first.sample_index)
    assert test.targets[index].tolist() == first.label.tolist() == [0, 1, 2]  # class-balanced: one per class
    for epoch, weights in ((0, None), (2, load_checkpoint(tmp_path / "checkpoints" / "last.pt")["model"])):
        if weights is not None:
            model.load_state_dict(weights)
        model.eval()
        with torch.no_grad():
            output = model(test.inputs[:, index])
        recording = recordings[epoch]
        assert np.array_equal(recording.sample_index, first.sample_index)  # the same samples every epoch
        layer = recording.layers["layers.0"]
        assert layer.spiking and set(np.unique(layer.out)) <= {0.0, 1.0}
        np.testing.assert_array_equal(layer.out, output.traces[0].out.numpy())
        np.testing.assert_allclose(layer.membrane, output.traces[0].membrane.numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(recording.readout, output.readout.trace.numpy(), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(recording.input, test.inputs[:, index].numpy())
        assert recording.prediction.tolist() == output.scores.argmax(dim=-1).tolist()
    assert recordings[2].layers["layers.0"].out.sum() != recordings[0].layers["layers.0"].out.sum()  # it learned
    plots = sorted(p.name for p in (tmp_path / "plots" / "recordings").iterdir())
    assert plots == [f"{kind}_epoch_{e}.png" for kind in ("raster", "traces") for e in (0, 1, 2)]
    assert recorder.problem is None and recorder.state_dict() == {"recorded": [0, 1, 2]}
    # what notebooks and reports read
    from analysis.recordings import draw_recordings, latest_recording, run_recordings

    assert list(run_recordings(tmp_path)) == [0, 1, 2] and latest_recording(tmp_path).epoch == 2
    assert [p.name for p in draw_recordings(tmp_path, tmp_path / "report", "r0_")] == \
        ["r0_raster_epoch_2.png", "r0_traces_epoch_2.png"]
    assert latest_recording(tmp_path / "nothing") is None and draw_recordings(tmp_path / "nothing", tmp_path) == []


class StopAt(Callback):
    """Interrupts the fit at the end of one epoch, after every other callback (a kill)."""

    order = 99

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, state, epoch, metrics):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_a_resumed_fit_records_the_epochs_after_its_checkpoint_again(tmp_path):
    whole = tmp_path / "whole"
    fit(whole, SpikeRecorder(samples=2, epochs=[1, 2, 3]), epochs=4)
    broken = tmp_path / "broken"
    (broken / "recordings").mkdir(parents=True)
    (broken / "recordings" / "epoch_7.npz").write_bytes(b"left by an earlier attempt")
    pipe = make_pipeline(TINY_CONFIG, FAST, epochs=4)
    with pytest.raises(KeyboardInterrupt):  # killed after epoch 3 was recorded; last.pt holds epoch 2
        pipe.fit(seed=0, run_dir=broken, callbacks=[SpikeRecorder(samples=2, epochs=[1, 2, 3]),
                                                   ModelCheckpoint(every=2), StopAt(3)])
    assert list(recording_files(broken)) == [1, 2, 3]  # the fresh start removed epoch_7
    stale = load_recording(broken / "recordings" / "epoch_3.npz")
    ckpt = load_checkpoint(broken / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 2
    resumed = SpikeRecorder(samples=2, epochs=[1, 2, 3])
    make_pipeline(TINY_CONFIG, FAST, epochs=4).fit(seed=0, run_dir=broken, callbacks=[resumed, ModelCheckpoint()],
                                                   resume=ckpt)
    assert resumed.recorded == [1, 2, 3, 4] and list(recording_files(broken)) == [1, 2, 3, 4]
    for epoch, expected in load_run_recordings(whole).items():
        again = load_recording(broken / "recordings" / f"epoch_{epoch}.npz")
        np.testing.assert_array_equal(again.layers["layers.0"].out, expected.layers["layers.0"].out)
        np.testing.assert_array_equal(again.prediction, expected.prediction)
    np.testing.assert_array_equal(stale.layers["layers.0"].out, load_run_recordings(whole)[3].layers["layers.0"].out)


def test_layers_split_and_indices_are_checked_when_the_fit_starts(tmp_path):
    pipe = make_pipeline(TEMPOTRON_CONFIG, epochs=1)  # training samples only
    with pytest.raises(ValueError, match=r"SpikeRecorder.split is 'test', which has no samples in this run; "
                                         r"allowed: train$"):
        pipe.fit(seed=0, callbacks=[SpikeRecorder(split="test")])
    with pytest.raises(ValueError, match=r"SpikeRecorder.layers must be layer indices of a 1-layer model .*got \[1\]"):
        pipe.fit(seed=0, callbacks=[SpikeRecorder(layers=[1])])
    with pytest.raises(ValueError,
                       match=r"SpikeRecorder.indices must be below the train split's \d+ samples, got \[999\]"):
        pipe.fit(seed=0, callbacks=[SpikeRecorder(split="train", indices=[0, 999])])


def test_a_tempotron_recording_holds_the_membrane_of_its_one_neuron(tmp_path):
    recorder = build({"type": "SpikeRecorder", "samples": 4, "epochs": [0], "last": False}, CALLBACKS)
    make_pipeline(TEMPOTRON_CONFIG, epochs=1).fit(seed=0, run_dir=tmp_path, callbacks=[recorder])
    recording = load_run_recordings(tmp_path)[0]
    assert recording.split == "train"  # no test or validation samples: the training split
    layer = recording.layers["layers.0"]
    assert layer.membrane.shape == (200, 4, 1) and not layer.spiking and recording.readout is None
    # the tempotron's score is the peak of its membrane (MaxMembrane)
    np.testing.assert_allclose(recording.scores[:, 0], layer.membrane.max(axis=0)[:, 0], rtol=1e-6)
    assert recording.input is not None and recording.input.sum() == (recording.input.max(axis=0) > 0).sum()


def test_a_recording_file_round_trips(tmp_path):
    out = np.zeros((5, 2, 3), dtype=np.float32)
    out[1, 0, 2] = out[4, 1, 0] = 1.0
    recording = Recording(3, "val", np.array([4, 9]), np.array([1, 0]), np.array([1, 1]),
                          np.array([[0.1, 0.9], [0.3, 0.7]], dtype=np.float32),
                          {"layers.0": LayerRecording(out, np.linspace(0, 1, 30, dtype=np.float32).reshape(5, 2, 3),
                                                      True)}, dt=0.5)
    back = load_recording(save_recording(recording, tmp_path / "recordings" / "epoch_3.npz"))
    assert (back.epoch, back.split, back.dt, back.input, back.readout) == (3, "val", 0.5, None, None)
    np.testing.assert_array_equal(back.layers["layers.0"].out, out)
    np.testing.assert_array_equal(back.scores, recording.scores)
    assert not list((tmp_path / "recordings").glob("*.tmp"))
    assert plot_raster(back, tmp_path / "raster.png").read_bytes().startswith(b"\x89PNG")
    assert plot_traces(back, tmp_path / "traces.png").read_bytes().startswith(b"\x89PNG")
    silent = Recording(0, "val", back.sample_index, back.label, back.prediction, back.scores,
                       {"layers.0": LayerRecording(out, out, False)})
    assert plot_raster(silent, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_the_confusion_matrix_counts_true_against_predicted():
    targets = torch.tensor([0, 0, 1, 1, 1, 2, -1])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2, 2])
    assert confusion_matrix(predicted, targets, 3).tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert per_class_accuracy(confusion_matrix(predicted, targets, 4)) == pytest.approx([0.5, 2 / 3, 1.0, math.nan],
                                                                                        nan_ok=True)
    steps = torch.tensor([[0, 1, 1], [2, 2, 0]])  # per-step targets under a mask
    mask = torch.tensor([[True, True, False], [False, True, True]])
    assert confusion_matrix(torch.tensor([[0, 0, 1], [2, 2, 2]]), steps, 3, mask).tolist() == \
        [[1, 0, 1], [1, 0, 0], [0, 0, 1]]


def test_confusion_files_agree_with_the_per_class_metrics_at_the_best_epoch(tmp_path):
    plots = RunPlots()
    pipe = make_pipeline(TINY_CONFIG, FAST, epochs=3)
    result = pipe.fit(seed=0, run_dir=tmp_path, callbacks=[plots, ModelCheckpoint()])
    assert plots.problem is None
    document = json.loads((tmp_path / "confusion.json").read_text())
    best = int(result.summary["best_epoch"])
    assert (document["split"], document["epoch"], document["weights"]) == ("test", best, "best")
    row = result.history[best]
    assert document["n"] == sum(map(sum, document["matrix"])) == 359
    assert document["accuracy"] == pytest.approx(row["test_acc"])
    assert document["accuracy"] == pytest.approx(result.summary["test_acc_at_best_val"])
    for k, value in enumerate(document["per_class_accuracy"]):
        assert value == pytest.approx(row[f"test_acc/label_{k}"])
        assert value == pytest.approx(result.summary[f"test_acc/label_{k}_at_best_val"])
    assert (tmp_path / "plots" / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")


def test_plot_confusion_is_a_plain_function(tmp_path):
    matrix = [[5, 1], [0, 0]]
    path = plot_confusion(matrix, ["yes", "no"], tmp_path / "c.png", title="toy")
    assert path.read_bytes().startswith(b"\x89PNG")
    written = write_confusion(torch.tensor(matrix), ["yes", "no"], tmp_path / "c.json", split="x")
    document = json.loads(written.read_text())
    assert document["per_class_accuracy"] == [pytest.approx(5 / 6), None]
    assert document["accuracy"] == pytest.approx(5 / 6) and document["split"] == "x" and document["n"] == 6
