"""Backbones and heads: 3-D video ResNets, 1-D / 2-D audio ResNets, projection heads."""

from glocal.models.heads import Conv1x1Head, MLPHead
from glocal.models.resnet1d import BasicBlock1D, ResNet1DAudio
from glocal.models.resnet2d_audio import BasicBlock2D, ResNet2DAudio
from glocal.models.resnet3d import (
    BLOCK_TYPES,
    VIDEO_BACKBONES,
    BasicBlock2Plus1D,
    BasicBlock3D,
    BasicBlockSF,
    Conv2Plus1D,
    Conv3d,
    ResNet3D,
    build_video_backbone,
    r2plus1d_mid_channels,
    scale_width,
)

__all__ = [
    "BLOCK_TYPES",
    "VIDEO_BACKBONES",
    "BasicBlock1D",
    "BasicBlock2D",
    "BasicBlock2Plus1D",
    "BasicBlock3D",
    "BasicBlockSF",
    "Conv1x1Head",
    "Conv2Plus1D",
    "Conv3d",
    "MLPHead",
    "ResNet1DAudio",
    "ResNet2DAudio",
    "ResNet3D",
    "build_video_backbone",
    "r2plus1d_mid_channels",
    "scale_width",
]
