"""Spikformer: the LIF sites (hand-computed), spiking self-attention against an explicit per-head
computation, shapes through the SPS and ConvSTAL-PS stems, the repeat of a single-step input,
config errors, determinism, gradients, frozen BatchNorm in eval, and a short training run."""
from __future__ import annotations

import pytest
import torch

from network.spikformer import ATTENTION_SCALE, SpikingSelfAttention, SpikingSite, Spikformer
from network.stal import ConvSTALPS
from settings.errors import ConfigError
from settings.registries import MODELS
from settings.schema import build, validate
from tools.seeding import seed_everything


def test_site_is_lif_halving_with_hard_reset():
    """``U_t = (U_{t-1} + x_t) / 2``, reset to 0 after a spike: x = 1.5 gives 0.75, 1.125 (spike),
    0.75, 1.125 (spike); x = 0.9 never reaches 1 (U -> 0.9)."""
    site = SpikingSite((2,)).double()
    x = torch.tensor([1.5, 0.9], dtype=torch.float64).expand(4, 1, 2)
    trace = site(x)
    assert torch.allclose(trace.membrane[:, 0, 0], torch.tensor([0.75, 1.125, 0.75, 1.125], dtype=torch.float64))
    assert trace.out[:, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert trace.out[:, 0, 1].tolist() == [0.0] * 4
    image = site(torch.full((4, 1, 2, 1), 1.5, dtype=torch.float64).reshape(4, 1, 2))
    assert image.out.shape == (4, 1, 2)


def test_attention_is_q_k_transpose_v_per_head_without_softmax():
    torch.manual_seed(0)
    attention = SpikingSelfAttention(tokens=5, dim=8, heads=2).double()
    x = (torch.rand(3, 2, 5, 8) < 0.5).double()
    out, traces = attention(x)
    q, k, v, mixed, _ = traces
    assert out.shape == x.shape and len(traces) == 5
    heads = []
    for h in range(2):
        part = slice(4 * h, 4 * h + 4)
        heads.append(q.out[..., part] @ k.out[..., part].transpose(-2, -1) @ v.out[..., part] * ATTENTION_SCALE)
    assert torch.allclose(mixed.input, torch.cat(heads, dim=-1))
    assert attention.attention.kernel.v_th == 0.5


def test_shapes_through_the_default_stem():
    torch.manual_seed(0)
    model = Spikformer((1, 8, 8), out_features=10, embed_dim=16, heads=4, depth=2, steps=4, pools=1)
    out = model(torch.rand(1, 3, 1, 8, 8))
    assert out.scores.shape == (3, 10)
    assert len(out.traces) == 2 + 1 + 7 * 2  # two stem sites, the position embedding, 7 sites per block
    assert out.traces[0].out.shape == (4, 3, 8, 8, 8)  # the single step repeated 4 times, before the pool
    assert out.traces[1].out.shape == (4, 3, 16, 4, 4)
    assert out.traces[3].out.shape == (4, 3, 16, 16)  # tokens: 16 patches of 16 channels
    assert all(t.spiking and set(t.out.unique().tolist()) <= {0.0, 1.0} for t in out.traces)


def test_a_sequence_input_is_used_as_it_comes_and_flat_features_are_one_row():
    torch.manual_seed(0)
    model = Spikformer(6, out_features=3, embed_dim=8, depth=1, steps=4)
    out = model((torch.rand(7, 2, 6) < 0.5).float())
    assert out.scores.shape == (2, 3) and out.traces[0].out.shape == (7, 2, 4, 1, 6)
    assert out.traces[1].out.shape == (7, 2, 8, 1, 3)  # pooled: a 1 x 6 row becomes 1 x 3


def test_convstal_ps_stem():
    torch.manual_seed(0)
    spec = {"type": "Spikformer", "out_features": 10, "embed_dim": 16, "depth": 1, "steps": 1,
            "stem": {"type": "ConvSTALPS", "embed_dim": 16, "pools": 2, "psi": 5}}
    model = build(validate(spec, MODELS, "model"), MODELS, input_size=(1, 8, 8))
    assert isinstance(model.stem, ConvSTALPS)
    out = model(torch.rand(1, 3, 1, 8, 8))
    assert out.scores.shape == (3, 10)
    assert out.traces[0].out.shape == (5, 3, 16, 2, 2)  # psi steps of 2x2 patches
    assert set(out.penalties()) == {"encoder.input", "encoder.match", "encoder.spikes", "encoder.psi"}


@pytest.mark.parametrize("change, message", [
    ({"embed_dim": 10, "heads": 4}, r"model\.embed_dim must be a multiple of heads \(4\), got 10"),
    ({"embed_dim": 9, "heads": 3}, r"model\.embed_dim must be even .* got 9"),
    ({"stem": {"type": "ConvSTALPS", "embed_dim": 64}}, r"model\.stem\.embed_dim must equal the Spikformer's "
                                                        r"embed_dim \(128\), got 64"),
])
def test_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        validate({"type": "Spikformer", "out_features": 10, **change}, MODELS, "model")


def test_deterministic_under_a_seed_and_gradients_reach_every_parameter():
    def run(seed: int):
        seed_everything(seed)
        model = Spikformer((1, 8, 8), out_features=4, embed_dim=8, heads=2, depth=1)
        return model, model(torch.rand(1, 4, 1, 8, 8))

    (model, out), (_, again) = run(0), run(0)
    assert torch.equal(out.scores, again.scores) and not torch.equal(out.scores, run(1)[1].scores)
    torch.nn.functional.cross_entropy(out.scores, torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_batchnorm_is_frozen_in_eval():
    torch.manual_seed(0)
    model = Spikformer((1, 8, 8), out_features=4, embed_dim=8, heads=2, depth=1)
    x = torch.rand(1, 6, 1, 8, 8)
    model.train()(x)
    model.eval()
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    with torch.no_grad():
        alone, together = model(x[:, :1]).scores, model(x).scores[:1]
    assert torch.allclose(alone, together, atol=1e-6)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())


@pytest.mark.slow
def test_learns_digits_images():
    """A narrow Spikformer on Digits images (layout: image): 2 epochs far above chance (0.1)."""
    from testkit import make_pipeline

    config = """\
data: {type: Digits, val_fraction: 0.1, test_fraction: 0.2, layout: image}
model: {type: Spikformer, out_features: 10, embed_dim: 32, heads: 4, depth: 1, steps: 2}
loss: CrossEntropyLoss
optimizer: {type: AdamW, lr: 0.003}
epochs: 2
batch_size: 32
train_metrics: running
"""
    result = make_pipeline(config).fit(seed=0)
    assert result.history[-1]["val_acc"] > 0.6


def test_a_stem_must_give_patch_images_of_embed_dim_channels():
    from network.stal import STAL

    with pytest.raises(ValueError, match=r"the stem must give patch images \[D, H', W'\] .* got out_features 64"):
        Spikformer((1, 8, 8), out_features=10, embed_dim=8, stem=STAL((1, 8, 8)))
    with pytest.raises(ValueError, match="the stem gives 16 channels, but embed_dim is 8"):
        Spikformer((1, 8, 8), out_features=10, embed_dim=8, stem=ConvSTALPS((1, 8, 8), embed_dim=16))
