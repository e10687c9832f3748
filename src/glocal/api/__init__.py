"""The Python API: a trained checkpoint's encoders with their preprocessing (docs/api.md).

``glocal.load(CKPT, device="auto")`` returns an :class:`Encoder`; ``embed_video`` /
``embed_audio`` take a media file path, a list of paths, a dataset folder / manifest, or an
already preprocessed tensor batch, and return float32 ``(N, D)`` global embeddings on the CPU.
Files go through the evaluation data path (:mod:`glocal.eval.features`: the same decode, centre
crop, normalisation and multi-clip averaging as ``glocal eval``), so an embedding here is the
feature the linear probe and retrieval see. With ``space="joint"`` they are instead the method's
joint audio-visual embeddings (:meth:`Method.joint_video` / :meth:`Method.joint_audio`: the
projection heads the video-audio contrast compares, L2-normalised per clip), so a sound and a
video can be compared by cosine (cross-modal search, :mod:`glocal.api.search`); methods that do
not contrast video with audio (SimCLR, MoCo, VCLR, CtrlAug) have no such space. ``glocal embed``
(:mod:`glocal.api.embed`) runs the same code over a whole dataset.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch

from ..data.formats import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, load_manifest
from ..data.manifest import Manifest
from ..data.samplers import MultiClipSampler
from ..errors import DataError, GlocalError
from ..eval.checkpoint import load_method
from ..eval.features import EvalData, eval_dataset, eval_loader, extract_features, to_device
from ..eval.sound_classification import audio_crop_loader
from ..eval.suite import DEFAULT_CLIPS_PER_VIDEO, eval_data_from_config
from ..eval.usable import file_state, unusable_reason
from ..methods import Method, MethodSpec
from ..runtime.precision import resolve_device

__all__ = ["load", "Encoder", "ModelInfo", "Localization", "DEFAULT_CLIPS_PER_VIDEO", "SPACES", "manifest_of_files"]

SPACES = ("backbone", "joint")

Inputs = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]], torch.Tensor, np.ndarray]


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded checkpoint is: its method, modalities and input geometry."""

    method: str
    modalities: tuple[str, ...]
    clip_frames: int  #: frames per video clip
    fps: float  #: frame rate the clips are sampled at
    crop_size: int  #: square crop side (pixels) of a clip
    sample_rate: int  #: audio sample rate (Hz)
    audio_samples: int  #: waveform samples of one clip's audio (clip_frames / fps * sample_rate)
    checkpoint: str
    device: str

    @property
    def video_shape(self) -> tuple[int, int, int, int]:
        """One normalised clip: ``(3, T, S, S)``."""
        return (3, self.clip_frames, self.crop_size, self.crop_size)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "modalities": list(self.modalities), "video_shape": list(self.video_shape)}


@dataclass
class Localization:
    """The audio-visual heat maps of one file (:meth:`Encoder.localize`).

    ``maps`` float32 ``(M, h, w)`` in ``[0, 1]`` (each a softmax over positions, so it sums to 1),
    in the coordinates of the clip's centre crop; ``times`` ``(M,)`` the second of the video each
    map belongs to (sorted); ``crop`` ``(M, 4)`` the crop ``[x0, y0, x1, y1]`` (fractions of the
    frame) the map covers; ``path`` the file.
    """

    path: str
    maps: np.ndarray
    times: np.ndarray
    crop: np.ndarray


def manifest_of_files(paths: Sequence[str | os.PathLike]) -> Manifest:
    """An unlabelled manifest of the given media files (absolute paths, order kept)."""
    files = [str(Path(p).expanduser().resolve()) for p in paths]
    if not files:
        raise DataError("no input files given")
    root = os.path.commonpath([os.path.dirname(f) for f in files])
    return Manifest(root=Path(root), paths=np.array(files, dtype=str), labels=np.full(len(files), -1),
                    class_names=[], source="the given files")


def _as_manifest(x: str | os.PathLike | Sequence, *, audio: bool) -> Manifest:
    """A file, a list of files, or a dataset (folder / manifest in any documented layout)."""
    if isinstance(x, (str, os.PathLike)):
        p = Path(x).expanduser()
        if p.is_dir() or p.suffix.lower() in (".csv", ".tsv"):
            return load_dataset(p, audio=audio)
        if not p.exists():
            raise DataError(f"file not found: {p}")
        return manifest_of_files([p])
    return manifest_of_files(list(x))


def load_dataset(data: str | os.PathLike, *, audio: bool, fmt: str = "auto") -> Manifest:
    """A dataset folder or manifest in any documented layout (folders also hold audio files when
    ``audio``); an empty one is a one-line :class:`DataError`."""
    exts = (VIDEO_EXTENSIONS | AUDIO_EXTENSIONS) if audio else VIDEO_EXTENSIONS
    m = load_manifest(data, fmt, extensions=exts)
    if len(m) == 0:
        raise DataError(f"no media files in {data} (looked for {', '.join(sorted(exts))})")
    return m


class Encoder:
    """A trained method's encoders with their preprocessing (see :func:`load`)."""

    def __init__(self, method: Method, spec: MethodSpec, device: torch.device, checkpoint: str = "",
                 *, batch_size: int = 16, num_workers: int = 0) -> None:
        self.method = method.eval()
        self.spec = spec
        self.device = device
        self.batch_size = batch_size
        self.num_workers = num_workers
        d = spec.data
        self.info = ModelInfo(method=method.name, modalities=tuple(method.modalities), clip_frames=d.clip_frames,
                              fps=float(d.fps), crop_size=d.crop_size, sample_rate=d.sample_rate,
                              audio_samples=int(round(d.clip_frames / d.fps * d.sample_rate)),
                              checkpoint=str(checkpoint), device=str(device))

    def __repr__(self) -> str:
        i = self.info
        return (f"Encoder({i.method}, modalities={list(i.modalities)}, clip {i.clip_frames} frames @ {i.fps:g} fps, "
                f"crop {i.crop_size}, audio {i.sample_rate} Hz, device={i.device})")

    # ------------------------------------------------------------------ preprocessing
    def eval_data(self, clips_per_video: int = DEFAULT_CLIPS_PER_VIDEO, batch_size: int | None = None) -> EvalData:
        """The evaluation clip geometry of the checkpoint (``glocal eval``'s)."""
        return eval_data_from_config(self.spec, clips_per_video=int(clips_per_video),
                                     batch_size=int(batch_size or self.batch_size), num_workers=self.num_workers)

    def require(self, modality: str) -> None:
        """A one-line :class:`GlocalError` when the method has no encoder for ``modality``."""
        if modality not in self.info.modalities:
            raise GlocalError(f"method '{self.info.method}' has no {modality} encoder (its modalities: "
                              f"{', '.join(self.info.modalities)}); use embed_{self.info.modalities[0]} / "
                              f"modality={self.info.modalities[0]}")

    def require_av(self) -> None:
        """A one-line :class:`GlocalError` unless the method has both a video and an audio encoder."""
        missing = [m for m in ("video", "audio") if m not in self.info.modalities]
        if missing:
            raise GlocalError(f"method '{self.info.method}' has no {' or '.join(missing)} encoder (its modalities: "
                              f"{', '.join(self.info.modalities)}), so it makes no audio-visual heat map; localize "
                              "needs an audio-visual checkpoint (e.g. glcm, avid, avts)")

    def video_loader(self, m: Manifest, clips_per_video: int = DEFAULT_CLIPS_PER_VIDEO,
                     batch_size: int | None = None) -> torch.utils.data.DataLoader:
        """``clips_per_video`` uniformly spaced, centre-cropped, normalised clips per video (view ``clip``)."""
        data = self.eval_data(clips_per_video, batch_size)
        sampler = MultiClipSampler(data.clips_per_video, data.clip_frames, data.fps, with_audio=False)
        return eval_loader(eval_dataset(m, data, sampler, with_audio=False), data)

    def audio_loader(self, m: Manifest, clips_per_video: int = DEFAULT_CLIPS_PER_VIDEO,
                     batch_size: int | None = None) -> torch.utils.data.DataLoader:
        """The whole audio track of each file cut into ``clips_per_video`` uniformly spaced crops of one
        clip's length (``"clip/audio"`` ``(B, crops, N)``; plain audio files too), as ``glocal eval sound``."""
        data = self.eval_data(clips_per_video, batch_size)
        return audio_crop_loader(m, data, data.clips_per_video)

    def preprocess_video(self, x: str | os.PathLike | Sequence, clips_per_video: int = 1) -> torch.Tensor:
        """The normalised clips ``(N * clips, 3, T, S, S)`` the video encoder sees for files ``x``."""
        loader = self.video_loader(self._checked(x, "video"), clips_per_video)
        return torch.cat([b["clip/video"] for b in loader])

    def preprocess_audio(self, x: str | os.PathLike | Sequence, clips_per_video: int = 1) -> torch.Tensor:
        """The waveform crops ``(N * crops, samples)`` the audio encoder sees for files ``x``."""
        loader = self.audio_loader(self._checked(x, "audio"), clips_per_video)
        return torch.cat([b["clip/audio"].flatten(0, 1) for b in loader])

    def _checked(self, x: Any, modality: str) -> Manifest:
        m = _as_manifest(x, audio=modality == "audio")
        for path in m.paths.tolist():  # one cheap probe per file: a bad one is named before any work
            reason = unusable_reason(file_state(path), (modality,))
            if reason is not None:
                raise DataError(f"{path}: {reason} (embed_{modality}); `glocal embed` skips such files, "
                                "`glocal scan` lists them")
        return m

    def require_joint(self, space: str = "joint") -> None:
        """A one-line :class:`GlocalError` for an unknown ``space``, or for ``space="joint"`` on a method
        without a joint audio-visual embedding space (no :meth:`Method.joint_video` of its own)."""
        if space not in SPACES:
            raise GlocalError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
        if space == "joint" and type(self.method).joint_video is Method.joint_video:
            raise GlocalError(f"method '{self.info.method}' has no joint audio-visual embedding space (it does not "
                              "contrast video with audio; glcm, avid and avts do); use space=backbone")

    # ------------------------------------------------------------------ embeddings
    def video_fn(self, pool: str = "mean", space: str = "backbone") -> Callable[[Method, dict], torch.Tensor]:
        """``batch -> (B, D)`` global video embedding: the backbone map pooled by ``pool`` (mean | max),
        or with ``space="joint"`` the L2-normalised joint audio-visual embedding (``pool`` unused)."""
        if space == "joint":
            return lambda m, b: m.joint_video(b["clip/video"])
        return lambda m, b: m.pooled_video_features(b["clip/video"], pool)

    def audio_space_fn(self, space: str = "backbone") -> Callable[[Method, dict], torch.Tensor]:
        """``batch -> (B, D)``: :meth:`audio_fn` (``space="backbone"``), or the L2-normalised joint
        embedding of each crop averaged over the file's crops (``space="joint"``)."""
        if space != "joint":
            return self.audio_fn

        def joint(m: Method, b: dict) -> torch.Tensor:
            audio = b["clip/audio"]
            feats = m.joint_audio(audio.flatten(0, 1))
            return feats.reshape(audio.shape[0], audio.shape[1], -1).float().mean(dim=1)

        return joint

    @staticmethod
    def audio_fn(m: Method, b: dict) -> torch.Tensor:
        """``batch -> (B, D)``: the audio embedding of each crop, averaged over the file's crops."""
        audio = b["clip/audio"]
        feats = m.audio_features(audio.flatten(0, 1))
        return feats.reshape(audio.shape[0], audio.shape[1], -1).float().mean(dim=1)

    @torch.no_grad()
    def _tensor_batches(self, x: torch.Tensor | np.ndarray, fn: Callable[[torch.Tensor], Any],
                        batch_size: int | None) -> list[Any]:
        t = torch.as_tensor(x)
        step = int(batch_size or self.batch_size)
        return [fn(t[i:i + step].to(self.device, torch.float32)) for i in range(0, t.shape[0], step)]

    def embed_video(self, x: Inputs, *, clips_per_video: int = DEFAULT_CLIPS_PER_VIDEO, pool: str = "mean",
                    batch_size: int | None = None, maps: bool = False, progress: bool = False,
                    space: str = "backbone") -> Any:
        """Global video embeddings ``(N, D)`` float32 (CPU).

        ``space``: ``"backbone"`` (the pooled backbone feature the linear probe sees) or ``"joint"``
        (the method's joint audio-visual space, comparable with ``embed_audio(..., space="joint")``;
        each clip L2-normalised, a file's clips averaged without renormalising).

        ``x``: a video file, a list of files, a dataset folder / manifest (files: ``clips_per_video``
        uniformly spaced clips averaged per file), or a normalised clip batch ``(B, 3, T, S, S)``
        (one row per clip). With ``maps=True`` returns ``(embeddings, maps)``: ``maps["spatial"]``
        the method's backbone maps (:meth:`Method.video_feature_maps`, a list of ``(N, C, T', h, w)``)
        and ``maps["frames"]`` its per-frame local features ``(N, C, T)``
        (:meth:`Method.local_video_features`), of each clip (files: ``N`` = files x clips).
        """
        self.require("video")
        if space != "backbone":
            self.require_joint(space)
        if pool not in ("mean", "max"):
            raise GlocalError(f"pool must be 'mean' or 'max', got {pool!r}")
        if isinstance(x, (torch.Tensor, np.ndarray)):
            if x.ndim != 5 or x.shape[1] != 3:
                raise GlocalError(f"a video batch is (B, 3, T, H, W) normalised clips; got shape {tuple(x.shape)}")
            fn = self.video_fn(pool, space)
            emb = torch.cat(self._tensor_batches(x, lambda v: fn(self.method, {"clip/video": v}).float().cpu(),
                                                 batch_size))
            return (emb, self._maps(x, batch_size)) if maps else emb
        m = self._checked(x, "video")
        loader = self.video_loader(m, clips_per_video, batch_size)
        feats, _ = extract_features(self.method, loader, self.video_fn(pool, space), device=self.device,
                                    desc="video embeddings", progress=progress)
        emb = torch.from_numpy(feats)
        if not maps:
            return emb
        return emb, self._maps(torch.cat([b["clip/video"] for b in loader]), batch_size)

    def _maps(self, x: torch.Tensor | np.ndarray, batch_size: int | None) -> dict[str, Any]:
        def one(v: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
            spatial = [f.float().cpu() for f in self.method.video_feature_maps(v)]
            try:
                frames = self.method.local_video_features(v).float().cpu()
            except NotImplementedError:
                frames = None
            return spatial, frames

        try:
            parts = self._tensor_batches(x, one, batch_size)
        except NotImplementedError as exc:
            raise GlocalError(str(exc)) from None
        spatial = [torch.cat([p[0][i] for p in parts]) for i in range(len(parts[0][0]))]
        frames = None if parts[0][1] is None else torch.cat([p[1] for p in parts])
        return {"spatial": spatial, "frames": frames}

    def embed_audio(self, x: Inputs, *, clips_per_video: int = DEFAULT_CLIPS_PER_VIDEO,
                    batch_size: int | None = None, progress: bool = False, space: str = "backbone") -> torch.Tensor:
        """Global audio embeddings ``(N, D)`` float32 (CPU).

        ``space``: ``"backbone"`` (the pooled audio trunk feature) or ``"joint"`` (the joint
        audio-visual space of :meth:`embed_video`; each crop L2-normalised, crops averaged).

        ``x``: a media file with an audio track (video or plain audio), a list of files, a dataset
        folder / manifest (the track cut into ``clips_per_video`` uniformly spaced crops of
        ``info.audio_samples`` samples, averaged per file), or a waveform batch ``(B, N)`` at
        ``info.sample_rate`` (one row per waveform).
        """
        self.require("audio")
        if space != "backbone":
            self.require_joint(space)
        if isinstance(x, (torch.Tensor, np.ndarray)):
            if x.ndim != 2:
                raise GlocalError(f"an audio batch is (B, N) mono waveforms at {self.info.sample_rate} Hz; "
                                  f"got shape {tuple(x.shape)}")
            one = self.method.joint_audio if space == "joint" else self.method.audio_features
            return torch.cat(self._tensor_batches(x, lambda a: one(a).float().cpu(), batch_size))
        loader = self.audio_loader(self._checked(x, "audio"), clips_per_video, batch_size)
        feats, _ = extract_features(self.method, loader, self.audio_space_fn(space), device=self.device,
                                    desc="audio embeddings", progress=progress)
        return torch.from_numpy(feats)


    # ------------------------------------------------------------------ localisation
    @torch.no_grad()
    def localize(self, x: Inputs, audio: torch.Tensor | np.ndarray | None = None, *,
                 clips_per_video: int | None = None, batch_size: int | None = None) -> Any:
        """Audio-visual heat maps (:meth:`Method.localization_maps`).

        ``x`` a video file (with an audio track): a :class:`Localization` over the whole video
        (``clips_per_video`` uniformly spaced clips, by default ``ceil(duration / clip length)``); a list of
        files: a list of them. ``x`` a normalised clip batch ``(B, 3, T, S, S)`` with ``audio``
        ``(B, N)`` waveforms: ``(maps (B, T', h, w), frames (T',))`` -- the clip frame of each map.
        A method without audio is a one-line :class:`GlocalError`.
        """
        self.require_av()
        if isinstance(x, (torch.Tensor, np.ndarray)):
            if audio is None or x.ndim != 5 or x.shape[1] != 3 or torch.as_tensor(audio).ndim != 2:
                raise GlocalError("localize(tensor) needs a video batch (B, 3, T, H, W) and audio=(B, N) waveforms; "
                                  f"got {tuple(x.shape)} and {None if audio is None else tuple(audio.shape)}")
            a = torch.as_tensor(audio)
            step = int(batch_size or self.batch_size)
            maps, frames = [], None
            for i in range(0, x.shape[0], step):
                m, frames = self._maps_of(torch.as_tensor(x[i:i + step]), a[i:i + step])
                maps.append(m)
            return torch.cat(maps), frames
        single = isinstance(x, (str, os.PathLike))
        m = self._checked(x, "video")
        self._checked(list(m.paths.tolist()), "audio")
        out = [self._localize_file(p, clips_per_video, batch_size) for p in m.paths.tolist()]
        return out[0] if single and len(out) == 1 else out

    def _maps_of(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            maps, frames = self.method.localization_maps(video.to(self.device, torch.float32),
                                                         audio.to(self.device, torch.float32))
        except NotImplementedError as exc:
            raise GlocalError(str(exc)) from None
        return maps.float().cpu(), torch.as_tensor(frames).cpu()

    def _localize_file(self, path: str, clips_per_video: int | None, batch_size: int | None) -> Localization:
        from ..data.io import probe

        d = self.spec.data
        clip_s = d.clip_frames / d.fps
        n = clips_per_video or max(1, int(np.ceil(probe(path).duration / clip_s - 1e-6)))
        data = self.eval_data(n, batch_size)
        sampler = MultiClipSampler(n, data.clip_frames, data.fps, with_audio=True)
        loader = eval_loader(eval_dataset(manifest_of_files([path]), data, sampler, with_audio=True), data)
        maps, times, crops = [], [], []
        for b in loader:
            hm, frames = self._maps_of(b["clip/video"], b["clip/audio"])
            starts = b["clip/times"][:, 0].double()
            for row in range(hm.shape[0]):
                crop = [float(v) for v in b["clip/crop"][row].tolist()[:4]]
                for k, f in enumerate(frames.tolist()):
                    maps.append(hm[row, k].numpy())
                    times.append(float(starts[row]) + f / d.fps)
                    crops.append(crop)
        order = np.argsort(np.array(times), kind="stable")
        return Localization(path=str(path), maps=np.stack(maps).astype(np.float32)[order],
                            times=np.array(times)[order], crop=np.array(crops, dtype=np.float64)[order])


def load(checkpoint: str | os.PathLike, device: str | torch.device = "auto", *, batch_size: int = 16,
         num_workers: int = 0) -> Encoder:
    """Load a ``glocal pretrain`` checkpoint as an :class:`Encoder` (eval mode, on ``device``:
    ``"auto"`` = CUDA when available). A missing file, a non-checkpoint or a checkpoint of another
    kind is a one-line :class:`~glocal.errors.GlocalError`."""
    if str(device) not in ("auto", "cpu") and str(device).startswith("cuda") and not torch.cuda.is_available():
        raise GlocalError(f"device={device} but no CUDA device is available; use device='auto' or 'cpu'")
    dev = device if isinstance(device, torch.device) else resolve_device(str(device))
    method, spec = load_method(checkpoint, dev)
    return Encoder(method, spec, dev, str(checkpoint), batch_size=batch_size, num_workers=num_workers)
