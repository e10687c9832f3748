"""Backbones and heads: 3-D video ResNets, frame-wise 2-D CNNs, 1-D / 2-D audio ResNets, projection heads."""

from glocal.models.cnn2d import CNN2D_DEPTHS, PlainCNN2D
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
    "CNN2D_DEPTHS",
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
    "PlainCNN2D",
    "ResNet1DAudio",
    "ResNet2DAudio",
    "ResNet3D",
    "build_video_backbone",
    "r2plus1d_mid_channels",
    "scale_width",
]
