"""``to_nir``: a Spikelab ``Network`` as a NIR graph (docs/nir.md; the parameter map:
``network.interop.nir_params``).

The graph is a chain ``input -> layer0_weight -> layer0 -> ... -> readout_weight -> readout ->
output``: every ``Dense`` layer is a ``nir.Affine`` (with a bias) or ``nir.Linear`` (without)
followed by its neuron node (``nir.LIF``, ``nir.CubaLIF`` or ``nir.LI``), and a
``LeakyIntegrator`` readout is a weight node and a ``nir.LI``. A ``Recurrent`` layer is one
``nir.NIRGraph`` node holding the cycle, as NIR writes recurrence::

    input -> weight_in -> neuron -> output        weight_in: W[:, :in] (+ b), an Affine or Linear
                 neuron -> weight_rec -> neuron    weight_rec: W[:, in:] (masked), a Linear

NIR sums the edges that arrive at a node and a simulator steps the cycle with the previous step's
spikes, which is ``I_t = W [x_t; z_{t-1}] + b``. ``LeakyKernel`` (``U_t = b U_{t-1} + x_t``) is
an LI or, with spikes and a reset, an LIF with ``r = 1 / (1 - b)``. A ``SpikeCount`` readout has no
node: the graph ends at the last layer's spikes (the count over time is left to the consumer, as the
LeakyIntegrator's ``reduce`` is: the graph's output is the readout's trace).

What NIR cannot say is kept for Spikelab under ``metadata["spikelab"]`` of each node (the reset
mode, the kernel's own dt, learned constants, the surrogate, the readout's reduce), so
``from_nir(to_nir(net))`` rebuilds the same network. Kernels without a NIR primitive (RF, BRF,
BHRF, ALIF, the tempotron's DEN kernels, ...) raise ``NIRExportError`` with one line naming them.
"""
from __future__ import annotations

from typing import Any

import nir
import numpy as np
from torch import Tensor, nn

from network.interop.nir_params import NIRExportError, nir_gain, nir_tau, per_neuron
from network.kernels.base import Kernel
from network.kernels.lif import LIFKernel, LIKernel
from network.kernels.stepped import LeakyKernel
from network.layers import Dense
from network.network import Network
from network.readouts import LeakyIntegrator, SpikeCount
from network.recurrent import Recurrent

FORMAT = 1  # version of the "spikelab" metadata written here
EXPORTABLE = ("exportable: LIFKernel (current-based or CUBA), LIKernel and LeakyKernel (without spikes, or with a "
              "reset) in Dense or Recurrent layers")

#: Why a kernel has no NIR primitive (kernels not listed get the generic line).
NO_PRIMITIVE = {
    "RFKernel": "a resonate-and-fire neuron has a complex, oscillating membrane",
    "BRFKernel": "a balanced resonate-and-fire neuron has an oscillating membrane and a refractory, "
                 "adaptive threshold",
    "BHRFKernel": "a balanced harmonic resonate-and-fire neuron has an oscillating membrane and an "
                  "adaptive threshold",
    "ALIFKernel": "an adaptive LIF has a threshold that rises with every spike",
    "DENKernel": "the tempotron's double-exponential PSP is computed event by event and read by a "
                 "maximum over time",
    "SequentialDENKernel": "the tempotron's stepped PSP is scaled to the DEN kernel and read by a maximum over time",
    "LeakyKernel": "with spike: true and reset: false it fires without a reset, and NIR's LIF always resets",
}


def to_nir(network: Network, dt: float | None = None, strict: bool = False) -> nir.NIRGraph:
    """``network`` as a ``nir.NIRGraph``.

    Args:
        network: a ``Network`` of ``Dense``/``Recurrent`` layers with LIFKernel or LIKernel neurons
            and a ``LeakyIntegrator`` or ``SpikeCount`` readout.
        dt: the step of the simulator the graph is meant for, in the unit of its time constants
            (default: the kernels' own step, in ms); see ``network.interop.nir_params``.
        strict: refuse what NIR can only approximate (a soft or no reset becomes NIR's reset to
            ``v_reset``) instead of noting it in ``metadata["spikelab"]["lossy"]``.

    Raises NIRExportError (one line) for a kernel, layer or readout that has no NIR form.
    """
    if not isinstance(network, Network):
        raise NIRExportError(f"{type(network).__name__} cannot be exported to NIR: only a Network (layers and a "
                             "readout) can")
    step = float(dt) if dt is not None else _network_dt(network)
    if not step > 0:
        raise NIRExportError(f"dt must be > 0, got {dt}")
    lossy: list[str] = []
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array([network.input_size]))}
    edges: list[tuple[str, str]] = []
    source = "input"
    for k, layer in enumerate(network.layers):
        path, name = f"model.layers[{k}]", f"layer{k}"
        neuron = _neuron(layer.kernel, step, f"{path}.kernel", lossy)
        if isinstance(layer, Recurrent):
            nodes[name] = _recurrent(layer, neuron)
            edges.append((source, name))
        elif isinstance(layer, Dense):
            nodes[f"{name}_weight"] = _weight(layer.weight, layer.bias)
            nodes[name] = neuron
            edges += [(source, f"{name}_weight"), (f"{name}_weight", name)]
        else:
            raise NIRExportError(f"{path}: the layer {type(layer).__name__} has no NIR mapping (exportable layers: "
                                 "Dense, Recurrent)")
        source = name
    readout = network.readout
    if isinstance(readout, LeakyIntegrator):
        nodes["readout_weight"] = _weight(readout.weight, readout.bias)
        nodes["readout"] = _readout_li(readout, step)
        edges += [(source, "readout_weight"), ("readout_weight", "readout")]
        source, size = "readout", readout.out_features
    elif isinstance(readout, SpikeCount):
        if not network.layers[-1].spiking:
            raise NIRExportError("model.readout: SpikeCount after a non-spiking layer has no NIR form (it would "
                                 "sum a membrane over time)")
        size = readout.out_features
    else:
        raise NIRExportError(f"model.readout: NIR has no primitive for {type(readout).__name__} (a score taken "
                             "from the membrane over time); exportable readouts: LeakyIntegrator, SpikeCount")
    nodes["output"] = nir.Output(np.array([size]))
    edges.append((source, "output"))
    if strict and lossy:
        raise NIRExportError(f"strict: NIR cannot represent {lossy[0]}")
    readout_name = type(readout).__name__
    meta = {"format": FORMAT, "dt": step, "readout": readout_name, "lossy": "; ".join(lossy)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikelab": meta})


def _network_dt(network: Network) -> float:
    """The kernels' step (ms): the first layer's, or the readout's; 1.0 when none has one."""
    for module in [layer.kernel for layer in network.layers] + [getattr(network.readout, "kernel", None)]:
        if module is not None and hasattr(module, "dt"):
            return float(module.dt)
    return 1.0


def _array(tensor: Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def _weight(weight: Tensor, bias: Tensor | None) -> nir.NIRNode:
    """``nir.Affine`` with a bias, ``nir.Linear`` without; weights ``[out, in]`` in their own dtype."""
    if bias is None:
        return nir.Linear(weight=_array(weight))
    return nir.Affine(weight=_array(weight), bias=_array(bias))


def _learned(kernel: Kernel, names: tuple[str, ...]) -> str:
    return ",".join(n for n in names if isinstance(getattr(kernel, n, None), nn.Parameter))


def _neuron(kernel: Kernel, step: float, path: str, lossy: list[str]) -> nir.NIRNode:
    if type(kernel) is LIFKernel:
        return _lif(kernel, step, path, lossy)
    if type(kernel) is LIKernel:
        return _li(kernel, step, {})
    if type(kernel) is LeakyKernel and (kernel.reset or not kernel.spiking):
        return _leaky(kernel, step)
    name = type(kernel).__name__
    reason = NO_PRIMITIVE.get(name, "it is not one of NIR's neuron models (LIF, CubaLIF, LI, IF, I)")
    raise NIRExportError(f"{path}: NIR has no primitive for {name} ({reason}); {EXPORTABLE}")


def _lif(kernel: LIFKernel, step: float, path: str, lossy: list[str]) -> nir.NIRNode:
    """``nir.LIF`` (current-based) or ``nir.CubaLIF`` (``tau_syn`` set); see nir_params for the map."""
    n, kdt = kernel.size, float(kernel.dt)
    tau_m = per_neuron(_array(kernel.tau_m), n)
    threshold = per_neuron(kernel.v_th, n)
    if kernel.reset == "hard":
        reset = per_neuron(kernel.v_reset, n)
    else:
        reset = np.zeros(n)
        what = "subtracts v_th" if kernel.reset == "soft" else "is left out"
        if kernel.reset == "soft" and kernel.tau_syn is not None:
            what = "subtracts v_th / alpha"
        lossy.append(f"{path}: its reset ({kernel.reset}: the membrane after a spike {what}) is written as NIR's "
                     "reset to v_reset = 0")
    surrogate = {"type": type(kernel.surrogate).__name__, **vars(kernel.surrogate)}
    meta = {"spikelab": {"kernel": "LIFKernel", "dt": kdt, "reset": kernel.reset, "v_reset": float(kernel.v_reset),
                         "detach_reset": bool(kernel.detach_reset), "fused": bool(kernel.fused),
                         "learn": _learned(kernel, ("tau_m", "tau_syn")), "surrogate": surrogate}}
    zeros = np.zeros(n)
    if kernel.tau_syn is None:
        return nir.LIF(tau=nir_tau(tau_m, kdt, step), r=np.ones(n), v_leak=zeros, v_threshold=threshold,
                       v_reset=reset, metadata=meta)
    tau_syn = per_neuron(_array(kernel.tau_syn), n)
    return nir.CubaLIF(tau_syn=nir_tau(tau_syn, kdt, step), tau_mem=nir_tau(tau_m, kdt, step),
                       r=nir_gain(tau_m, kdt), v_leak=zeros, v_threshold=threshold, v_reset=reset,
                       w_in=nir_gain(tau_syn, kdt), metadata=meta)


def _li(kernel: LIKernel, step: float, extra: dict[str, Any]) -> nir.LI:
    """``nir.LI(tau = dt / (1 - alpha), r = 1, v_leak = 0)`` of an LIKernel (a hidden layer)."""
    n, kdt = kernel.size, float(kernel.dt)
    tau = per_neuron(_array(kernel.tau), n)
    meta = {"spikelab": {"kernel": "LIKernel", "dt": kdt, "learn": _learned(kernel, ("tau",)), **extra}}
    return nir.LI(tau=nir_tau(tau, kdt, step), r=np.ones(n), v_leak=np.zeros(n), metadata=meta)


def _readout_li(readout: LeakyIntegrator, step: float) -> nir.LI:
    """The LeakyIntegrator's ``nir.LI``: ``tau = dt / (1 - alpha)`` with its own alpha, from
    ``exp(-dt_k / |tau|)`` (decay exponential), ``clamp(1 - dt_k / |tau|, 0, 1)`` (decay linear:
    already an Euler step, so ``tau = dt max(|tau| / dt_k, 1)``) or ``sigmoid(s)``
    (parametrization sigmoid: ``tau = dt (1 + exp(s))``); float64 throughout."""
    n, kdt = readout.out_features, float(getattr(readout, "dt", readout.kernel.dt))
    decay, parametrization = getattr(readout, "decay", "exponential"), getattr(readout, "parametrization", "tau")
    value = per_neuron(_array(readout.kernel.tau), n)
    if parametrization == "sigmoid":
        tau = step * (1.0 + np.exp(value))
    elif decay == "linear":
        tau = step * np.maximum(np.abs(value) / kdt, 1.0)
    else:
        tau = nir_tau(value, kdt, step)
    meta = {"kernel": "LIKernel", "dt": kdt, "learn": _learned(readout.kernel, ("tau",)), "readout": "LeakyIntegrator",
            "reduce": readout.reduce, "decay": decay, "parametrization": parametrization}
    return nir.LI(tau=tau, r=np.ones(n), v_leak=np.zeros(n), metadata={"spikelab": meta})


def _leaky(kernel: LeakyKernel, step: float) -> nir.NIRNode:
    """``U_t = b U_{t-1} + x_t``: ``nir.LI`` (no spikes) or ``nir.LIF`` (spikes and a hard reset)
    with ``tau = dt / (1 - b)`` and ``r = 1 / (1 - b)``: Euler's ``dt / tau r`` is 1."""
    n, kdt = kernel.size, float(kernel.dt)
    tau, r = per_neuron(nir_tau(kernel.tau, kdt, step), n), per_neuron(nir_gain(kernel.tau, kdt), n)
    meta = {"kernel": "LeakyKernel", "dt": kdt, "tau": float(kernel.tau)}
    if not kernel.spiking:
        return nir.LI(tau=tau, r=r, v_leak=np.zeros(n), metadata={"spikelab": meta})
    meta["surrogate"] = {"type": type(kernel.surrogate).__name__, **vars(kernel.surrogate)}
    return nir.LIF(tau=tau, r=r, v_leak=np.zeros(n), v_threshold=per_neuron(kernel.v_th, n),
                   v_reset=per_neuron(kernel.v_reset, n), metadata={"spikelab": meta})


def _recurrent(layer: Recurrent, neuron: nir.NIRNode) -> nir.NIRGraph:
    """The subgraph of a Recurrent layer: the input weights into the neuron, and the neuron's
    spikes back into itself through the recurrent weights."""
    kept: dict[str, Any] = {}
    if layer.mask is not None:
        kept["recurrent_mask"] = _array(layer.mask)
    if getattr(layer, "tbptt", None) is not None:  # a training setting, kept for Spikelab
        kept["tbptt"] = int(layer.tbptt)
    rec_meta = {"spikelab": kept} if kept else {}
    nodes = {"input": nir.Input(np.array([layer.in_features])),
             "weight_in": _weight(layer.input_weight, layer.bias),
             "neuron": neuron,
             "weight_rec": nir.Linear(weight=_array(layer.recurrent_weight), metadata=rec_meta),
             "output": nir.Output(np.array([layer.out_features]))}
    edges = [("input", "weight_in"), ("weight_in", "neuron"), ("neuron", "weight_rec"), ("weight_rec", "neuron"),
             ("neuron", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"spikelab": {"layer": "Recurrent"}})
