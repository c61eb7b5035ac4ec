"""Learned spike encoders with adaptive thresholds: STAL, ConvSTAL and ConvSTAL-PS
(Hens et al., "Spike Threshold Adaptive Learning", arXiv 2407.08362; ConvSTAL and ConvSTAL-PS
from the Radboud thesis extending it; specs/encoders_losses.md).

Each encoder is a layer: features (or images) in, time-major spikes out. Two blocks compute
``h >= 0`` from the input; ``h`` is repeated ``psi`` times (psi = spikes per step) and compared
with a learnable threshold per element and step, ``theta [psi, *out_shape]``:
``s = sigmoid(alpha (h - theta))``. Training passes the soft ``s`` on; in eval mode the spikes
are binarised at 0.5 (``h > theta``), so metrics count real spikes. Thresholds start U(0.4, 0.6)
and are kept in ``[0.001, 1]`` (projected back at every forward).

Shapes: the input ``x [T, B, *in_shape]`` (an image data set with ``layout: image`` gives
``[1, B, C, H, W]``; without an encoder T = 1) is read as ``T * B`` frames; each frame becomes
``psi`` steps, so the output is ``[T * psi, B, *out_shape]`` (frame t at steps
``t * psi .. t * psi + psi - 1``).

What the encoder loss sees (``LayerTrace.penalty``, summed by name into
``NetworkOutput.penalties()`` and handed to losses as ``LossInput.penalties``):

- ``encoder.input``: ``X [N, *in_shape]``, the ``N = T * B`` input frames;
- ``encoder.match``: ``Z [K, N, *in_shape]``, each block's match projection of its activity back
  to the input's shape (a linear map, or a 1x1 convolution upsampled to the input's size, then
  a sigmoid, so ``Z`` lies in (0, 1) like the normalised input);
- ``encoder.spikes``: ``[N]`` spikes per frame, summed over the psi steps and every unit (soft
  and differentiable in training, binary in eval);
- ``encoder.psi``: psi as a 0-d tensor (the count term compares ``spikes`` with ``psi * sum X``).

``X`` and ``Z`` of a convolutional encoder keep their channel axis (axis 1 of ``X``, 2 of ``Z``),
which the multi-channel encoder loss averages over.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from network.layers import Layer, LayerTrace
from settings import PositiveFloat, PositiveInt, UnitInterval
from settings.registries import LAYERS

THRESHOLD_INIT = (0.4, 0.6)  # thresholds start uniform in this range
THRESHOLD_RANGE = (0.001, 1.0)  # and are kept in this one

Shape = tuple[int, ...]


def image_shape(in_features: int | Shape) -> tuple[int, int, int]:
    """``(C, H, W)`` of an image input; flat features ``F`` are read as a one-row image ``(1, 1, F)``."""
    if isinstance(in_features, int):
        return (1, 1, in_features)
    if len(in_features) != 3:
        raise ValueError(f"an image input must be [C, H, W], got {list(in_features)}")
    return tuple(int(n) for n in in_features)  # type: ignore[return-value]


def frames(x: Tensor, shape: Shape) -> Tensor:
    """``x [T, B, ...]`` as ``[T * B, *shape]``."""
    return x.reshape(x.shape[0] * x.shape[1], *shape)


def frames_to_steps(s: Tensor, T: int) -> Tensor:
    """``[psi, T * B, *shape]`` -> time-major ``[T * psi, B, *shape]`` (frame by frame)."""
    psi, n = s.shape[:2]
    s = s.reshape(psi, T, n // T, *s.shape[2:]).transpose(0, 1)
    return s.reshape(T * psi, n // T, *s.shape[3:])


class AdaptiveThreshold(nn.Module):
    """``psi`` spike steps from one activity ``h [N, *shape]``: ``sigmoid(alpha (h - theta_k))``
    per step k in training, ``h > theta_k`` in eval, with ``theta [psi, *shape]`` learnable.

    Returns the spikes and ``h - theta``, both ``[psi, N, *shape]``.
    """

    def __init__(self, shape: Shape, psi: int, alpha: float):
        super().__init__()
        self.psi, self.alpha = psi, alpha
        self.theta = nn.Parameter(torch.empty(psi, *shape).uniform_(*THRESHOLD_INIT))

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():  # projected gradient descent: the threshold stays in its range
            self.theta.clamp_(*THRESHOLD_RANGE)
        distance = h.unsqueeze(0) - self.theta.unsqueeze(1)
        if self.training:
            return torch.sigmoid(self.alpha * distance), distance
        return (distance > 0).to(h.dtype), distance


def _trace(x: Tensor, spikes: Tensor, distance: Tensor, inputs: Tensor, match: list[Tensor], T: int,
           psi: int) -> LayerTrace:
    """The layer's trace: spikes and ``h - theta`` as time-major steps, the encoder-loss terms as penalties."""
    penalty = {"encoder.input": inputs, "encoder.match": torch.stack(match),
               "encoder.spikes": spikes.sum(dim=0).flatten(1).sum(dim=1),
               "encoder.psi": torch.tensor(float(psi), dtype=spikes.dtype, device=spikes.device)}
    return LayerTrace(x, frames_to_steps(spikes, T), frames_to_steps(distance, T), None, True, penalty)


@LAYERS.register
class STAL(Layer):
    """Spike Threshold Adaptive Learning: two blocks Linear -> BatchNorm -> ReLU -> Dropout, the
    second block's output repeated ``psi`` times and thresholded by learnable thresholds
    ``[psi, out_features]``; each block also gives a match projection back to the input size for
    the encoder loss (network/stal.py describes the interface). Image inputs are flattened.

    Args:
        out_features: encoded units per step (default: as many as inputs).
        hidden: units of the first block (default: as many as inputs).
        psi: spike steps per input frame.
        alpha: steepness of the sigmoid spike.
        dropout: dropout probability of both blocks.
    """

    spiking = True

    def __init__(self, in_features: int | Shape, out_features: PositiveInt | None = None,
                 hidden: PositiveInt | None = None, psi: PositiveInt = 5, alpha: PositiveFloat = 25.0,
                 dropout: UnitInterval = 0.1):
        super().__init__()
        self.in_features = in_features
        n_in = in_features if isinstance(in_features, int) else math.prod(in_features)
        self.n_in, self.psi = n_in, psi
        hidden, self.out_features = hidden or n_in, out_features or n_in
        self.block1 = nn.Sequential(nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout))
        self.block2 = nn.Sequential(nn.Linear(hidden, self.out_features), nn.BatchNorm1d(self.out_features),
                                    nn.ReLU(), nn.Dropout(dropout))
        self.match1, self.match2 = nn.Linear(hidden, n_in), nn.Linear(self.out_features, n_in)
        self.threshold = AdaptiveThreshold((self.out_features,), psi, alpha)

    def forward(self, x: Tensor, state: Any = None) -> LayerTrace:
        """``x [T, B, *in_shape]`` -> spikes ``[T * psi, B, out_features]``."""
        inputs = frames(x, (self.n_in,))
        h1 = self.block1(inputs)
        h2 = self.block2(h1)
        spikes, distance = self.threshold(h2)
        match = [torch.sigmoid(self.match1(h1)), torch.sigmoid(self.match2(h2))]
        return _trace(x, spikes, distance, inputs, match, x.shape[0], self.psi)


class ConvThresholdEncoder(Layer):
    """Two 3x3 convolution blocks (Conv -> BatchNorm2d -> ReLU -> Dropout, each optionally
    followed by a 3x3 max-pool of stride 2) and adaptive thresholds ``[psi, C_out, H', W']``;
    match projections by 1x1 convolutions back to the input's channels (upsampled to its size)."""

    spiking = True

    def __init__(self, in_features: int | Shape, channels: tuple[int, int], pools: int, psi: int, alpha: float,
                 dropout: float):
        super().__init__()
        C, H, W = self.image = image_shape(in_features)
        self.in_features, self.psi = in_features, psi
        self.blocks = nn.ModuleList()
        size, c_in = (H, W), C
        for index, c_out in enumerate(channels):
            layers = [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.Dropout(dropout)]
            if index < pools:
                layers.append(nn.MaxPool2d(3, stride=2, padding=1))
                size = tuple((n - 1) // 2 + 1 for n in size)
            self.blocks.append(nn.Sequential(*layers))
            c_in = c_out
        self.match = nn.ModuleList(nn.Conv2d(c, C, 1) for c in channels)
        self.out_features = (channels[-1], *size)
        self.threshold = AdaptiveThreshold(self.out_features, psi, alpha)

    def forward(self, x: Tensor, state: Any = None) -> LayerTrace:
        """``x [T, B, C, H, W]`` (or ``[T, B, F]``, a one-row image) -> spikes ``[T * psi, B, *out_features]``."""
        inputs = frames(x, self.image)
        h, match = inputs, []
        for block, project in zip(self.blocks, self.match):
            h = block(h)
            z = project(h)
            if z.shape[-2:] != inputs.shape[-2:]:
                z = nn.functional.interpolate(z, size=inputs.shape[-2:], mode="nearest")
            match.append(torch.sigmoid(z))
        spikes, distance = self.threshold(h)
        return _trace(x, spikes, distance, inputs, match, x.shape[0], self.psi)


@LAYERS.register
class ConvSTAL(ConvThresholdEncoder):
    """STAL for images: two 3x3 convolution blocks (Conv -> BatchNorm2d -> ReLU -> Dropout, same
    size) and a threshold tensor ``[psi, C_out, H, W]``; match projections are 1x1 convolutions
    back to the input's channels. Flat features are read as a one-row image ``[1, 1, F]``.

    Args:
        channels: channels of the first block.
        out_channels: channels of the encoded spikes (default: the input's channels).
        psi: spike steps per input frame.
        alpha: steepness of the sigmoid spike.
        dropout: dropout probability of both blocks.
    """

    def __init__(self, in_features: int | Shape, channels: PositiveInt = 16, out_channels: PositiveInt | None = None,
                 psi: PositiveInt = 5, alpha: PositiveFloat = 25.0, dropout: UnitInterval = 0.1):
        super().__init__(in_features, (channels, out_channels or image_shape(in_features)[0]), 0, psi, alpha,
                         dropout)


@LAYERS.register
class ConvSTALPS(ConvThresholdEncoder):
    """ConvSTAL as a patch-splitting stem (ConvSTAL-PS, for a Spikformer): 3x3 convolution blocks
    to ``embed_dim / 2`` and ``embed_dim`` channels, the first ``pools`` of them followed by a 3x3
    max-pool of stride 2, and thresholds ``[psi, embed_dim, H', W']``: spikes of ``embed_dim``
    channels per patch. The match projections are upsampled (nearest) to the input's size.

    Args:
        embed_dim: channels of the output (the transformer's embedding size); even.
        pools: how many of the two blocks halve the image (0, 1 or 2; the first ones).
        psi: spike steps per input frame.
        alpha: steepness of the sigmoid spike.
        dropout: dropout probability of both blocks.
    """

    def __init__(self, in_features: int | Shape, embed_dim: PositiveInt = 128, pools: Literal[0, 1, 2] = 1,
                 psi: PositiveInt = 5, alpha: PositiveFloat = 25.0, dropout: UnitInterval = 0.1):
        super().__init__(in_features, (embed_dim // 2, embed_dim), pools, psi, alpha, dropout)

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        if params["embed_dim"] % 2:
            return [("embed_dim", f"must be even (the first block has embed_dim / 2 channels), got {params['embed_dim']}")]
        return []
