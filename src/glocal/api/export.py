"""``glocal export``: a checkpoint's encoders alone, as TorchScript, safetensors or ONNX (docs/api.md).

Each encoder maps the preprocessed input to the global embedding exactly as
``glocal.load(CKPT).embed_video(tensor)`` / ``embed_audio(tensor)`` do: video ``(B, 3, T, S, S)``
normalised clips -> ``(B, D)`` (the backbone map mean-pooled), audio ``(B, N)`` mono waveforms at
the checkpoint's sample rate -> ``(B, D_audio)``. ``--out PATH`` names the outputs::

    PATH.video.pt, PATH.audio.pt        torchscript (torch.jit.trace, eval mode, CPU)
    PATH.safetensors                    safetensors: the parameters and buffers the embeddings use,
                                        keys ``video.<name>`` / ``audio.<name>`` (the method's names)
    PATH.video.onnx, PATH.audio.onnx    onnx (torch.onnx.export; dynamic batch)
    PATH.json                           config and preprocessing (geometry, normalisation, dims, check)

TorchScript and ONNX outputs are run on a random sample and compared with eager before the command
succeeds (ONNX with onnxruntime, when installed). safetensors / onnx / onnxruntime are optional
(``pip install 'glocal[export]'``); nothing is downloaded. Every file is written to a temporary
name and renamed, and the output folder is checked writable before anything is loaded.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import contextlib
import io
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .. import __version__
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..errors import GlocalError
from ..runtime.files import atomic_path
from ..runtime.rundir import check_writable
from . import Encoder, load

__all__ = ["FORMATS", "export_encoders", "output_paths", "VideoEmbedding", "AudioEmbedding"]

FORMATS = ("torchscript", "safetensors", "onnx")
#: optional packages each format needs (the first group is required, the second only checks)
_NEEDS = {"torchscript": (), "safetensors": ("safetensors",), "onnx": ("onnx",)}
_SUFFIXES = (".pt", ".pth", ".ts", ".safetensors", ".onnx", ".json")
ONNX_OPSET = 17
#: the export matches eager when max |export - eager| <= ATOL + RTOL * max |eager|
ATOL, RTOL = 1e-4, 1e-4


class _NotExportable(GlocalError):
    """torch.onnx cannot express an encoder (e.g. GLCM's STFT front end)."""


class VideoEmbedding(nn.Module):
    """``(B, 3, T, S, S)`` normalised clips -> ``(B, D)`` float32, as ``Encoder.embed_video(tensor)``."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.method.pooled_video_features(x, "mean").float()


class AudioEmbedding(nn.Module):
    """``(B, N)`` waveforms -> ``(B, D_audio)`` float32, as ``Encoder.embed_audio(tensor)``."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.method.audio_features(x).float()


def _require(fmt: str) -> None:
    for name in _NEEDS[fmt]:
        try:
            importlib.import_module(name)
        except ImportError:
            raise GlocalError(f"--format {fmt} needs the optional package '{name}', which is not installed: "
                              "pip install 'glocal[export]'") from None


def _base(out: str | os.PathLike) -> Path:
    p = Path(out).expanduser()
    return p.with_suffix("") if p.suffix.lower() in _SUFFIXES else p


def output_paths(out: str | os.PathLike, fmt: str, modalities: tuple[str, ...]) -> dict[str, Path]:
    """The files ``export_encoders`` writes for ``out`` (keys: modalities / ``weights``, and ``json``)."""
    base = _base(out)
    files: dict[str, Path] = {}
    if fmt == "safetensors":
        files["weights"] = base.with_name(base.name + ".safetensors")
    else:
        ext = ".pt" if fmt == "torchscript" else ".onnx"
        files.update({m: base.with_name(f"{base.name}.{m}{ext}") for m in modalities})
    files["json"] = base.with_name(base.name + ".json")
    return files


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` then rename to ``path`` (:func:`glocal.runtime.files.atomic_path`: with the
    permissions of any new file; the safetensors writer creates its file owner-only, 0600, which a
    shared model folder cannot read)."""
    with atomic_path(path) as tmp:
        write(tmp)


def _sample(enc: Encoder, modality: str, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if modality == "video":
        return torch.randn((batch, *enc.info.video_shape), generator=g)
    return 0.1 * torch.randn((batch, enc.info.audio_samples), generator=g)


def _eager(enc: Encoder, modality: str, x: torch.Tensor) -> torch.Tensor:
    return enc.embed_video(x) if modality == "video" else enc.embed_audio(x)


def _wrapper(enc: Encoder, modality: str) -> nn.Module:
    return (VideoEmbedding if modality == "video" else AudioEmbedding)(enc.method).eval()


def _compare(modality: str, fmt: str, got: torch.Tensor, ref: torch.Tensor, log: Callable[[str], None]) -> dict:
    got = torch.as_tensor(got).float()
    if got.shape != ref.shape:
        raise GlocalError(f"{fmt} {modality} encoder gives shape {tuple(got.shape)}, eager {tuple(ref.shape)}")
    diff = float((got - ref).abs().max())
    tol = ATOL + RTOL * float(ref.abs().max())
    log(f"glocal export: {modality} {fmt} vs eager on a random batch of {ref.shape[0]}: max abs difference "
        f"{diff:.3g} (tolerance {tol:.3g})")
    if not diff <= tol:
        raise GlocalError(f"the {fmt} {modality} encoder differs from eager by {diff:.3g} (> tolerance {tol:.3g}); "
                          "nothing was written")
    return {"max_abs_diff": diff, "tolerance": tol, "batch": int(ref.shape[0])}


def _used_tensors(enc: Encoder, modality: str, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The parameters the embedding depends on (a gradient reaches them), with the buffers of the
    modules that hold them: the encoder alone, without heads and losses."""
    method = enc.method
    for p in method.parameters():
        p.grad = None
    with torch.enable_grad():
        _wrapper(enc, modality)(x.to(enc.device)).sum().backward()
    used = {n for n, p in method.named_parameters() if p.grad is not None}
    for p in method.parameters():
        p.grad = None
    owners = {n.rsplit(".", 1)[0] if "." in n else "" for n in used}
    out = {n: p.detach() for n, p in method.named_parameters() if n in used}
    for n, b in method.named_buffers():
        if (n.rsplit(".", 1)[0] if "." in n else "") in owners:
            out[n] = b.detach()
    return {k: v.cpu().contiguous().clone() for k, v in out.items()}


def _torchscript(enc: Encoder, modality: str, path: Path, log) -> dict:
    x = _sample(enc, modality)
    ref = _eager(enc, modality, x)
    with torch.no_grad(), warnings.catch_warnings():
        # the trace fixes the input geometry (T, S / audio samples) of the checkpoint; the batch stays free
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(_wrapper(enc, modality), x.to(enc.device), check_trace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _atomic(path, lambda tmp: torch.jit.save(traced, str(tmp)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reloaded = torch.jit.load(str(path), map_location="cpu")  # check what was written
    with torch.no_grad():
        got = reloaded(x)
    try:
        return _compare(modality, "torchscript", got, ref, log)
    except GlocalError:
        path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _quiet_fds():
    """The C++ side of torch.onnx prints whole graphs on failure: hold fds 1 and 2 meanwhile."""
    import tempfile

    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            for fd, old in zip((1, 2), saved):
                os.dup2(old, fd)
                os.close(old)


def _onnx(enc: Encoder, modality: str, path: Path, log) -> dict:
    x = _sample(enc, modality)
    ref = _eager(enc, modality, x)
    names = {"video": "clips", "audio": "waveforms"}

    def write(tmp: Path) -> None:
        kwargs: dict[str, Any] = dict(input_names=[names[modality]], output_names=["embedding"],
                                      dynamic_axes={names[modality]: {0: "batch"}, "embedding": {0: "batch"}},
                                      opset_version=ONNX_OPSET)
        try:
            with torch.no_grad():
                torch.onnx.export(_wrapper(enc, modality), (x,), str(tmp), dynamo=False, **kwargs)
        except TypeError:  # an older torch without the dynamo switch
            with torch.no_grad():
                torch.onnx.export(_wrapper(enc, modality), (x,), str(tmp), **kwargs)

    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), _quiet_fds():
            warnings.simplefilter("ignore")  # tracer notes: the geometry is fixed, the batch stays free
            _atomic(path, write)
    except Exception as exc:  # an operator ONNX cannot express, a missing exporter dependency
        text = str(exc).strip()
        reason = (text.splitlines()[0].split("  [Caused by")[0] if text else type(exc).__name__)[:200]
        raise _NotExportable(f"torch.onnx.export of the {modality} encoder failed: {reason}") from None
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        log(f"glocal export: {modality} onnx check skipped: onnxruntime is not installed "
            "(pip install 'glocal[export]')")
        return {"skipped": "onnxruntime not installed"}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(sess.run(None, {names[modality]: x.numpy()})[0])
    try:
        return _compare(modality, "onnx", got, ref, log)
    except GlocalError:
        path.unlink(missing_ok=True)
        raise


def _safetensors(enc: Encoder, path: Path, log) -> dict:
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for mod in enc.info.modalities:
        tensors.update({f"{mod}.{k}": v for k, v in _used_tensors(enc, mod, _sample(enc, mod)).items()})
    meta = {"glocal_version": __version__, "method": enc.info.method, "format": "glocal-encoders"}
    _atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    log(f"glocal export: safetensors holds {len(tensors)} tensors "
        f"({sum(t.numel() for t in tensors.values()):,} values) of the encoders; no numeric check needed")
    return {"tensors": len(tensors)}


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def export_encoders(checkpoint: str | os.PathLike, fmt: str, out: str | os.PathLike, *,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """Export ``checkpoint``'s encoders in ``fmt`` (torchscript | safetensors | onnx) next to ``out``
    (see the module docstring); returns the JSON description (also written to ``PATH.json``)."""
    if fmt not in FORMATS:
        raise GlocalError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    _require(fmt)  # a missing optional package is named before any work
    base = _base(out)
    if base.is_dir():
        raise GlocalError(f"--out {out} is a folder; give a file name (e.g. {Path(out) / 'encoders'})")
    check_writable(base.parent, "the output folder of --out")
    enc = load(checkpoint, "cpu")
    files = output_paths(out, fmt, enc.info.modalities)
    dims, checks = {}, {}
    for mod in enc.info.modalities:
        dims[mod] = int(_eager(enc, mod, _sample(enc, mod, 1)).shape[1])
    try:
        if fmt == "safetensors":
            checks["safetensors"] = _safetensors(enc, files["weights"], log)
        else:
            for mod in enc.info.modalities:
                try:
                    checks[mod] = (_torchscript if fmt == "torchscript" else _onnx)(enc, mod, files[mod], log)
                except _NotExportable as exc:
                    if mod == enc.info.modalities[0]:
                        raise
                    # ONNX: an encoder torch.onnx cannot express is left out, said, and noted in the JSON
                    log(f"glocal export: {mod} encoder not exported to onnx ({exc}); "
                        f"--format torchscript exports it")
                    checks[mod] = {"not_exported": str(exc)}
                    del files[mod]
    except BaseException:  # nothing of a failed export is left behind
        for p in files.values():
            p.unlink(missing_ok=True)
        raise
    i = enc.info
    inputs = {"video": {"name": "clips", "shape": ["batch", *i.video_shape], "dtype": "float32",
                        "layout": "B, RGB, T, H, W; RGB in [0, 1] normalised by mean / std, centre crop"},
              "audio": {"name": "waveforms", "shape": ["batch", i.audio_samples], "dtype": "float32",
                        "layout": f"B, samples; mono at {i.sample_rate} Hz"}}
    info = {
        "glocal_version": __version__, "format": fmt, "checkpoint": str(Path(checkpoint).resolve()),
        "method": i.method, "modalities": list(i.modalities),
        "out": str(base.resolve()), "files": {k: p.name for k, p in files.items()},
        "inputs": {m: inputs[m] for m in i.modalities},
        "embedding_dims": dims,
        "preprocessing": {"clip_frames": i.clip_frames, "fps": i.fps, "crop_size": i.crop_size,
                          "decode_size": enc.spec.data.decode_size, "normalization": {
                              "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
                          "sample_rate": i.sample_rate, "audio_samples": i.audio_samples,
                          "video_pool": "mean"},
        "check": checks,
        "config": {"method": _jsonable(enc.spec.method), "data": _jsonable(enc.spec.data)},
    }
    text = json.dumps(info, indent=2).encode()

    def write_json(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    _atomic(files["json"], write_json)
    return info
