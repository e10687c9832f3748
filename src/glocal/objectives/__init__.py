"""Objectives: contrastive losses, memory queue / momentum update and pretext helpers."""

from .glcm import (
    RELEASE_EXACT,
    attention_pool,
    av_attention,
    glcm_global_loss,
    glcm_local_loss,
    global_scores,
)
from .distributed import all_gather_no_grad, all_gather_with_grad, dist_info, mil_nce_local
from .info_nce import (
    MULTI_POSITIVE_MODES,
    info_nce,
    multi_positive_nce,
    soft_target_contrast,
    soft_target_nce,
)
from .memory import FeatureQueue, momentum_update
from .mil_nce import POOL_MODES, mil_nce
from .vclr import (
    INTRA_MODES,
    ORDER_NORM_AXES,
    normalize_order_features,
    permute_tuples,
    seco_inter_loss,
    seco_intra_loss,
)
from .pretext import (
    GradientReversal,
    GradientReversalLayer,
    grad_reverse,
    jsd_mi_lower_bound,
    mi_jsd_lower_bound,
    order_permutations,
)

__all__ = [
    "RELEASE_EXACT",
    "POOL_MODES",
    "MULTI_POSITIVE_MODES",
    "mil_nce",
    "mil_nce_local",
    "all_gather_with_grad",
    "all_gather_no_grad",
    "dist_info",
    "global_scores",
    "glcm_global_loss",
    "av_attention",
    "attention_pool",
    "glcm_local_loss",
    "info_nce",
    "multi_positive_nce",
    "soft_target_nce",
    "soft_target_contrast",
    "FeatureQueue",
    "momentum_update",
    "order_permutations",
    "GradientReversal",
    "GradientReversalLayer",
    "grad_reverse",
    "jsd_mi_lower_bound",
    "mi_jsd_lower_bound",
    "INTRA_MODES",
    "ORDER_NORM_AXES",
    "seco_inter_loss",
    "seco_intra_loss",
    "normalize_order_features",
    "permute_tuples",
]
