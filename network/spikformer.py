"""A small Spikformer (Zhou et al., "Spikformer: When Spiking Neural Network Meets Transformer",
ICLR 2023): a spiking patch-splitting stem, a relative position embedding, spiking self-attention
blocks and a linear head; sized for small images on a CPU (specs/encoders_losses.md).

All neurons are LIF with a decay of 0.5 per step and a hard reset to 0 (SpikingJelly's LIF with
tau = 2, detached reset, as in the paper): LIFKernel with ``tau_m = 1 / ln 2`` on a 1 ms step.
Activity is time-major: images ``[T, B, C, H, W]``, tokens ``[T, B, N, D]``.
"""
from __future__ import annotations

import math
from typing import Literal

from torch import Tensor, nn

from network.events import Activity
from network.kernels.lif import LIFKernel
from network.layers import Layer, LayerTrace
from network.network import Model, NetworkOutput
from network.readouts import ReadoutOutput
from network.stal import image_shape
from settings import Factory, PositiveInt
from settings.registries import MODELS

#: tau_m (ms, at dt = 1 ms) that decays the membrane by half per step
HALF_DECAY_TAU = 1.0 / math.log(2.0)
#: the attention's scale (the paper's 0.125 for 32 channels per head; no softmax on spikes)
ATTENTION_SCALE = 0.125


class SpikingSite(nn.Module):
    """LIF neurons over a whole activity ``[T, B, *shape]`` (one neuron per element)."""

    def __init__(self, shape: tuple[int, ...], v_th: float = 1.0):
        super().__init__()
        self.kernel = LIFKernel(math.prod(shape), tau_m=HALF_DECAY_TAU, v_th=v_th, reset="hard",
                                detach_reset=True, dt=1.0)

    def forward(self, current: Tensor) -> LayerTrace:
        T, B = current.shape[:2]
        out, state, membrane = self.kernel.trace(current.reshape(T, B, -1))
        return LayerTrace(current, out.reshape(current.shape), membrane.reshape(current.shape), state, True)


def per_frame(module: nn.Module, x: Tensor) -> Tensor:
    """``module`` on every frame of ``x [T, B, ...]`` at once (time merged into the batch)."""
    out = module(x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]))
    return out.reshape(x.shape[0], x.shape[1], *out.shape[1:])


class TokenProjection(nn.Module):
    """Linear -> BatchNorm over the channels -> LIF, on tokens ``[T, B, N, D_in]``."""

    def __init__(self, tokens: int, d_in: int, d_out: int, v_th: float = 1.0):
        super().__init__()
        self.linear, self.norm = nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out)
        self.site = SpikingSite((tokens, d_out), v_th)

    def forward(self, x: Tensor) -> LayerTrace:
        h = self.linear(x)
        h = self.norm(h.reshape(-1, h.shape[-1])).reshape(h.shape)
        return self.site(h)


class ConvSite(nn.Module):
    """Conv 3x3 -> BatchNorm2d -> LIF on images ``[T, B, C, H, W]``, then optionally a 3x3 max-pool of stride 2."""

    def __init__(self, c_in: int, c_out: int, size: tuple[int, int], pool: bool):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.site = SpikingSite((c_out, *size))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1) if pool else None
        self.out_size = tuple((n - 1) // 2 + 1 for n in size) if pool else size

    def forward(self, x: Tensor) -> tuple[Tensor, LayerTrace]:
        trace = self.site(per_frame(self.conv, x))
        return (trace.out if self.pool is None else per_frame(self.pool, trace.out)), trace


class SpikingPatchSplitting(nn.Module):
    """The default stem: conv sites to ``embed_dim / 2`` and ``embed_dim`` channels, the first
    ``pools`` of them max-pooled: image ``[T, B, C, H, W]`` -> patch spikes ``[T, B, D, H', W']``."""

    def __init__(self, image: tuple[int, int, int], embed_dim: int, pools: int):
        super().__init__()
        C, H, W = image
        first = ConvSite(C, embed_dim // 2, (H, W), pools >= 1)
        second = ConvSite(embed_dim // 2, embed_dim, first.out_size, pools >= 2)
        self.sites = nn.ModuleList([first, second])
        self.out_features = (embed_dim, *second.out_size)

    def forward(self, x: Tensor) -> tuple[Tensor, list[LayerTrace]]:
        traces = []
        for site in self.sites:
            x, trace = site(x)
            traces.append(trace)
        return x, traces


class SpikingSelfAttention(nn.Module):
    """``Q, K, V`` = spikes of linear projections; ``A = Q K^T V * scale`` per head (no softmax:
    products of spikes are non-negative), LIF at threshold 0.5, then a projection site."""

    def __init__(self, tokens: int, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (TokenProjection(tokens, dim, dim) for _ in range(3))
        self.attention = SpikingSite((tokens, dim), v_th=0.5)
        self.project = TokenProjection(tokens, dim, dim)

    def split(self, x: Tensor) -> Tensor:
        T, B, N, D = x.shape
        return x.reshape(T, B, N, self.heads, D // self.heads).transpose(2, 3)  # [T, B, heads, N, D/heads]

    def forward(self, x: Tensor) -> tuple[Tensor, list[LayerTrace]]:
        q, k, v = self.q(x), self.k(x), self.v(x)
        weights = self.split(q.out) @ self.split(k.out).transpose(-2, -1)
        mixed = (weights @ self.split(v.out)) * ATTENTION_SCALE
        attention = self.attention(mixed.transpose(2, 3).reshape(x.shape))
        out = self.project(attention.out)
        return out.out, [q, k, v, attention, out]


class SpikformerBlock(nn.Module):
    """``x + SSA(x)``, then ``+ MLP`` (two token projections, ``mlp_ratio * D`` hidden)."""

    def __init__(self, tokens: int, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.attention = SpikingSelfAttention(tokens, dim, heads)
        self.hidden = TokenProjection(tokens, dim, mlp_ratio * dim)
        self.output = TokenProjection(tokens, mlp_ratio * dim, dim)

    def forward(self, x: Tensor) -> tuple[Tensor, list[LayerTrace]]:
        attended, traces = self.attention(x)
        x = x + attended
        hidden = self.hidden(x)
        out = self.output(hidden.out)
        return x + out.out, [*traces, hidden, out]


@MODELS.register
class Spikformer(Model):
    """A small Spikformer: a stem turns the image into patch spikes ``[T, B, D, H', W']``, a
    relative position embedding (conv -> BN -> LIF) is added, the ``H' W'`` patches become tokens
    for ``depth`` blocks of spiking self-attention and MLP; the head averages the tokens, maps
    them to the classes and averages over the steps (the scores). An image fed as one step
    (no encoder) is repeated ``steps`` times; flat features are read as a one-row image.

    Args:
        out_features: number of classes.
        embed_dim: channels per token (D), a multiple of ``heads``.
        heads: attention heads.
        depth: attention blocks.
        mlp_ratio: hidden size of the MLP, in multiples of D.
        steps: time steps for a single-step input (1: the stem makes its own, as ConvSTALPS's psi).
        pools: the default stem's max-pools (each halves the image).
        stem: the patch-splitting stem: ``null`` the spiking patch splitting convolutions
            (``embed_dim / 2`` then ``embed_dim`` channels), or a layer giving ``embed_dim`` channels
            (``{type: ConvSTALPS, embed_dim: 128}``).
    """

    takes_images = True  # inputs [T, B, C, H, W] (data layout: image)

    def __init__(self, input_size: int | tuple[int, ...], out_features: PositiveInt, embed_dim: PositiveInt = 128,
                 heads: PositiveInt = 4, depth: PositiveInt = 2, mlp_ratio: PositiveInt = 4, steps: PositiveInt = 4,
                 pools: Literal[0, 1, 2] = 1, stem: Factory[Layer] | None = None):
        super().__init__()
        self.input_size, self.out_features, self.steps = input_size, out_features, steps
        self.image = image_shape(input_size)
        if stem is None:
            self.stem: nn.Module = SpikingPatchSplitting(self.image, embed_dim, pools)
        else:
            self.stem = stem(in_features=self.image) if isinstance(stem, Factory) else stem
        if not (isinstance(self.stem.out_features, tuple) and len(self.stem.out_features) == 3):
            raise ValueError(f"the stem must give patch images [D, H', W'] (a convolutional layer such as ConvSTALPS), "
                             f"got out_features {self.stem.out_features}")
        D, H, W = self.stem.out_features
        if D != embed_dim:
            raise ValueError(f"the stem gives {D} channels, but embed_dim is {embed_dim}; give both the same")
        tokens = H * W
        self.position = ConvSite(D, D, (H, W), pool=False)
        self.blocks = nn.ModuleList(SpikformerBlock(tokens, D, heads, mlp_ratio) for _ in range(depth))
        self.head = nn.Linear(D, out_features)

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        problems = []
        if params["embed_dim"] % params["heads"]:
            problems.append(("embed_dim", f"must be a multiple of heads ({params['heads']}), got {params['embed_dim']}"))
        if params["stem"] is None and params["embed_dim"] % 2:
            problems.append(("embed_dim", f"must be even (the stem's first convolution has embed_dim / 2 channels), "
                                          f"got {params['embed_dim']}"))
        stem = params["stem"]
        if isinstance(stem, dict) and stem.get("embed_dim", params["embed_dim"]) != params["embed_dim"]:
            problems.append(("stem.embed_dim", f"must equal the Spikformer's embed_dim ({params['embed_dim']}), "
                                               f"got {stem['embed_dim']}"))
        return problems

    def forward(self, x: Activity) -> NetworkOutput:
        """``x [T, B, C, H, W]`` (or ``[T, B, F]``) -> scores ``[B, out_features]``; the traces: the
        stem's, the position embedding's and every LIF site of the blocks."""
        T, B = x.shape[:2]
        x = x.reshape(T, B, *self.image)
        if T == 1 and self.steps > 1:
            x = x.expand(self.steps, *x.shape[1:])
        if isinstance(self.stem, SpikingPatchSplitting):
            patches, traces = self.stem(x)
        else:
            stem = self.stem(x)
            patches, traces = stem.out, [stem]
        _, position = self.position(patches)
        traces.append(position)
        tokens = (patches + position.out).flatten(3).transpose(2, 3)  # [T, B, N, D]
        for block in self.blocks:
            tokens, block_traces = block(tokens)
            traces += block_traces
        scores = self.head(tokens.mean(dim=2)).mean(dim=0)
        return NetworkOutput(scores, traces, ReadoutOutput(scores, None, None))

    def extra_repr(self) -> str:
        return f"image={list(self.image)}, steps={self.steps}"
