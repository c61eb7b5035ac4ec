"""NIR interop: networks survive to_nir -> nir.write -> nir.read -> from_nir unchanged, the NIR
constants follow the documented forward-Euler map, and kernels without a NIR primitive are refused."""
from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import torch

import network  # noqa: F401  (registers the components)
from network.interop import NIRExportError, NIRImportError, from_nir, to_nir
from network.kernels.base import Kernel
from network.kernels.den import DENKernel
from network.kernels.stepped import LeakyKernel
from network.layers import Dense
from network.network import Network
from network.readouts import MaxMembrane, SpikeCount
from settings import create
from settings.registries import KERNELS, MODELS

T, B, IN = 60, 3, 6
TAU_M = {"type": "Normal", "mean": 8.0, "std": 2.0}  # drawn per neuron
TAU_SYN = {"type": "Normal", "mean": 4.0, "std": 1.0}
WEIGHTS = {"type": "Normal", "mean": 0.4, "std": 0.6}  # strong enough for the neurons to fire


def build(layers: list[dict], readout: dict | None = None, seed: int = 0) -> Network:
    """A Network from its YAML spec; a LeakyIntegrator readout that learns its tau gets one per
    class (drawn here: the readout's YAML tau is one number)."""
    torch.manual_seed(seed)
    readout = readout or {"type": "LeakyIntegrator", "out_features": 3, "tau": 12.0, "learn_tau": True,
                          "weight_init": WEIGHTS}
    net = create({"type": "Network", "layers": layers, "readout": readout}, MODELS, "model", input_size=IN)
    if readout.get("learn_tau"):
        with torch.no_grad():
            net.readout.kernel.tau.add_(4 * torch.rand(net.readout.out_features))
    return net


def dense(kernel: dict, out: int = 5, bias: bool = True) -> dict:
    return {"type": "Dense", "out_features": out, "kernel": kernel, "bias": bias, "weight_init": WEIGHTS}


LIF = {"type": "LIFKernel", "tau_m": TAU_M}
CUBA = {"type": "LIFKernel", "tau_m": TAU_M, "tau_syn": TAU_SYN}
NETWORKS = {
    "lif_li": lambda: build([dense(LIF)]),
    "lif_hard_li": lambda: build([dense({**LIF, "reset": "hard", "v_reset": -0.2, "v_th": 0.8}, bias=False)],
                                 readout={"type": "LeakyIntegrator", "out_features": 2, "tau": 9.0, "reduce": "max",
                                          "bias": True, "weight_init": WEIGHTS}),
    "cuba_li": lambda: build([dense(CUBA), dense({**CUBA, "reset": "hard"}, out=4, bias=False)]),
    "recurrent_lif_li": lambda: build([{"type": "Recurrent", "out_features": 5, "kernel": LIF,
                                        "weight_init": WEIGHTS}]),
    "recurrent_masked_learned": lambda: build([{"type": "Recurrent", "out_features": 5, "recurrent_mask": 0.5,
                                                "kernel": {**CUBA, "learn": ["tau_m"], "surrogate": "Triangle"},
                                                "weight_init": WEIGHTS}]),
    "leaky_kernels": lambda: build([dense({"type": "LeakyKernel", "tau": 6.0, "spike": True, "reset": True,
                                           "v_th": 1.5, "v_reset": 0.2}),
                                    dense({"type": "LeakyKernel", "tau": 4.0}, out=4)]),
    "readout_linear_decay": lambda: build([dense(LIF)], readout={
        "type": "LeakyIntegrator", "out_features": 3, "tau": {"type": "Normal", "mean": 8.0, "std": 1.5},
        "decay": "linear", "weight_init": WEIGHTS}),
    "readout_sigmoid": lambda: build([dense(LIF)], readout={
        "type": "LeakyIntegrator", "out_features": 3, "tau": {"type": "Normal", "mean": 10.0, "std": 2.0},
        "learn_tau": True, "parametrization": "sigmoid", "reduce": "last", "weight_init": WEIGHTS}),
    "spike_count": lambda: build([dense(LIF), dense(LIF, out=3)], readout={"type": "SpikeCount"}),
}


def spikes(seed: int = 1, dtype=torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, IN, generator=generator) < 0.4).to(dtype)


def round_trip(net: Network, tmp_path, **options) -> tuple[nir.NIRGraph, Network]:
    path = tmp_path / "model.nir"
    nir.write(path, to_nir(net, **options))
    graph = nir.read(path)
    return graph, from_nir(graph)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_a_network_comes_back_with_the_same_outputs_and_parameters(name, tmp_path):
    net = NETWORKS[name]()
    _, back = round_trip(net, tmp_path)
    x = spikes()
    with torch.no_grad():
        before, after = net(x), back(x)
    fired = sum(float(t.out.sum()) for t in before.traces if t.spiking)
    assert fired > 0  # the comparison is not between silent networks
    for a, b in zip(before.traces, after.traces, strict=True):
        assert torch.equal(a.out, b.out)
        assert torch.equal(a.membrane, b.membrane)
    assert torch.equal(before.scores, after.scores)
    if before.readout.trace is not None:
        assert torch.equal(before.readout.trace, after.readout.trace)
    assert type(back.readout) is type(net.readout)
    mine, theirs = net.state_dict(), back.state_dict()
    assert mine.keys() == theirs.keys()
    for key in mine:
        if key.endswith(".weight") and "layers" in key and hasattr(net.get_submodule(key[:-7]), "recurrent_weight"):
            layer, other = net.get_submodule(key[:-7]), back.get_submodule(key[:-7])
            assert torch.allclose(layer.input_weight, other.input_weight, rtol=0, atol=1e-6)
            assert torch.allclose(layer.recurrent_weight, other.recurrent_weight, rtol=0, atol=1e-6)  # masked
            continue
        assert mine[key].shape == theirs[key].shape, key
        assert torch.allclose(mine[key], theirs[key], rtol=1e-6, atol=1e-6), key
    assert [type(p).__name__ for p in net.parameters()] == [type(p).__name__ for p in back.parameters()]
    for k, layer in enumerate(net.layers):
        kernel, other = layer.kernel, back.layers[k].kernel
        assert type(kernel) is type(other)
        for name in ("reset", "v_th", "v_reset", "spiking", "dt"):
            assert getattr(kernel, name, None) == getattr(other, name, None), (k, name)
        if isinstance(kernel, LeakyKernel):  # tau is a number there, not a tensor
            assert kernel.tau == other.tau
        assert type(getattr(kernel, "surrogate", None)) is type(getattr(other, "surrogate", None))
    for name in ("reduce", "decay", "parametrization", "dt"):
        assert getattr(back.readout, name, None) == getattr(net.readout, name, None), name


def test_the_nir_constants_follow_the_forward_euler_map():
    net = NETWORKS["cuba_li"]()
    graph = to_nir(net)
    dt = 1.0
    assert isinstance(graph.nodes["layer0_weight"], nir.Affine) and isinstance(graph.nodes["layer1_weight"], nir.Linear)
    np.testing.assert_array_equal(graph.nodes["layer0_weight"].weight, net.layers[0].weight.detach().numpy())
    np.testing.assert_array_equal(graph.nodes["layer0_weight"].bias, net.layers[0].bias.detach().numpy())
    cuba, kernel = graph.nodes["layer0"], net.layers[0].kernel
    assert isinstance(cuba, nir.CubaLIF)
    alpha = np.exp(-dt / kernel.tau_m.double().numpy())
    beta = np.exp(-dt / kernel.tau_syn.double().numpy())
    np.testing.assert_allclose(cuba.tau_mem, dt / (1 - alpha), rtol=1e-12)
    np.testing.assert_allclose(cuba.tau_syn, dt / (1 - beta), rtol=1e-12)
    np.testing.assert_allclose(cuba.r, 1 / (1 - alpha), rtol=1e-12)
    np.testing.assert_allclose(cuba.w_in, 1 / (1 - beta), rtol=1e-12)
    assert np.all(cuba.v_leak == 0) and np.all(cuba.v_threshold == kernel.v_th) and np.all(cuba.v_reset == 0)
    assert len(set(cuba.tau_mem.tolist())) == kernel.size  # one time constant per neuron
    li = graph.nodes["readout"]
    tau = net.readout.kernel.tau.detach().double().numpy()
    np.testing.assert_allclose(li.tau, dt / -np.expm1(-dt / tau), rtol=1e-12)
    assert np.all(li.r == 1) and np.all(li.v_leak == 0)
    assert abs(float(li.tau[0]) - float(tau[0]) - dt / 2) < dt ** 2 / float(tau[0])  # tau_m + dt/2 + O(dt^2/tau)
    assert "layers[0].kernel" in graph.metadata["spikelab"]["lossy"]  # soft reset
    assert "layers[1]" not in graph.metadata["spikelab"]["lossy"]  # hard reset: exact


def test_time_constants_are_written_in_the_unit_of_dt(tmp_path):
    net = NETWORKS["lif_li"]()
    in_ms, in_s = to_nir(net), to_nir(net, dt=1e-3)
    np.testing.assert_allclose(in_s.nodes["layer0"].tau, in_ms.nodes["layer0"].tau * 1e-3, rtol=1e-12)
    nir.write(tmp_path / "s.nir", in_s)
    back = from_nir(nir.read(tmp_path / "s.nir"))
    assert torch.allclose(back.layers[0].kernel.tau_m, net.layers[0].kernel.tau_m, rtol=1e-6, atol=0)


# --- an independent forward-Euler simulation of the NIR graph ---------------------------------
def euler(graph: nir.NIRGraph, x: np.ndarray, dt: float) -> list[np.ndarray]:
    """Step the exported chain as a forward-Euler NIR simulator would (NIR's reset to v_reset, the
    cycle of a recurrent subgraph fed with the previous step's spikes); the output of every
    neuron node, ``[T, B, N]`` each."""
    order = []
    node = "input"
    while node != "output":
        node = next(b for a, b in graph.edges if a == node)
        order.append(node)
    state: dict[str, dict] = {}
    records: dict[str, list] = {}

    def neuron(name, n, current):
        s = state.setdefault(name, {"v": np.zeros_like(current), "i": np.zeros_like(current)})
        if isinstance(n, nir.LI):
            s["v"] = s["v"] + dt / n.tau * (n.v_leak - s["v"] + n.r * current)
            return s["v"]
        if isinstance(n, nir.CubaLIF):
            s["i"] = s["i"] + dt / n.tau_syn * (-s["i"] + n.w_in * current)
            v = s["v"] + dt / n.tau_mem * (n.v_leak - s["v"] + n.r * s["i"])
        else:
            v = s["v"] + dt / n.tau * (n.v_leak - s["v"] + n.r * current)
        z = (v > n.v_threshold).astype(v.dtype)
        s["v"] = np.where(z > 0, n.v_reset, v)
        return z

    def affine(n, value):
        out = value @ n.weight.T
        return out + n.bias if isinstance(n, nir.Affine) else out

    for t in range(x.shape[0]):
        value = x[t]
        for name in order[:-1]:
            n = graph.nodes[name]
            if isinstance(n, (nir.Linear, nir.Affine)):
                value = affine(n, value)
            elif isinstance(n, nir.NIRGraph):  # input -> weight_in -> neuron <-> weight_rec
                previous = state.get(name + "/z", np.zeros((x.shape[1], n.nodes["weight_rec"].weight.shape[0])))
                current = affine(n.nodes["weight_in"], value) + affine(n.nodes["weight_rec"], previous)
                value = neuron(name, n.nodes["neuron"], current)
                state[name + "/z"] = value
                records.setdefault(name, []).append(value)
            else:
                value = neuron(name, n, value)
                records.setdefault(name, []).append(value)
    return [np.stack(records[k]) for k in records]


@pytest.mark.parametrize("layers", [[dense({**LIF, "reset": "hard"})],
                                    [dense({**CUBA, "reset": "hard", "v_reset": 0.1}), dense({**LIF, "reset": "hard"})],
                                    [{"type": "Recurrent", "out_features": 5, "weight_init": WEIGHTS,
                                      "kernel": {**CUBA, "reset": "hard"}}],
                                    [dense({"type": "LeakyKernel", "tau": 5.0, "spike": True, "reset": True}),
                                     dense({"type": "LeakyKernel", "tau": 3.0}, out=4)]],
                         ids=["lif", "cuba_lif", "recurrent_cuba", "leaky_kernels"])
def test_a_forward_euler_simulation_of_the_graph_steps_like_spikelab(layers):
    """The docstring's claim: Euler with step dt reproduces the Spikelab step (hard reset, float64)."""
    net = build(layers).double()
    x = spikes(dtype=torch.float64)
    with torch.no_grad():
        out = net(x)
    simulated = euler(to_nir(net), x.numpy(), dt=1.0)
    expected = [t.out.numpy() for t in out.traces] + [out.readout.trace.numpy()]
    assert len(simulated) == len(expected)
    assert expected[0].sum() > 0
    for mine, theirs in zip(expected, simulated):
        np.testing.assert_allclose(theirs, mine, rtol=0, atol=1e-9)


@pytest.mark.parametrize("options", [{"decay": "linear"}, {"parametrization": "sigmoid"}], ids=["linear", "sigmoid"])
def test_a_forward_euler_simulation_follows_every_leaky_integrator_readout(options):
    net = build([dense({**LIF, "reset": "hard"})], readout={"type": "LeakyIntegrator", "out_features": 3, "tau": 7.0,
                                                             "weight_init": WEIGHTS, **options}).double()
    x = spikes(dtype=torch.float64)
    with torch.no_grad():
        out = net(x)
    simulated = euler(to_nir(net), x.numpy(), dt=1.0)
    np.testing.assert_allclose(simulated[-1], out.readout.trace.numpy(), rtol=0, atol=1e-9)


def test_a_graph_from_another_tool_folds_r_and_v_leak_into_the_weights():
    """A flat recurrent graph (the cycle at the top level, as nirviz draws it), r != 1, v_leak != 0,
    no Spikelab metadata: the imported network equals an Euler simulation of it."""
    rng = np.random.default_rng(3)
    n, classes, dt = 4, 2, 0.5
    lif = nir.LIF(tau=rng.uniform(3, 9, n), r=rng.uniform(0.5, 2, n), v_leak=rng.uniform(-0.1, 0.1, n),
                  v_threshold=np.full(n, 0.5), v_reset=np.full(n, -0.1))
    li = nir.LI(tau=rng.uniform(4, 8, classes), r=rng.uniform(0.5, 2, classes), v_leak=np.zeros(classes))
    nodes = {"input": nir.Input(np.array([IN])), "w": nir.Linear(weight=rng.normal(0.5, 0.5, (n, IN))), "lif": lif,
             "w_rec": nir.Linear(weight=rng.normal(0, 0.5, (n, n))),
             "w_out": nir.Linear(weight=rng.normal(0, 1, (classes, n))),
             "li": li, "output": nir.Output(np.array([classes]))}
    edges = [("input", "w"), ("w", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "w_out"), ("w_out", "li"),
             ("li", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    with pytest.raises(NIRImportError, match="does not say its time step"):
        from_nir(graph)
    net = from_nir(graph, dt=dt).double()
    assert net.layers[0].bias is not None and net.layers[0].kernel.reset == "hard"
    x = spikes(dtype=torch.float64)
    with torch.no_grad():
        out = net(x)
    v, z_prev, o = np.zeros((B, n)), np.zeros((B, n)), np.zeros((B, classes))
    for t in range(T):
        current = x[t].numpy() @ nodes["w"].weight.T + z_prev @ nodes["w_rec"].weight.T
        v = v + dt / lif.tau * (lif.v_leak - v + lif.r * current)
        z_prev = (v > 0.5).astype(float)
        v = np.where(z_prev > 0, -0.1, v)
        o = o + dt / li.tau * (-o + li.r * (z_prev @ nodes["w_out"].weight.T))
        np.testing.assert_array_equal(out.traces[0].out[t].numpy(), z_prev)
        np.testing.assert_allclose(out.readout.trace[t].numpy(), o, rtol=0, atol=1e-6)  # float32 taus
    assert out.traces[0].out.sum() > 0


# --- what is refused -------------------------------------------------------------------------
class ALIFKernel(Kernel):
    """A stand-in for a kernel without a NIR primitive."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size


@pytest.mark.parametrize("kernel, named", [(DENKernel(4), "DENKernel"), (ALIFKernel(4), "ALIFKernel")])
def test_a_kernel_without_a_nir_primitive_is_one_clear_line(kernel, named):
    net = Network(IN, [Dense(IN, 4, kernel)], MaxMembrane(4))
    with pytest.raises(NIRExportError) as caught:
        to_nir(net)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("model.layers[0].kernel: ")
    assert f"NIR has no primitive for {named}" in message


@pytest.mark.parametrize("name", [n for n in KERNELS.names() if n not in ("LIFKernel", "LIKernel", "LeakyKernel")])
def test_every_registered_kernel_but_lif_and_li_is_refused(name):
    """RF, BRF, BHRF, ALIF, the DEN kernels, ...: whatever joins the registry without a NIR map."""
    net = Network(IN, [Dense(IN, 4, create(name, KERNELS, "kernel", size=4))], SpikeCount(4))
    with pytest.raises(NIRExportError, match=rf"^model\.layers\[0\]\.kernel: NIR has no primitive for {name} "):
        to_nir(net)


def test_a_leaky_kernel_that_fires_without_a_reset_is_refused():
    with pytest.raises(NIRExportError, match="NIR has no primitive for LeakyKernel .*always resets"):
        to_nir(build([dense({"type": "LeakyKernel", "spike": True})]))


def test_a_readout_without_a_nir_primitive_is_refused():
    with pytest.raises(NIRExportError, match="NIR has no primitive for MaxMembrane"):
        to_nir(build([dense(LIF)], readout={"type": "MaxMembrane"}))


def test_strict_refuses_a_soft_reset():
    with pytest.raises(NIRExportError, match=r"strict: .*layers\[0\].*soft"):
        to_nir(NETWORKS["lif_li"](), strict=True)
    assert to_nir(NETWORKS["lif_hard_li"](), strict=True).metadata["spikelab"]["lossy"] == ""


def test_a_time_constant_under_dt_cannot_be_imported():
    graph = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2, 3))), nir.LIF(
        tau=np.array([0.5, 2.0]), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)))
    with pytest.raises(NIRImportError, match=r"tau must be > dt = 1"):
        from_nir(graph, dt=1.0)
    tau_m = float(from_nir(graph, dt=0.25).layers[0].kernel.tau_m[1])
    assert math.isclose(tau_m, 0.25 / -math.log(1 - 0.125), rel_tol=1e-6)
