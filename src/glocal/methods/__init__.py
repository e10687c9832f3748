"""Methods: one short recipe per file, registered by name in :data:`METHODS`."""

from .avid import AVID, AVIDConfig
from .avts import AVTS, AVTSConfig
from .base import Method
from .ctrlaug import CtrlAug, CtrlAugConfig
from .glcm import GLCM, GLCMConfig
from .moco import MoCo, MoCoConfig
from .registry import METHODS, build_method, method_class
from .simclr import SimCLR, SimCLRConfig
from .spec import MethodSpec
from .vclr import VCLR, VCLRConfig

__all__ = [
    "METHODS", "Method", "GLCM", "GLCMConfig", "SimCLR", "SimCLRConfig", "MoCo", "MoCoConfig", "AVID", "AVIDConfig",
    "VCLR", "VCLRConfig", "AVTS", "AVTSConfig", "CtrlAug", "CtrlAugConfig", "method_class", "build_method",
    "MethodSpec",
]
