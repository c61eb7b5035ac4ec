"""``from_nir``: a NIR graph as a Spikelab ``Network`` (docs/nir.md; the parameter map:
``network.interop.nir_params``).

The graph is read as a chain of stages, each a weight node (``nir.Linear`` or ``nir.Affine``) into
a neuron node (``nir.LIF``, ``nir.CubaLIF``, ``nir.LI``), optionally with a weight node that feeds
the neuron's output back into it (a ``Recurrent`` layer). Subgraphs are inlined first, so a
recurrent layer may be written as one subgraph (what ``to_nir`` writes), as a subgraph holding
only the neuron and its recurrent weights (the input weights outside), or flat in the graph. The
last stage is a ``LeakyIntegrator`` readout when it is a non-recurrent LI; a graph that ends in
spikes gets a ``SpikeCount`` readout.

NIR constants Spikelab has no place for are folded into the weights: ``r`` scales a neuron's row
of incoming weights (and bias), ``v_leak`` becomes a bias (exact for LIF and LI; a CubaLIF with
``v_leak != 0`` is refused). Thresholds and resets must be the same for all neurons of a node.
What ``to_nir`` kept under ``metadata["spikelab"]`` (reset mode, the kernel's dt, learned
constants, surrogate, reduce) is restored; a graph from another tool gets a hard reset to its
``v_reset`` (NIR's semantics) and the defaults.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
import torch
from torch import nn

from network.init import Constant
from network.interop.nir_params import NIRImportError, spikelab_tau, uniform
from network.kernels.base import Kernel
from network.kernels.lif import LIFKernel, LIKernel
from network.kernels.stepped import LeakyKernel
from network.layers import Dense, Layer
from network.network import Network
from network.readouts import LeakyIntegrator, Readout, SpikeCount
from network.recurrent import Recurrent
from settings import create
from settings.registries import SURROGATES

WEIGHTS = (nir.Linear, nir.Affine)
NEURONS = (nir.LIF, nir.CubaLIF, nir.LI)


@dataclass
class Stage:
    """One weight node into one neuron node, and the neuron's recurrent weights if it has them."""

    weight: nir.NIRNode
    neuron: nir.NIRNode
    name: str  # the neuron node's (flattened) name
    recurrent: nir.NIRNode | None = None


def from_nir(graph: nir.NIRGraph, dt: float | None = None) -> Network:
    """The ``Network`` that steps like ``graph`` under forward Euler with step ``dt``.

    Args:
        graph: a NIR graph (``nir.read(path)``) of the form described in the module docstring.
        dt: the simulation step, in the unit of the graph's time constants; default: the one
            ``to_nir`` wrote into ``graph.metadata["spikelab"]["dt"]`` (required otherwise).

    Raises NIRImportError (one line naming the node) for a graph with no Spikelab form.
    """
    meta = _spikelab(graph)
    step = dt if dt is not None else meta.get("dt")
    if step is None:
        raise NIRImportError("the graph does not say its time step (no metadata['spikelab']['dt']): pass dt, the "
                             "step its time constants are in units of")
    step = float(step)
    nodes, edges = _flatten(graph)
    input_size, stages = _stages(nodes, edges)
    ends_in_spikes = meta.get("readout") == "SpikeCount" or not isinstance(stages[-1].neuron, nir.LI) or \
        stages[-1].recurrent is not None
    layer_stages = stages if ends_in_spikes else stages[:-1]
    if not layer_stages:
        raise NIRImportError(f"{stages[0].name}: a graph of one LI node has no hidden layer; Spikelab's Network needs "
                             "at least one layer before its readout")
    layers: list[Layer] = []
    size = input_size
    for stage in layer_stages:
        layers.append(_layer(stage, size, step))
        size = layers[-1].out_features
    if ends_in_spikes:
        if not layers[-1].spiking:
            raise NIRImportError(f"{stages[-1].name}: the graph ends in a non-spiking recurrent node; a Spikelab "
                                 "readout takes spikes or is a non-recurrent LI node")
        readout: Readout = SpikeCount(size)
    else:
        readout = _readout(stages[-1], size, step)
    return Network(input_size, layers, readout)


# --- the graph -------------------------------------------------------------------------------
def _spikelab(node: nir.NIRNode) -> dict[str, Any]:
    meta = getattr(node, "metadata", None)
    found = meta.get("spikelab", {}) if isinstance(meta, dict) else {}
    return found if isinstance(found, dict) else {}


def _flatten(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]]]:
    """Nodes and edges with every subgraph inlined (names ``outer.inner``) and the subgraphs'
    own Input/Output nodes (and Identity nodes) bypassed; the top Input and Output stay."""
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, str] = {}  # subgraph name -> its inlined Input node
    exit_: dict[str, str] = {}  # subgraph name -> its inlined Output node
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = _flatten(node, f"{prefix}{name}.")
            inputs = [k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outputs = [k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(inputs) != 1 or len(outputs) != 1:
                raise NIRImportError(f"{prefix}{name}: a subgraph needs one Input and one Output node, got "
                                     f"{len(inputs)} and {len(outputs)}")
            entry[name], exit_[name] = f"{prefix}{name}.{inputs[0]}", f"{prefix}{name}.{outputs[0]}"
            nodes.update(inner_nodes)
            edges += inner_edges
        else:
            nodes[f"{prefix}{name}"] = node
    for a, b in graph.edges:
        edges.append((exit_.get(a, f"{prefix}{a}"), entry.get(b, f"{prefix}{b}")))
    passing = [k for k in list(nodes) if (k in entry.values() or k in exit_.values()
                                          or type(nodes[k]).__name__ == "Identity")]
    for k in passing:
        before = [a for a, b in edges if b == k]
        after = [b for a, b in edges if a == k]
        edges = [e for e in edges if k not in e] + [(a, b) for a in before for b in after]
        del nodes[k]
    return nodes, edges


def _stages(nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]]) -> tuple[int, list[Stage]]:
    """The input size and the chain of stages from the graph's Input to its Output."""
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    pred: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise NIRImportError(f"the graph needs exactly one Input node, got {len(inputs)} ({', '.join(inputs)})")
    shape = np.asarray(nodes[inputs[0]].input_type["input"]).reshape(-1)
    if shape.size != 1:
        raise NIRImportError(f"{inputs[0]}: the input must be a vector (one size), got shape {shape.tolist()}")

    def feeds_back(weight: str, neuron: str) -> bool:
        return isinstance(nodes[weight], WEIGHTS) and succ[weight] == [neuron] and pred[weight] == [neuron]

    stages: list[Stage] = []
    source = inputs[0]
    while True:
        forward = [k for k in succ[source] if not feeds_back(k, source)]
        if len(forward) != 1:
            raise NIRImportError(f"{source}: feeds {len(forward)} nodes ({', '.join(forward) or 'none'}); only a "
                                 "chain of layers (and recurrent cycles) can be imported")
        weight = forward[0]
        if isinstance(nodes[weight], nir.Output):
            break
        if not isinstance(nodes[weight], WEIGHTS):
            raise NIRImportError(f"{weight}: a {type(nodes[weight]).__name__} node where a Linear or Affine node "
                                 "(the weights into a neuron node) was expected")
        if len(succ[weight]) != 1 or not isinstance(nodes[succ[weight][0]], NEURONS):
            raise NIRImportError(f"{weight}: must feed exactly one LIF, CubaLIF or LI node, feeds "
                                 f"{', '.join(f'{k} ({type(nodes[k]).__name__})' for k in succ[weight]) or 'none'}")
        neuron = succ[weight][0]
        others = [k for k in pred[neuron] if k != weight]
        recurrent = [k for k in others if feeds_back(k, neuron)]
        if len(others) != len(recurrent) or len(recurrent) > 1:
            raise NIRImportError(f"{neuron}: receives from {', '.join(pred[neuron])}; only one input weight node "
                                 "and at most one recurrent weight node (from the neuron itself) can be imported")
        stages.append(Stage(nodes[weight], nodes[neuron], neuron, nodes[recurrent[0]] if recurrent else None))
        source = neuron
    if not stages:
        raise NIRImportError("the graph has no weight and neuron nodes between its Input and Output")
    return int(shape[0]), stages


# --- the components --------------------------------------------------------------------------
def _matrix(node: nir.NIRNode, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    weight = np.asarray(node.weight)
    if weight.ndim != 2:
        raise NIRImportError(f"{where}: weights must be a matrix [out, in], got shape {list(weight.shape)}")
    bias = np.asarray(node.bias, dtype=np.float64) if isinstance(node, nir.Affine) else None
    if bias is not None and bias.ndim == 0:  # Affine(bias=False), as some tools write "no bias"
        bias = None if not bias else np.full(weight.shape[0], float(bias))
    return weight, bias


def _scaled(weight: np.ndarray, gain: np.ndarray) -> torch.Tensor:
    """``gain[o] W[o, :]``, computed in float64 and returned in the weights' dtype (float32 stays
    float32, so a gain of 1 changes nothing)."""
    dtype = weight.dtype if weight.dtype in (np.float32, np.float64) else np.float32
    return torch.from_numpy((gain[:, None] * weight.astype(np.float64)).astype(dtype))


def _set_constant(kernel: nn.Module, name: str, values: np.ndarray, learned: bool) -> None:
    """Put per-neuron ``values`` into the kernel's constant ``name``: a Parameter ``[N]`` when
    learned, a scalar buffer when all neurons share it, else a buffer ``[N]`` (float32)."""
    current = getattr(kernel, name)
    tensor = torch.tensor(values, dtype=current.dtype)
    if learned:
        current.data.copy_(tensor)
    elif np.all(values == values[0]):
        setattr(kernel, name, tensor[0].clone())
    else:
        setattr(kernel, name, tensor)


def _surrogate(spec: Any):
    """The surrogate ``to_nir`` wrote, or the LIFKernel default when there is none or it is unknown."""
    if isinstance(spec, dict) and spec.get("type") in SURROGATES:
        params = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in spec.items()}
        try:
            return create(params, SURROGATES)
        except Exception:  # noqa: BLE001  (a surrogate from another Spikelab version: take the default)
            pass
    return "FastSigmoid"


def _kernel(stage: Stage, step: float) -> tuple[Kernel, np.ndarray, np.ndarray]:
    """The kernel of a neuron node and the gain and offset folded into its input weights and bias."""
    node, where, meta = stage.neuron, stage.name, _spikelab(stage.neuron)
    kdt = float(meta.get("dt", step))
    learned = set(str(meta.get("learn", "")).split(",")) - {""}
    if meta.get("kernel") == "LeakyKernel" and isinstance(node, (nir.LI, nir.LIF)):
        return _leaky(node, meta, kdt, step, where)
    if isinstance(node, nir.LI):
        tau = spikelab_tau(node.tau, kdt, step, f"{where}.tau").reshape(-1)
        kernel = LIKernel(tau.size, tau=float(tau[0]), learn_tau="tau" in learned, dt=kdt)
        _set_constant(kernel, "tau", tau, "tau" in learned)
        r = np.asarray(node.r, dtype=np.float64).reshape(-1)
        return kernel, r, np.asarray(node.v_leak, dtype=np.float64).reshape(-1)
    threshold = uniform(node.v_threshold, f"{where}.v_threshold")
    v_reset = uniform(node.v_reset, f"{where}.v_reset")
    reset = str(meta.get("reset", "hard"))
    if reset != "hard":  # the kernel's own v_reset (unused by soft and none resets)
        v_reset = float(meta.get("v_reset", 0.0))
    common = dict(v_th=threshold, v_reset=v_reset, reset=reset, detach_reset=bool(meta.get("detach_reset", False)),
                  surrogate=_surrogate(meta.get("surrogate")), learn=sorted(learned),
                  fused=bool(meta.get("fused", True)), dt=kdt)
    if isinstance(node, nir.LIF):
        tau_m = spikelab_tau(node.tau, kdt, step, f"{where}.tau").reshape(-1)
        kernel = LIFKernel(tau_m.size, tau_m=float(tau_m[0]), **common)
        _set_constant(kernel, "tau_m", tau_m, "tau_m" in learned)
        r = np.asarray(node.r, dtype=np.float64).reshape(-1)
        return kernel, r, np.asarray(node.v_leak, dtype=np.float64).reshape(-1)
    if np.any(np.asarray(node.v_leak) != 0):
        raise NIRImportError(f"{where}.v_leak: a CubaLIF with v_leak != 0 has no Spikelab form (LIFKernel's CUBA "
                             "membrane has no leak potential)")
    tau_m = spikelab_tau(node.tau_mem, kdt, step, f"{where}.tau_mem").reshape(-1)
    tau_syn = spikelab_tau(node.tau_syn, kdt, step, f"{where}.tau_syn").reshape(-1)
    kernel = LIFKernel(tau_m.size, tau_m=float(tau_m[0]), tau_syn=float(tau_syn[0]), **common)
    _set_constant(kernel, "tau_m", tau_m, "tau_m" in learned)
    _set_constant(kernel, "tau_syn", tau_syn, "tau_syn" in learned)
    # Euler: I_t = (1 - dt/tau_syn) I + dt/tau_syn w_in S, v_t = (1 - dt/tau_mem) v + dt/tau_mem r I_t; Spikelab's
    # i is dt/tau_mem r I, so the input weights carry dt/tau_mem r dt/tau_syn w_in
    gain = (step / np.asarray(node.tau_mem, dtype=np.float64) * np.asarray(node.r, dtype=np.float64)
            * step / np.asarray(node.tau_syn, dtype=np.float64) * np.asarray(node.w_in, dtype=np.float64))
    return kernel, gain.reshape(-1), np.zeros(tau_m.size)


def _leaky(node: nir.NIRNode, meta: dict, kdt: float, step: float, where: str) -> tuple[Kernel, np.ndarray, np.ndarray]:
    """A LeakyKernel (``U_t = b U_{t-1} + x_t``) that ``to_nir`` wrote: Euler's step is
    ``b U + dt/tau (r I + v_leak)``, so the input carries ``dt/tau r`` and ``dt/tau v_leak``."""
    taus = spikelab_tau(node.tau, kdt, step, f"{where}.tau").reshape(-1)
    tau = float(meta.get("tau", taus[0]))
    uniform(taus, f"{where}.tau")  # one tau for all neurons
    if isinstance(node, nir.LI):
        kernel = LeakyKernel(taus.size, tau=tau, dt=kdt)
    else:
        kernel = LeakyKernel(taus.size, tau=tau, spike=True, reset=True,
                             v_th=uniform(node.v_threshold, f"{where}.v_threshold"),
                             v_reset=uniform(node.v_reset, f"{where}.v_reset"),
                             surrogate=_surrogate(meta.get("surrogate")), dt=kdt)
    rate = step / np.asarray(node.tau, dtype=np.float64).reshape(-1)
    return (kernel, rate * np.asarray(node.r, dtype=np.float64).reshape(-1),
            rate * np.asarray(node.v_leak, dtype=np.float64).reshape(-1))


def _bias(bias: np.ndarray | None, gain: np.ndarray, offset: np.ndarray, dtype) -> torch.Tensor | None:
    """``gain b + offset`` (None when both are absent or zero)."""
    if bias is None and not np.any(offset):
        return None
    total = gain * (bias if bias is not None else 0.0) + offset
    return torch.from_numpy(total.astype(dtype))


def _layer(stage: Stage, in_features: int, step: float) -> Layer:
    kernel, gain, offset = _kernel(stage, step)
    weight, bias = _matrix(stage.weight, f"{stage.name} (its input weights)")
    out = kernel.size
    if weight.shape != (out, in_features):
        raise NIRImportError(f"{stage.name}: input weights of shape {list(weight.shape)}, expected [{out}, "
                             f"{in_features}]")
    dtype = _scaled(weight, gain).numpy().dtype
    if stage.recurrent is None:
        b = _bias(bias, gain, offset, dtype)
        layer: Layer = Dense(in_features, out, kernel, bias=b is not None, weight_init=Constant(0.0))
        layer.weight.data = _scaled(weight, gain)
    else:
        w_rec, b_rec = _matrix(stage.recurrent, f"{stage.name} (its recurrent weights)")
        if w_rec.shape != (out, out):
            raise NIRImportError(f"{stage.name}: recurrent weights of shape {list(w_rec.shape)}, expected "
                                 f"[{out}, {out}]")
        if b_rec is not None:
            bias = b_rec if bias is None else bias + b_rec
        b = _bias(bias, gain, offset, dtype)
        layer = Recurrent(in_features, out, kernel, bias=b is not None, weight_init=Constant(0.0))
        layer.weight.data = torch.cat([_scaled(weight, gain), _scaled(w_rec, gain)], dim=1)
        kept = _spikelab(stage.recurrent)
        if "tbptt" in kept and hasattr(layer, "tbptt"):
            layer.tbptt = int(kept["tbptt"])
        mask = kept.get("recurrent_mask")
        if mask is not None:
            del layer.mask
            layer.register_buffer("mask", torch.as_tensor(np.asarray(mask), dtype=layer.weight.dtype))
    if b is not None:
        layer.bias.data = b
    return layer


def _readout(stage: Stage, in_features: int, step: float) -> LeakyIntegrator:
    """A LeakyIntegrator from the last LI node: its alpha ``1 - dt / tau`` written back as the
    readout's parameter (tau of an exponential or linear decay, or ``s`` of ``sigmoid(s)``)."""
    node, where, meta = stage.neuron, stage.name, _spikelab(stage.neuron)
    kdt = float(meta.get("dt", step))
    decay, parametrization = str(meta.get("decay", "exponential")), str(meta.get("parametrization", "tau"))
    decay = decay if decay in ("exponential", "linear") else "exponential"
    parametrization = parametrization if parametrization in ("tau", "sigmoid") else "tau"
    tau = np.asarray(node.tau, dtype=np.float64).reshape(-1)
    if parametrization == "sigmoid" or decay == "linear":
        if not np.all(tau >= step) or (parametrization == "sigmoid" and not np.all(tau > step)):
            raise NIRImportError(f"{where}.tau must be > dt = {step:g} everywhere, got min {float(tau.min()):g}")
        values = np.log(tau / step - 1.0) if parametrization == "sigmoid" else kdt * tau / step
    else:
        values = spikelab_tau(tau, kdt, step, f"{where}.tau")
    learned = "tau" in set(str(meta.get("learn", "")).split(","))
    weight, bias = _matrix(stage.weight, f"{where} (its input weights)")
    if weight.shape != (tau.size, in_features):
        raise NIRImportError(f"{where}: input weights of shape {list(weight.shape)}, expected [{tau.size}, "
                             f"{in_features}]")
    gain = np.asarray(node.r, dtype=np.float64).reshape(-1)
    offset = np.asarray(node.v_leak, dtype=np.float64).reshape(-1)
    reduce = str(meta.get("reduce", "mean"))
    b = _bias(bias, gain, offset, _scaled(weight, gain).numpy().dtype)
    readout = LeakyIntegrator(in_features, tau.size, tau=20.0, learn_tau=learned, decay=decay,
                              parametrization=parametrization, reduce=reduce if reduce in ("max", "mean", "last") else
                              "mean", bias=b is not None, weight_init=Constant(0.0), dt=kdt)
    with torch.no_grad():
        _set_constant(readout.kernel, "tau", values, learned)
    readout.weight.data = _scaled(weight, gain)
    if b is not None:
        readout.bias.data = b
    return readout
