"""The shared runtime every upper layer builds on: devices and precision, checkpoints and run
folders, the process group with its batch sampler and SyncBatchNorm, and the cross-rank gathers.

It imports only ``glocal.errors`` / ``glocal.config`` and torch, so models, objectives, data,
methods, train and eval can all use it (docs/architecture.md).
"""
