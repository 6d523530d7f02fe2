"""gnn.explain: why a model ranked a song: edge-mask gradient attributions and their sentences."""

from gnn.explain._attribution import (
    Attribution,
    FidelityReport,
    GradientExplainer,
    PairExplanation,
    deletion_fidelity,
    supports_explanations,
)
from gnn.explain._reasons import NamedEvidence, reason_text

__all__ = [
    "Attribution",
    "FidelityReport",
    "GradientExplainer",
    "NamedEvidence",
    "PairExplanation",
    "deletion_fidelity",
    "reason_text",
    "supports_explanations",
]
