"""Map-style multi-view audio-visual datasets with deterministic ``(seed, epoch, index)`` sampling.

:class:`MultiViewDataset` serves every method: its :class:`~glocal.data.views.ViewSampler`
plans the views of a sample (GLCM clip, VCLR segment frames, CtrlAug global + locals, AVTS clip
pairs), the union of all their frame times and audio windows is decoded **once**
(:meth:`~glocal.data.io.MediaReader.read_window`: one open, one seek per stream, only frames
that some view shows are converted to RGB) and the views are cut from it.

Sample keys (flat, so :func:`collate_samples` stacks them):

- ``"{view}/video"``: float ``(3, T, S, S)`` from the view's video transform,
  (with ``augment_on_device``: uint8, finished by :func:`glocal.data.photometric.finish_batch`
  from ``"{view}/photo"`` float32 ``(14,)``, or ``(T, 14)`` for per-frame draws),
- ``"{view}/crop"``: float ``(5,)`` = ``(x0, y0, x1, y1, flip)`` in normalised source
  coordinates (``(T, 5)`` for a per-frame transform),
- ``"{view}/times"``: float64 ``(T,)`` the requested frame times (s) (of the source frames when an
  audio-visual edit changes their number),
- ``"{view}/audio"``: float ``(N,)`` mono waveform, ``N = round(duration / audio_speed * sr)``
  (or whatever the view's audio transform returns, e.g. a log-mel ``(F, S)``),
- ``"{view}/audio_mask"``: bool scalar, False when the audio is a stand-in (no audio stream and
  ``missing_audio="silence"``, or a window entirely outside the audio track),
- ``"target/{key}"``: the plan's targets as tensors,
- ``label`` (int64, -1 when unlabelled), ``index`` (the video index actually used),
  ``skipped`` (list of ``"path: reason"`` strings of samples replaced under ``on_error=skip``).

Items: one per manifest row for a :class:`~glocal.data.views.ViewSampler` (training: views drawn
afresh each epoch); ``parts(video)`` per row for a :class:`~glocal.data.views.PartSampler`
(evaluation: uniform clips, sliding windows, a centre clip, an audio track), item order
``(video 0, part 0), (video 0, part 1), ...``.

Randomness: the sampler gets ``default_rng([seed, epoch, index, 0])``, view ``k``'s video
transform ``default_rng([seed, epoch, index, 1, k])`` and its audio transform
``default_rng([seed, epoch, index, 2, k])`` (``k`` = position in the plan), so one view's draws
never shift another's; a view's audio-visual edit (``av_transforms``) draws from
``default_rng(view.seed)`` when the plan fixes one, else ``default_rng([seed, epoch, index, 3, k])``.
The epoch is the item's when the item is an ``(epoch, index)`` pair (what the pretraining batch
sampler yields, so persistent DataLoader workers, which keep their own copy of the dataset, draw
each epoch's samples without being told), else the one of :meth:`MultiViewDataset.set_epoch`
(call it before each epoch). ``ds[(e, i)]`` equals ``ds[i]`` after ``ds.set_epoch(e)``.

Timeline (``timeline="video"``): the video stream's first frame time and duration from the file
(audio-only files: the audio stream); ``timeline="audio"`` (audio-only protocols, audio files):
the audio track from t = 0 to the end of the audio stream. Either is narrowed to the manifest's
``start`` / ``end`` columns (seconds) when present.

Bad input policy: ``on_error="raise"`` raises :class:`DataError` naming the file; ``"skip"``
replaces the sample by another (bounded retries) and reports it in ``skipped`` so the engine can
count and print it. ``missing_audio``: ``"error"`` | ``"skip"`` (replace the sample, even with
``on_error="raise"``) | ``"silence"`` (zeros *with* ``audio_mask=False``, never silent zeros by
accident).
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .audio_transforms import change_speed
from .config import FPS, SAMPLE_RATE
from .io import DecoderThreads, MediaReader, SizeSpec, usable_cores
from .manifest import Manifest
from .transforms import CropParams, compose_crop
from .views import PartSampler, SamplePlan, ViewRequest, ViewSampler, validate_plan

__all__ = [
    "MultiViewDataset",
    "MissingAudioError",
    "collate_samples",
]

#: A video transform: ``(uint8 (T, H, W, 3), rng[, crop=CropParams]) -> (float (3, T, S, S), crop)``.
VideoTransform = Callable[..., tuple[torch.Tensor, Any]]
#: An audio transform: ``(float (N,), rng) -> (tensor, params)``.
AudioTransform = Callable[[torch.Tensor, np.random.Generator], tuple[torch.Tensor, Any]]
#: An audio-visual edit of one view's decoded data, before its video and audio transforms:
#: ``(uint8 (T, H, W, 3) or None, float32 (N,) or None, rng) -> (uint8 (T', H, W, 3) or None, float32 (N',) or None)``.
AVTransform = Callable[
    [np.ndarray | None, np.ndarray | None, np.random.Generator], tuple[np.ndarray | None, np.ndarray | None]
]


class MissingAudioError(DataError):
    """A video without an audio stream, for a method that needs audio."""


def _float_column(manifest: Manifest, name: str) -> np.ndarray | None:
    """A numeric manifest column as float64 (NaN where empty), or None when absent."""
    if not manifest.has_column(name):
        return None
    raw = manifest.column(name)
    if raw.dtype.kind in "fiu":
        return raw.astype(np.float64)
    out = np.full(raw.shape[0], np.nan, dtype=np.float64)
    for i, v in enumerate(raw.tolist()):
        if str(v).strip():
            try:
                out[i] = float(v)
            except ValueError as e:
                raise DataError(f"{manifest.source}: row {i + 1}: column '{name}' = {v!r} is not a number") from e
    return out


def _target_tensor(value: float | int | np.ndarray) -> torch.Tensor:
    """Targets as tensors: ints -> int64, floats -> float32, arrays keep integer/bool dtypes."""
    if isinstance(value, (bool, np.bool_)):
        return torch.tensor(bool(value))
    if isinstance(value, (int, np.integer)):
        return torch.tensor(int(value), dtype=torch.int64)
    if isinstance(value, (float, np.floating)):
        return torch.tensor(float(value), dtype=torch.float32)
    arr = np.asarray(value)
    if arr.dtype.kind in "iub":
        return torch.from_numpy(arr.astype(np.int64) if arr.dtype.kind != "b" else arr.copy())
    return torch.from_numpy(arr.astype(np.float32))


def _crop_tensor(crop: CropParams | list[CropParams] | Any) -> torch.Tensor | None:
    """``(5,)`` (or ``(T, 5)`` for per-frame crops) float32; None for unknown crop objects."""
    if isinstance(crop, CropParams):
        return torch.tensor(crop.as_list(), dtype=torch.float32)
    if isinstance(crop, list) and crop and all(isinstance(c, CropParams) for c in crop):
        return torch.tensor([c.as_list() for c in crop], dtype=torch.float32)
    return None


def _part_items(sampler: ViewSampler | PartSampler, videos: int) -> np.ndarray | None:
    """``(I, 2)`` int64 ``(video, part)`` items of a part sampler; None for a view sampler."""
    if not isinstance(sampler, PartSampler):
        return None
    items = [(v, p) for v in range(videos) for p in range(int(sampler.parts(v)))]
    return np.array(items, dtype=np.int64).reshape(-1, 2)


class MultiViewDataset(Dataset):
    """Multi-view samples from ``manifest`` (see the module docstring for keys and policies).

    Args:
        manifest: the videos (and labels).
        sampler: plans the views of each sample (a part sampler: of each ``(video, part)`` item).
        transforms: video transform per ``ViewRequest.transform`` key.
        audio_transforms: optional audio transform per key (applied after speed change and
            reversal); views whose key has none get the raw waveform.
        av_transforms: optional audio-visual edit per key, applied to a view's decoded frames
            and audio window before everything else (e.g. the fingerprinting edits).
        timeline: ``"video"`` or ``"audio"`` (see the module docstring).
        size: decode size (int: shorter side, aspect kept; ``(H, W)``; None: native).
        sample_rate: audio rate (Hz) of every view.
        seed: base seed of the ``(seed, epoch, index)`` generators.
        on_error, missing_audio, max_retries: the bad-input policy.
        with_audio: False drops every audio request (no audio decoded, no audio keys).
        speed_mode: how ``audio_speed != 1`` is played (:func:`~glocal.data.audio_transforms.change_speed`):
            ``"sinc"`` or ``"linear"`` resampling (tempo and pitch change together), or
            ``"stretch"`` (tempo only, pitch kept: a phase vocoder).
        decoder_threads: video decoder threads per file. ``"auto"`` (default): one thread for
            frames up to 640x480 pixels (threading costs more CPU than it saves time there, see
            :func:`glocal.data.io.auto_decoder_threads`); larger frames get FFmpeg's automatic
            threading in the main process and the usable cores divided by the number of
            workers inside a DataLoader worker. An int: that many threads. None: FFmpeg's
            automatic threading.
        augment_on_device: views whose transform has a ``split`` method (``ClipTransform``)
            come out as uint8 ``"{view}/video"`` (cropped, resized, flipped) plus
            ``"{view}/photo"`` parameters; :func:`glocal.data.photometric.finish_batch` applies
            colour jitter, grayscale, blur and normalisation on the batch, on the training
            device (4x fewer bytes to collate and transfer; same result).
    """

    def __init__(
        self,
        manifest: Manifest,
        sampler: ViewSampler | PartSampler,
        transforms: dict[str, VideoTransform],
        *,
        audio_transforms: dict[str, AudioTransform] | None = None,
        av_transforms: dict[str, AVTransform] | None = None,
        timeline: Literal["video", "audio"] = "video",
        size: SizeSpec = None,
        sample_rate: int = SAMPLE_RATE,
        seed: int = 0,
        on_error: Literal["raise", "skip"] = "raise",
        missing_audio: Literal["error", "skip", "silence"] = "error",
        max_retries: int = 10,
        with_audio: bool = True,
        speed_mode: Literal["sinc", "linear", "stretch"] = "sinc",
        decoder_threads: DecoderThreads = "auto",
        augment_on_device: bool = False,
    ) -> None:
        if len(manifest) == 0:
            raise DataError(f"{manifest.source}: no videos to load")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if missing_audio not in ("error", "skip", "silence"):
            raise ValueError(f"missing_audio must be 'error', 'skip' or 'silence', got {missing_audio!r}")
        if timeline not in ("video", "audio"):
            raise ValueError(f"timeline must be 'video' or 'audio', got {timeline!r}")
        self.manifest = manifest
        self.sampler = sampler
        self.transforms = dict(transforms)
        self.audio_transforms = dict(audio_transforms or {})
        self.av_transforms = dict(av_transforms or {})
        self.timeline = timeline
        self._items = _part_items(sampler, len(manifest))
        self.size = size
        self.sample_rate = int(sample_rate)
        self.seed = int(seed)
        self.on_error = on_error
        self.missing_audio = missing_audio
        self.max_retries = int(max_retries)
        self.with_audio = with_audio
        self.speed_mode = speed_mode
        self.decoder_threads = decoder_threads
        self.augment_on_device = bool(augment_on_device)
        self.set_epoch(0)
        self._seg_start = _float_column(manifest, "start")
        self._seg_end = _float_column(manifest, "end")

    # ------------------------------------------------------------------ indexing hooks
    def __len__(self) -> int:
        return len(self.manifest) if self._items is None else len(self._items)

    def set_epoch(self, epoch: int) -> None:
        """Make random draws of plain ``int`` items depend on the epoch (call before each epoch, as
        with DistributedSampler); a sampler with an ``at_epoch`` method (a curriculum) is moved to
        that epoch. ``(epoch, index)`` items carry their own epoch and ignore this."""
        self.epoch = int(epoch)
        at_epoch = getattr(self.sampler, "at_epoch", None)
        self._epoch_sampler = at_epoch(self.epoch) if at_epoch is not None else self.sampler

    def _sampler_at(self, epoch: int) -> ViewSampler | PartSampler:
        """The sampler as of ``epoch`` (a curriculum's ``at_epoch``; the sampler itself otherwise)."""
        if epoch == self.epoch:
            return self._epoch_sampler
        at_epoch = getattr(self.sampler, "at_epoch", None)
        return at_epoch(epoch) if at_epoch is not None else self.sampler

    def _item_epoch(self, item: int | tuple[int, int]) -> tuple[int, int]:
        """``(epoch, index)`` of an item: an ``(epoch, index)`` pair, or an index at :attr:`epoch`."""
        if isinstance(item, (tuple, list)):
            epoch, index = item
            return int(epoch), int(index)
        return self.epoch, int(item)

    def video_index(self, item: int) -> int:
        """Manifest row of dataset item ``item``."""
        return int(item) if self._items is None else int(self._items[item, 0])

    def plan(
        self, item: int, rng: np.random.Generator, origin: float, duration: float, fps: float,
        epoch: int | None = None,
    ) -> SamplePlan:
        """The views of item ``item``: the sampler's (as of ``epoch``, default the current one) or
        its part's plan."""
        sampler: Any = self._epoch_sampler if epoch is None else self._sampler_at(int(epoch))
        if self._items is None:
            return sampler.plan(rng, origin, duration, fps)
        video, part = self._items[item].tolist()
        return sampler.plan_part(video, part, origin, duration, fps)

    # ------------------------------------------------------------------ loading
    def _timeline(self, vid: int, reader: MediaReader) -> tuple[float, float, float]:
        """``(origin, duration, native fps)`` of the usable part of the file."""
        info = reader.info
        if self.timeline == "audio":
            if not info.has_audio:
                raise MissingAudioError(f"{reader.path}: no audio stream (an audio-only task)")
            origin, duration = 0.0, reader.audio_end()
        elif info.has_video:
            origin, duration = reader.video_span()
        else:
            origin, duration = info.audio_start, info.duration
        end = origin + duration
        if self._seg_start is not None and np.isfinite(self._seg_start[vid]):
            origin = max(origin, float(self._seg_start[vid]))
        if self._seg_end is not None and np.isfinite(self._seg_end[vid]):
            end = min(end, float(self._seg_end[vid]))
        if end <= origin:
            raise DataError(f"{reader.path}: the usable segment [{origin:.3f}, {end:.3f}] s is empty")
        return origin, end - origin, info.fps if info.fps > 0 else FPS

    def _thread_share(self) -> int | None:
        """Cores one decoder of this process may use under the ``"auto"`` policy: inside a
        DataLoader worker the usable cores divided among the workers (at least 1); None in the
        main process (no budget: FFmpeg's automatic threading for large frames)."""
        info = torch.utils.data.get_worker_info()
        return None if info is None else max(1, usable_cores() // max(1, info.num_workers))

    def _snap(self, t: float) -> float:
        """``t`` on the audio sample grid (so cutting views from one window is exact)."""
        return round(t * self.sample_rate) / self.sample_rate

    def load(self, item: int | tuple[int, int]) -> dict[str, Any]:
        """Load one item (an index or an ``(epoch, index)`` pair) without the error policy (raises
        DataError on bad input)."""
        epoch, item = self._item_epoch(item)
        vid = self.video_index(item)
        path = str(self.manifest.paths[vid])
        key = [self.seed, epoch, item]
        with MediaReader(path, threads=self.decoder_threads, max_threads=self._thread_share()) as reader:
            origin, duration, fps = self._timeline(vid, reader)
            plan = self.plan(item, np.random.default_rng([*key, 0]), origin, duration, fps, epoch=epoch)
            views = validate_plan(plan)
            position = {v.name: k for k, v in enumerate(plan.views)}
            video_views = [v for v in views if len(v.times)]
            audio_views = [v for v in views if v.audio is not None] if self.with_audio else []
            if audio_views and not reader.info.has_audio and self.missing_audio != "silence":
                raise MissingAudioError(f"{path}: no audio stream (data.missing_audio={self.missing_audio!r})")
            audio_win = None
            if audio_views:
                starts = [self._snap(v.audio[0]) for v in audio_views]  # type: ignore[index]
                ends = [s + v.audio[1] for s, v in zip(starts, audio_views)]  # type: ignore[index]
                audio_win = (min(starts), max(ends) - min(starts))
            if video_views:
                keep = np.concatenate([np.asarray(v.times, dtype=np.float64) for v in video_views])
                t0, t1 = float(keep.min()), float(keep.max())
            else:
                keep, t0 = None, audio_win[0] if audio_win else origin
                t1 = t0
            win = reader.read_window(
                t0, t1, keep=keep, size=self.size, read_video=bool(video_views), audio=audio_win,
                read_audio=bool(audio_views), sample_rate=self.sample_rate,
            )
        sample: dict[str, Any] = {}
        crops: dict[str, Any] = {}
        for v in views:
            k = position[v.name]
            frames = win.frames_at(v.times) if len(v.times) else None
            wave, real = self._audio_window(v, win) if v.audio is not None and self.with_audio else (None, False)
            edit = self.av_transforms.get(v.transform)
            if edit is not None:
                frames, wave = edit(frames, wave, np.random.default_rng(v.seed if v.seed is not None else [*key, 3, k]))
            if frames is not None:
                self._cut_video(sample, crops, v, np.ascontiguousarray(frames), np.random.default_rng([*key, 1, k]))
            if v.audio is not None and self.with_audio:
                self._cut_audio(sample, v, wave, real, np.random.default_rng([*key, 2, k]))
        for name, value in plan.targets.items():
            sample[f"target/{name}"] = _target_tensor(value)
        sample["label"] = torch.tensor(int(self.manifest.labels[vid]), dtype=torch.int64)
        sample["index"] = torch.tensor(vid, dtype=torch.int64)
        return sample

    def _transform(self, v: ViewRequest) -> VideoTransform:
        if v.transform not in self.transforms:
            raise KeyError(
                f"view {v.name!r} asks for transform {v.transform!r}; the dataset has {sorted(self.transforms)}"
            )
        return self.transforms[v.transform]

    def _cut_video(
        self,
        sample: dict[str, Any],
        crops: dict[str, Any],
        v: ViewRequest,
        frames: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """Transform one view's frames ``(T, H, W, 3)`` and store its keys."""
        tf = self._transform(v)
        clip = torch.from_numpy(frames)
        if v.region_of is not None:
            parent = crops.get(v.region_of)
            if not isinstance(parent, CropParams):
                raise ValueError(
                    f"view {v.name!r}: region_of={v.region_of!r} has no single crop (per-frame or audio-only view)"
                )
            fixed: CropParams | None = compose_crop(parent, v.region)
        else:
            fixed = None
        split = getattr(tf, "split", None) if self.augment_on_device else None
        if split is not None:  # uint8 geometry now, photometry on the training device
            out, crop, sample[f"{v.name}/photo"] = split(clip, rng, crop=fixed)
        else:
            out, crop = tf(clip, rng, crop=fixed) if fixed is not None else tf(clip, rng)
        crops[v.name] = crop
        sample[f"{v.name}/video"] = out
        crop_t = _crop_tensor(crop)
        if crop_t is not None:
            sample[f"{v.name}/crop"] = crop_t
        sample[f"{v.name}/times"] = torch.from_numpy(np.asarray(v.times, dtype=np.float64).copy())

    def _audio_window(self, v: ViewRequest, win: Any) -> tuple[np.ndarray | None, bool]:
        """One view's mono audio window float32 ``(round(duration * sr),)`` and whether any of it is
        real audio; ``(None, False)`` without an audio stream (``missing_audio="silence"``)."""
        if win.audio is None:
            return None, False
        cut, valid = win.audio_at(self._snap(v.audio[0]), float(v.audio[1]))  # type: ignore[index]
        return cut[0], bool(valid.any())

    def _cut_audio(
        self, sample: dict[str, Any], v: ViewRequest, audio: np.ndarray | None, real: bool, rng: np.random.Generator
    ) -> None:
        """Speed-change, reverse and transform one view's audio window (None: silence); store its keys."""
        n_out = max(0, int(round(float(v.audio[1]) / v.audio_speed * self.sample_rate)))  # type: ignore[index]
        if audio is None:  # no audio stream, missing_audio == "silence"
            wave = torch.zeros(n_out)
        else:
            wave = torch.from_numpy(audio)
            if v.audio_speed != 1.0:
                wave, _ = change_speed(wave, v.audio_speed, mode=self.speed_mode, num_out=n_out)
            elif wave.shape[0] != n_out:
                wave = wave[:n_out]
            if v.reverse_audio:
                wave = wave.flip(0)
        atf = self.audio_transforms.get(v.transform)
        if atf is not None:
            wave, _ = atf(wave, rng)
        sample[f"{v.name}/audio"] = wave.contiguous()
        sample[f"{v.name}/audio_mask"] = torch.tensor(real)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        """Item ``item`` (an index, at :attr:`epoch`; or an ``(epoch, index)`` pair) under the
        bad-input policy."""
        skipped: list[str] = []
        epoch, item = self._item_epoch(item)
        candidate = item
        for attempt in range(self.max_retries + 1):
            try:
                sample = self.load((epoch, candidate))
            except DataError as exc:
                skip_it = self.on_error == "skip" or (
                    isinstance(exc, MissingAudioError) and self.missing_audio == "skip"
                )
                if not skip_it:
                    raise
                skipped.append(str(exc))
                # Deterministic replacement: another item drawn from (seed, epoch, item, attempt).
                rng = np.random.default_rng([self.seed, epoch, item, attempt, 7919])
                candidate = int(rng.integers(0, len(self)))
                continue
            sample["skipped"] = skipped
            return sample
        raise DataError(
            f"{self.max_retries + 1} consecutive samples failed to load (data.on_error=skip); "
            f"the dataset looks broken. Last errors: {skipped[-3:]}"
        )


def _stack(values: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack``; inside a DataLoader worker straight into shared memory (as torch's
    default collate does), saving the copy the worker would make when sending the batch."""
    first = values[0]
    if torch.utils.data.get_worker_info() is None or not all(v.shape == first.shape for v in values):
        return torch.stack(values)
    numel = first.numel() * len(values)
    storage = first.untyped_storage()._new_shared(numel * first.element_size(), device=first.device)
    out = first.new(storage).resize_(len(values), *first.shape)
    return torch.stack(values, out=out)


def collate_samples(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors of a list of samples; concatenate the ``skipped`` lists."""
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        if key == "skipped":
            out[key] = [s for v in values for s in v]
        elif isinstance(values[0], torch.Tensor):
            out[key] = _stack(values)
        else:
            out[key] = values
    return out
