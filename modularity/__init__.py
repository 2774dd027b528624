"""modularity: find the hidden branch and module structure of vision networks from their weights.

The Python API mirrors the CLI::

    import modularity
    loaded = modularity.load_model("googlenet", weights="none")
    graph = modularity.trace(loaded.module)
    result = modularity.analyze(loaded, graph=graph, layers="inception3a", n_permutations=100)
    result.layer("inception3a").recovery
"""

__version__ = "0.1.0"

from .analysis import analyze_layer, select_layers  # noqa: E402
from .errors import ModularityError  # noqa: E402
from .core.graph import ChannelGraph, trace  # noqa: E402
from .core.magnitude import downstream_profile, layer_magnitude  # noqa: E402
from .results import AnalysisResult, LayerResult, load_summary  # noqa: E402
from .pipeline import analyze, load_model, save_results  # noqa: E402
from .zoo import list_sources  # noqa: E402

__all__ = [
    "AnalysisResult", "ChannelGraph", "LayerResult", "ModularityError", "analyze", "analyze_layer",
    "downstream_profile", "layer_magnitude", "list_sources", "load_model", "load_summary", "save_results", "select_layers",
    "trace",
]
