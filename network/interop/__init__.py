"""Exchange formats for Spikelab networks. NIR (the Neuromorphic Intermediate Representation,
docs/nir.md): ``to_nir(network, dt) -> nir.NIRGraph`` and ``from_nir(graph) -> Network``."""
from network.interop.nir_export import to_nir
from network.interop.nir_import import from_nir
from network.interop.nir_params import NIRExportError, NIRImportError

__all__ = ["to_nir", "from_nir", "NIRExportError", "NIRImportError"]
