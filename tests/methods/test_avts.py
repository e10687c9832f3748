"""AVTS recipe: terms = slow references on the method's own embeddings, gradients only to the
online networks, EMA + aligned queues after on_step_end, neighbours once the queue is full,
config checks, and the data hooks on a real file (audio reversed / resampled with the video)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from glocal.config import check
from glocal.data.config import DataConfig
from glocal.methods import build_method
from glocal.methods.base import DIAG_PREFIXES
import torch.nn.functional as F

from glocal.data.dataset import MultiViewDataset, collate_samples
from glocal.data.manifest import Manifest
from glocal.data.samplers import SpeedDirectionSampler
from glocal.errors import ConfigError
from glocal.methods import METHODS, build_method
from glocal.methods.avts import AVTS, AVTSConfig

TINY = dict(depth=10, width_mult=0.125, audio_width_mult=0.125, proj_hidden=32, proj_dim=16, logmel_preset="glcm",
            n_mels=32, queue_size=8, nn_k=2, pretext_hidden=16, momentum=0.9)
SR = 8000
B = 4
DATA = DataConfig(clip_frames=4, fps=8.0, crop_size=16, crop_scale=(0.5, 1.0), flip_p=0.5, jitter=(0.4, 0.4, 0.4, 0.1), jitter_p=0.8,
                       grayscale_p=0.2)
PRETEXT = ("loss_speed_v", "loss_speed_a", "loss_dir_v", "loss_dir_a", "loss_order_vv", "loss_order_aa",
           "loss_order_va")


def _batch(b: int = B) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    batch = {f"{c}/video": torch.randn(b, 3, 4, 32, 32, generator=g) for c in "ab"}
    batch.update({f"{c}/audio": torch.randn(b, SR // 2, generator=g) for c in "ab"})
    batch.update({"target/speed_a": torch.tensor([0, 1, 2, 3])[:b], "target/speed_b": torch.tensor([3, 3, 0, 1])[:b],
                  "target/dir_a": torch.tensor([0, 1, 1, 0])[:b], "target/dir_b": torch.tensor([1, 1, 0, 0])[:b],
                  "target/order_ab": torch.tensor([1, 0, 0, 1])[:b]})
    return batch


def _method(**kw) -> AVTS:
    torch.manual_seed(0)
    m = build_method(AVTSConfig(**{**TINY, **kw}), DataConfig(sample_rate=SR, fps=8.0))
    assert isinstance(m, AVTS)
    return m


def _grads(module: torch.nn.Module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("audio_encoder,speed_direction", [("resnet2d", "separate"), ("resnet1d", "joint")])
def test_losses_finite_and_gradients_reach_online_not_keys(audio_encoder: str, speed_direction: str) -> None:
    m = _method(audio_encoder=audio_encoder, speed_direction=speed_direction, order_va_sync=True)
    assert METHODS["avts"] is AVTS
    losses = m.training_losses(_batch())
    pretext = PRETEXT if speed_direction == "separate" else ("loss_speed_dir_v", "loss_speed_dir_a", *PRETEXT[4:])
    assert {k for k in losses if not k.startswith(DIAG_PREFIXES)} == {"loss", "loss_vv", "loss_va", *pretext}
    assert all(bool(torch.isfinite(v).all()) for v in losses.values())
    total = sum(losses[k].item() for k in ("loss_vv", "loss_va", *pretext))  # all weights 1
    assert losses["loss"].item() == pytest.approx(total, rel=1e-5)
    losses["loss"].backward()
    for part in (m.video.encoder, m.video.head, m.audio.encoder.trunk, m.audio.head, *m.heads.values()):
        assert _grads(part)
    for key_enc in (m.video_key, m.audio_key):
        assert all(p.grad is None and not p.requires_grad for p in key_enc.parameters())


def test_cnn2d_video_backbone_trains_and_gives_frame_maps() -> None:
    """``backbone=cnn2d``: every term finite, gradients reach the frame CNN, and the map the
    localisation reads keeps every frame ``(B, C, T, h, w)``."""
    m = _method(backbone="cnn2d", depth=6, width_mult=0.25, spatial_pool="max")
    losses = m.training_losses(_batch())
    assert all(bool(torch.isfinite(v).all()) for v in losses.values())
    losses["loss"].backward()
    assert _grads(m.video.encoder.trunk)
    clip = _batch()["a/video"]
    with torch.no_grad():
        fmap = m.eval().video_feature_maps(clip)[0]
    assert fmap.shape[:3] == (clip.shape[0], m.video.encoder.out_channels, clip.shape[2])


def test_overlap_order_class_adds_a_class_and_labels_overlapping_pairs(monkeypatch) -> None:
    m = _method(order_overlap_class=True, order_va_sync=True)
    batch = {**_batch(), "target/overlap_ab": torch.tensor([0, 1, 1, 0])}
    seen = []
    real = F.cross_entropy

    def spy(logits, labels, *a, **k):
        seen.append((logits.shape[1], labels.clone()))
        return real(logits, labels, *a, **k)

    monkeypatch.setattr(F, "cross_entropy", spy)
    losses = m.training_losses(batch)
    assert torch.isfinite(losses["loss"])
    order = seen[4:7]  # after speed / direction per modality: order vv, aa, va
    assert [c for c, _ in order] == [3, 3, 4]  # earlier / later / overlap (+ sync for V-A)
    # rows: [a|b] for every sample, then [b|a]; samples 1 and 2 overlap
    assert order[0][1].tolist() == order[1][1].tolist() == [0, 2, 2, 0, 1, 2, 2, 1]  # order_ab = 1, 0, 0, 1
    assert order[2][1][: 2 * B].tolist() == [0, 3, 3, 0, 1, 3, 3, 1] and order[2][1][2 * B :].eq(2).all()


def _ref_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, anchor: torch.Tensor | None, nn_k: int,
             tau: float) -> float:
    """Per row: neighbours by sorting the cosine similarities of ``anchor`` to the queue rows."""
    total = 0.0
    for i in range(q.shape[0]):
        nn: list[int] = []
        if anchor is not None:
            sims = [float(F.cosine_similarity(anchor[i], row, dim=0)) for row in queue]
            nn = sorted(range(len(sims)), key=lambda j: -sims[j])[:nn_k]
        num = math.exp(float(q[i] @ k[i]) / tau) + sum(math.exp(float(q[i] @ queue[j]) / tau) for j in nn)
        den = num + sum(math.exp(float(q[i] @ queue[j]) / tau) for j in range(queue.shape[0]) if j not in nn)
        total += -math.log(num / den)
    return total / q.shape[0]


def _losses_and_embeddings(m: AVTS, batch: dict[str, torch.Tensor]):
    """Without gradients: the method's losses on ``batch``, its clips a then b ``(2B, ...)`` and
    the online / EMA embeddings of both modalities ``(2B, D)``: ``zv, za, kv, ka``."""
    with torch.no_grad():
        losses = m.training_losses(batch)
        video = torch.cat([batch["a/video"], batch["b/video"]])
        audio = torch.cat([batch["a/audio"], batch["b/audio"]])
        embeddings = m.video(video)[1], m.audio(audio)[1], m.video_key(video)[1], m.audio_key(audio)[1]
    return losses, (video, audio), embeddings


@pytest.mark.parametrize("full", [False, True])
def test_contrast_terms_match_reference(full: bool) -> None:
    m = _method().eval()
    if full:  # the queue has been written once (e.g. a resumed run): neighbours switch on
        full_count = torch.tensor(m.cfg.queue_size)
        m.load_state_dict({**m.state_dict(), "video_queue.written": full_count, "audio_queue.written": full_count})
    batch = _batch()
    losses, (video, audio), (zv, za, kv, ka) = _losses_and_embeddings(m, batch)
    qv, qa, tau, a, b = m.video_queue.queue, m.audio_queue.queue, m.cfg.tau, slice(0, B), slice(B, 2 * B)

    def ref(q, k, queue):
        return _ref_nce(q, k, queue, k if full else None, m.cfg.nn_k, tau)

    vv = 0.5 * (ref(zv[a], kv[b], qv) + ref(zv[b], kv[a], qv))
    va = 0.25 * sum(ref(zv[s], ka[s], qa) + ref(za[s], kv[s], qv) for s in (a, b))
    assert losses["loss_vv"].item() == pytest.approx(vv, rel=1e-4)
    assert losses["loss_va"].item() == pytest.approx(va, rel=1e-4)


def test_online_va_keys_use_the_online_embeddings_with_gradients() -> None:
    """``va_keys: online``: V-A keys are the other modality's online embeddings (not the EMA
    copies, which are perturbed here so the two differ); V-V keeps the EMA keys; the V-A term
    alone sends gradients into both encoders through the keys."""
    m = _method(va_keys="online").eval()
    with torch.no_grad():
        for key in (m.video_key, m.audio_key):
            for p in key.parameters():
                p.add_(0.05 * torch.randn_like(p))
    batch = _batch()
    losses, (video, audio), (zv, za, kv, ka) = _losses_and_embeddings(m, batch)
    qv, qa, tau, a, b = m.video_queue.queue, m.audio_queue.queue, m.cfg.tau, slice(0, B), slice(B, 2 * B)

    def ref(q, k, queue):
        return _ref_nce(q, k, queue, None, 0, tau)

    online = 0.25 * sum(ref(zv[s], za[s], qa) + ref(za[s], zv[s], qv) for s in (a, b))
    momentum = 0.25 * sum(ref(zv[s], ka[s], qa) + ref(za[s], kv[s], qv) for s in (a, b))
    assert abs(online - momentum) > 1e-3  # the perturbed EMA copies give other keys
    assert losses["loss_va"].item() == pytest.approx(online, rel=1e-4)
    vv = 0.5 * (ref(zv[a], kv[b], qv) + ref(zv[b], kv[a], qv))
    assert losses["loss_vv"].item() == pytest.approx(vv, rel=1e-4)

    # gradients: the V-A loss alone (weight_vv = weight_pretext = 0) against a differentiable
    # reference whose keys are the online embeddings, so both directions reach both encoders
    m.cfg.weight_vv, m.cfg.weight_pretext = 0.0, 0.0
    m.training_losses(batch)["loss"].backward()
    got = [p.grad.clone() for p in m.video.parameters()]
    m.zero_grad()
    zv, za = m.video(video)[1], m.audio(audio)[1]

    def nce(q, k, queue):
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], dim=1) / tau
        return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))

    (0.25 * sum(nce(zv[s], za[s], qa) + nce(za[s], zv[s], qv) for s in (a, b))).backward()
    for g, p in zip(got, m.video.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-3, atol=1e-6)


def test_va_queue_off_uses_in_batch_keys_only_and_its_chance_level() -> None:
    m = _method(in_batch_negatives=True, va_queue=False).eval()
    batch = _batch()
    losses, (video, audio), (zv, za, kv, ka) = _losses_and_embeddings(m, batch)
    tau, a, b = m.cfg.tau, slice(0, B), slice(B, 2 * B)

    def in_batch(q, k):  # row i: k_i positive, the other rows of k negatives, nothing else
        return sum(-math.log(math.exp(float(q[i] @ k[i]) / tau)
                             / sum(math.exp(float(q[i] @ k[j]) / tau) for j in range(q.shape[0])))
                   for i in range(q.shape[0])) / q.shape[0]

    va = 0.25 * sum(in_batch(zv[s], ka[s]) + in_batch(za[s], kv[s]) for s in (a, b))
    assert losses["loss_va"].item() == pytest.approx(va, rel=1e-4)
    chance = m.loss_chance(batch)
    assert chance["loss_va"] == pytest.approx(math.log(B))
    assert chance["loss_vv"] > chance["loss_va"]  # V-V keeps its queue (and neighbours)
    with pytest.raises(ConfigError, match="va_queue"):
        check(AVTSConfig(**{**TINY, "va_queue": False}))  # type: ignore[arg-type]


def test_queue_rows_reward_merging_the_modalities_and_in_batch_keys_do_not() -> None:
    """Why ``va_queue`` exists. Every query the same point ``u`` and every key the same point
    ``w`` (the two modalities' embeddings before they tell samples apart): with in-batch keys only
    the loss is ``ln N`` whatever ``u·w``; with queue rows elsewhere it falls as ``u`` moves onto
    ``w``, so the gradient pulls the modalities onto one point instead of apart."""
    from glocal.objectives import nn_augmented_nce

    n, d, tau = 8, 16, 0.1
    w = F.normalize(torch.randn(d, generator=torch.Generator().manual_seed(0)), dim=0)
    queue = F.normalize(torch.randn(32, d, generator=torch.Generator().manual_seed(1)), dim=1)
    far, near = F.normalize(torch.randn(d, generator=torch.Generator().manual_seed(2)), dim=0), w
    keys = w.expand(n, d)
    for u in (far, near):
        q = u.expand(n, d)
        assert nn_augmented_nce(q, keys, queue[:0], None, tau=tau, in_batch_negatives=True).item() == pytest.approx(math.log(n))
    queued = [nn_augmented_nce(u.expand(n, d), keys, queue, None, tau=tau, in_batch_negatives=True).item() for u in (far, near)]
    assert queued[1] < queued[0] - 1.0 and queued[1] == pytest.approx(math.log(n), abs=0.05)


def test_neighbour_search_knobs() -> None:
    m = _method(nn_require_full_queue=False)
    q, k = F.normalize(torch.randn(3, 16), dim=1), F.normalize(torch.randn(3, 16), dim=1)
    vq, aq = m.video_queue, m.audio_queue
    assert torch.equal(m._neighbours(q, k, aq, vq), aq.knn(k, 2))  # type: ignore[arg-type]
    m.cfg.nn_anchor, m.cfg.nn_queue = "query", "query"
    assert torch.equal(m._neighbours(q, k, aq, vq), vq.knn(q, 2))  # type: ignore[arg-type]
    assert m._neighbours_active()
    m.cfg.nn_k = 0
    assert not m._neighbours_active()
    assert not _method()._neighbours_active()  # queue not filled yet


def test_on_step_end_updates_keys_and_fills_aligned_queues() -> None:
    m = _method()
    losses = m.training_losses(_batch())
    losses["loss"].backward()
    with torch.no_grad():
        for p in (*m.video.parameters(), *m.audio.parameters()):
            p.add_(0.25)
    before_v = [p.clone() for p in m.video_key.parameters()]
    before_a = [p.clone() for p in m.audio_key.parameters()]
    assert m.video_queue.num_staged == m.audio_queue.num_staged == 2 * B and int(m.video_queue.written) == 0
    staged_v, staged_a = m.video_queue._staged[0].clone(), m.audio_queue._staged[0].clone()
    m.on_step_end()
    for p_t, p_0, p_o in [*zip(m.video_key.parameters(), before_v, m.video.parameters()),
                          *zip(m.audio_key.parameters(), before_a, m.audio.parameters())]:
        assert torch.allclose(p_t, 0.9 * p_0 + 0.1 * p_o, atol=1e-6)
    # 2B = 8 keys (clip a then clip b) fill both queues, row j = the same clip in both
    assert int(m.video_queue.ptr) == int(m.audio_queue.ptr) == 0
    assert int(m.video_queue.written) == int(m.audio_queue.written) == 2 * B
    assert torch.allclose(m.video_queue.queue, F.normalize(staged_v, dim=1), atol=1e-6)
    assert torch.allclose(m.audio_queue.queue, F.normalize(staged_a, dim=1), atol=1e-6)
    assert m._neighbours_active()  # the queue is full: neighbours join the positives from now on
    assert torch.isfinite(m.training_losses(_batch())["loss"])


def test_fill_count_has_a_host_copy_that_follows_steps_and_loads() -> None:
    """The neighbour switch reads the queues' host copy of their fill count (no host sync per
    step); it follows on_step_end and a loaded state dict (resume), also through a wrapping module."""
    m = _method()
    assert m.video_queue.keys_written == 0 and not m._neighbours_active()
    m.training_losses(_batch(2))
    m.on_step_end()
    assert m.video_queue.keys_written == int(m.video_queue.written) == 4 and not m._neighbours_active()
    assert m.audio_queue.keys_written == 4
    fresh = _method()
    wrapper = torch.nn.ModuleDict({"method": fresh})
    wrapper.load_state_dict({f"method.{k}": v for k, v in m.state_dict().items()})
    assert fresh.video_queue.keys_written == fresh.audio_queue.keys_written == 4
    eight = torch.tensor(8)
    fresh.load_state_dict({**fresh.state_dict(), "video_queue.written": eight, "audio_queue.written": eight})
    assert fresh.video_queue.keys_written == 8 and fresh._neighbours_active()


def test_checkpoint_with_the_old_single_fill_count_loads() -> None:
    """Regression: checkpoints written before the queues counted their own keys hold one
    ``enqueued`` buffer; loading one (strict, as a resume does) gives that count to both queues."""
    m = _method()
    m.training_losses(_batch(2))
    m.on_step_end()
    old = {k: v for k, v in m.state_dict().items() if not k.endswith(".written")}
    old["enqueued"] = torch.tensor(4)
    fresh = torch.nn.ModuleDict({"method": _method()})
    fresh.load_state_dict({f"method.{k}": v for k, v in old.items()})  # strict: no missing or unexpected key
    q = fresh["method"]
    assert int(q.video_queue.written) == int(q.audio_queue.written) == 4 and q.audio_queue.keys_written == 4
    assert torch.equal(q.video_queue.queue, m.video_queue.queue)


def test_weights_and_config_checks() -> None:
    m = _method(weight_pretext=0.0, weight_va=2.0).eval()
    with torch.no_grad():
        losses = m.training_losses(_batch())
    assert losses["loss"].item() == pytest.approx(losses["loss_vv"].item() + 2 * losses["loss_va"].item(), rel=1e-5)
    AVTSConfig().validate()
    for bad, match in [
        (dict(nn_k=9, queue_size=8), "nn_k"),
        (dict(gather_negatives=True), "in_batch_negatives"),
        (dict(weight_vv=0.0, weight_va=0.0, weight_pretext=0.0), "nothing to train"),
        (dict(weight_vv=0.0, weight_va=0.0, n_speeds=1, weight_direction=0.0, weight_order_vv=0.0,
              weight_order_aa=0.0, weight_order_va=0.0), "nothing to train"),  # only a one-class speed head
        (dict(weight_vv=0.0, weight_va=0.0, n_speeds=1, reverse_p=0.0, weight_order_vv=0.0,
              weight_order_aa=0.0, weight_order_va=0.0), "nothing to train"),  # one-class speed and direction
        (dict(weight_vv=0.0, weight_va=0.0, n_speeds=1, reverse_p=1.0, speed_direction="joint",
              weight_order_vv=0.0, weight_order_aa=0.0, weight_order_va=0.0), "nothing to train"),
        (dict(weight_vv=0.0, weight_va=0.0, speed_direction="joint", weight_speed=0.0, weight_order_vv=0.0,
              weight_order_aa=0.0, weight_order_va=0.0), "nothing to train"),  # joint: no separate direction head
        (dict(weight_order_va=-1.0), "weight_order_va"),
        (dict(nn_anchor="both"), "nn_anchor"),
        (dict(n_speeds=0), "n_speeds"),
        (dict(audio_seconds=0.0), "audio_seconds"),
    ]:
        with pytest.raises(ConfigError, match=match):
            check(AVTSConfig(**bad))  # type: ignore[arg-type]


def test_in_batch_negatives_option_is_finite() -> None:
    m = _method(in_batch_negatives=True, nn_require_full_queue=False)
    assert torch.isfinite(m.training_losses(_batch())["loss"])


def test_data_hooks_and_eval_hooks() -> None:
    hooks = build_method(AVTSConfig(**TINY, audio_seconds=1.0), DATA)
    sampler = hooks.build_sampler()
    assert isinstance(sampler, SpeedDirectionSampler) and sampler.non_overlapping and sampler.n_speeds == 4
    plan = sampler.plan(np.random.default_rng(0), 0.0, 6.0, 8.0)
    for v in plan.views:
        skip = 2 ** plan.targets[f"speed_{v.name}"]
        start, dur = v.audio  # type: ignore[misc]
        assert dur == pytest.approx(skip) and v.audio_speed == skip  # 1 s after the speed change
        assert start + dur / 2 == pytest.approx(min(v.times) + 4 * skip / 8.0 / 2)  # centred on the clip
    assert set(hooks.transforms()) == {"clip"} and set(hooks.audio_transforms()) == {"clip"}
    m = _method().eval()
    with torch.no_grad():
        assert m.video_features(torch.randn(2, 3, 4, 32, 32)).shape == (2, m.video.encoder.out_channels)
        assert m.audio_features(torch.randn(2, SR)).shape == (2, m.audio.encoder.out_channels)


def test_reversed_samples_reverse_video_and_audio_together(tiny_av_video: Path) -> None:
    """Same seed, reverse_p 0 vs 1: identical speed / start draws, the reversed sample's frames
    and waveform are the exact time reversals of the forward one's; audio length is fixed."""
    manifest = Manifest(root=tiny_av_video.parent, paths=[str(tiny_av_video)] * 2, labels=[0, 0], class_names=["x"])
    data = DataConfig(clip_frames=4, fps=16.0, crop_size=16, crop_scale=(1.0, 1.0), flip_p=0.0, jitter=(0.4, 0.4, 0.4, 0.1), jitter_p=0.0,
                           grayscale_p=0.0)
    samples = []
    for reverse_p in (0.0, 1.0):
        hooks = build_method(AVTSConfig(**TINY, reverse_p=reverse_p, audio_gain=0.0), data)
        ds = MultiViewDataset(manifest, hooks.build_sampler(), hooks.transforms(),
                              audio_transforms=hooks.audio_transforms(), sample_rate=16000, seed=3)
        samples.append(collate_samples([ds[0], ds[1]]))
    fwd, rev = samples
    assert int(rev["target/dir_a"].min()) == 1 and int(fwd["target/dir_a"].max()) == 0
    assert torch.equal(fwd["target/speed_a"], rev["target/speed_a"]) and int(fwd["target/speed_b"].max()) > 0
    for c in "ab":
        assert fwd[f"{c}/audio"].shape == (2, 16000 * 4 // 16)  # T / fps seconds whatever the speed
        assert torch.allclose(rev[f"{c}/video"], fwd[f"{c}/video"].flip(2))
        assert torch.allclose(rev[f"{c}/audio"], fwd[f"{c}/audio"].flip(1))


def test_localization_maps_use_the_online_video_head_per_position() -> None:
    from glocal.methods.common import embedding_heat_maps

    m = _method().eval()
    batch = _batch()
    with torch.no_grad():
        maps, frames = m.localization_maps(batch["a/video"], batch["a/audio"])
        ref, _ = embedding_heat_maps(m.video.encoder.trunk(batch["a/video"]), m.video.head,
                                     m.audio.encoder(batch["a/audio"]), m.audio.head, m.cfg.tau, 4)
    assert maps.dim() == 4 and maps.shape[:2] == (B, frames.numel()) and torch.allclose(maps, ref)
    assert torch.allclose(maps.flatten(2).sum(dim=2), torch.ones(maps.shape[:2]), atol=1e-5)


@pytest.mark.parametrize("va_queue", [True, False])
def test_cross_clip_va_pairs_match_each_clip_with_the_other_clips_audio(va_queue: bool) -> None:
    """``va_pairs: cross_clip``: clip a's video against clip b's audio key and b's against a's (and
    the A-V side alike), the same reference loss as ``same_clip`` with the keys' clips swapped;
    V-V is unchanged. The four embedding sets are fixed random unit rows (forward hooks), so that
    pairing a clip with the wrong audio shows in the loss."""
    g = torch.Generator().manual_seed(5)
    fixed = {name: F.normalize(torch.randn(2 * B, TINY["proj_dim"], generator=g), dim=1)
             for name in ("video", "audio", "video_key", "audio_key")}

    def pinned(**kw) -> AVTS:
        m = _method(in_batch_negatives=True, va_queue=va_queue, **kw).eval()
        for name, z in fixed.items():
            getattr(m, name).register_forward_hook(lambda mod, args, out, z=z: (out[0], z))
        return m

    batch = _batch()
    cross_m, same_m = pinned(va_pairs="cross_clip"), pinned()
    losses, _, (zv, za, kv, ka) = _losses_and_embeddings(cross_m, batch)
    same_losses = _losses_and_embeddings(same_m, batch)[0]
    qv, qa, tau, a, b = cross_m.video_queue.queue, cross_m.audio_queue.queue, cross_m.cfg.tau, slice(0, B), slice(B, 2 * B)

    def ref(q, k, queue):  # -log softmax of q_i.k_i over every row of k (and the queue rows if va_queue)
        rows = torch.cat([k, queue]) if va_queue else k
        return sum(float(torch.logsumexp(q[i] @ rows.T / tau, 0) - q[i] @ k[i] / tau)
                   for i in range(q.shape[0])) / q.shape[0]

    other = {0: b, 1: a}
    cross = 0.25 * sum(ref(zv[s], ka[other[i]], qa) + ref(za[s], kv[other[i]], qv) for i, s in enumerate((a, b)))
    same = 0.25 * sum(ref(zv[s], ka[s], qa) + ref(za[s], kv[s], qv) for s in (a, b))
    assert abs(cross - same) > 0.05
    assert losses["loss_va"].item() == pytest.approx(cross, rel=1e-4)
    assert same_losses["loss_va"].item() == pytest.approx(same, rel=1e-4)
    assert same_losses["loss_vv"].item() == pytest.approx(losses["loss_vv"].item(), rel=1e-6)
    with pytest.raises(ConfigError, match="va_pairs"):
        check(AVTSConfig(**{**TINY, "va_pairs": "shuffled"}))  # type: ignore[arg-type]


def test_chance_hint_suggests_dropping_the_va_queue_only_while_it_is_used() -> None:
    """Regression: a run with ``va_queue=false`` was told to set ``va_queue=false``."""
    assert "method.va_queue=false" in _method().active_chance_hints()["loss_va"]
    def hint(frames: int, **kw) -> str:
        cfg = AVTSConfig(**{**TINY, "in_batch_negatives": True, "va_queue": False, **kw})
        return build_method(cfg, DataConfig(sample_rate=SR, fps=8.0, clip_frames=frames)).active_chance_hints()["loss_va"]

    one_second = hint(8)
    assert "va_queue" not in one_second and "more epochs" in one_second
    assert "method.va_keys=online" in one_second and "method.tau=0.07" in one_second and "2 s clips" in one_second
    assert "method.weight_pretext=0.1" in one_second  # the order tasks at full weight held the V-A term back
    followed = hint(16, va_keys="online", tau=0.07, weight_pretext=0.1)  # all it would suggest: only "more epochs" left
    assert "more epochs" in followed and not any(k in followed for k in ("va_keys", "tau", "2 s clips", "weight_pretext"))


RECIPE = dict(n_speeds=1, reverse_p=0.0, weight_vv=0.0, nn_k=0, in_batch_negatives=True, va_queue=False,
              va_keys="online", weight_order_vv=0.5)  # configs/real/avts.yaml's switches


def _one_speed_batch() -> dict[str, torch.Tensor]:
    """:func:`_batch` as the recipe's sampler draws it: one speed (class 0), forward only."""
    batch = _batch()
    for key in ("target/speed_a", "target/speed_b", "target/dir_a", "target/dir_b"):
        batch[key] = torch.zeros(B, dtype=torch.long)
    return batch


def _all_terms_total(m: AVTS, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The objective as every term is defined, switched-off ones included with weight 0 (a slow reference)."""
    cfg = m.cfg
    video = torch.cat([batch["a/video"], batch["b/video"]])
    audio = torch.cat([batch["a/audio"], batch["b/audio"]])
    b = batch["a/video"].shape[0]
    f_v, z_v = m.video(video)
    f_a, z_a = m.audio(audio)
    k_v = m.video_key(video)[1]
    loss_vv = 0.5 * (m._contrast(z_v[:b], k_v[b:], m.video_queue, m.video_queue, False)
                     + m._contrast(z_v[b:], k_v[:b], m.video_queue, m.video_queue, False))
    loss_va = 0.25 * sum(m._contrast(z_v[s], z_a[s], m.audio_queue, m.video_queue, False, False)
                         + m._contrast(z_a[s], z_v[s], m.video_queue, m.audio_queue, False, False)
                         for s in (slice(0, b), slice(b, 2 * b)))
    pre = m._pretext(f_v, f_a, batch)
    w = {"speed_v": cfg.weight_speed, "speed_a": cfg.weight_speed, "dir_v": cfg.weight_direction,
         "dir_a": cfg.weight_direction, "order_vv": cfg.weight_order_vv, "order_aa": cfg.weight_order_aa,
         "order_va": cfg.weight_order_va}
    return cfg.weight_vv * loss_vv + cfg.weight_va * loss_va + cfg.weight_pretext * sum(w[n] * v for n, v in pre.items())


def test_keys_skipped_switched_off_terms_unreported_and_the_gradients_unchanged() -> None:
    """configs/real/avts.yaml: no V-V, online V-A keys without queue rows, one speed. The key
    encoders are not run, the queues stay empty, loss_vv and the one-class speed terms are neither
    in the losses nor in the chance levels; the loss and every online gradient equal those of the
    objective with every term computed (weight 0 for the switched-off ones)."""
    batch = _one_speed_batch()
    m = _method(**RECIPE).eval()  # eval: BatchNorm without batch statistics, so the two passes match
    calls = []
    for key in (m.video_key, m.audio_key):
        key.register_forward_hook(lambda *a: calls.append(1))
    out = m.training_losses(batch)
    assert calls == [] and m.video_queue.num_staged == 0 and m.audio_queue.num_staged == 0
    terms = {k for k in out if k.startswith("loss_")}
    assert terms == {"loss_va", "loss_order_vv", "loss_order_aa", "loss_order_va"}  # reverse_p 0: one direction
    assert set(m.loss_chance(batch)) == terms
    out["loss"].backward()
    # DDP's contract (find_unused_parameters off): every parameter that requires a gradient gets one
    idle = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert idle == []  # the weight-0 and one-class heads too: the same parameter set in every config
    fast = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    m.zero_grad(set_to_none=True)
    ref = _all_terms_total(m, batch)
    assert out["loss"].item() == pytest.approx(ref.item(), rel=1e-6)
    ref.backward()
    slow = {n: p.grad for n, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert set(slow) <= set(fast) and any(n.startswith("video.") for n in slow)
    for n, g in fast.items():
        torch.testing.assert_close(g, slow.get(n, torch.zeros_like(g)), rtol=1e-5, atol=1e-7, msg=n)


def test_keys_and_queues_run_whenever_a_term_reads_them() -> None:
    for kw in (dict(weight_vv=0.5), dict(va_keys="momentum"), dict(va_queue=True)):
        m = _method(**{**RECIPE, **kw})
        calls = []
        m.video_key.register_forward_hook(lambda *a: calls.append(1))
        out = m.training_losses(_one_speed_batch())
        assert calls and m.video_queue.num_staged == 2 * B, kw
        assert ("loss_vv" in out) == (kw.get("weight_vv", 0) > 0), kw


def test_a_weight_0_head_is_not_reported_but_stays_in_the_graph() -> None:
    m = _method(**{**RECIPE, "weight_order_aa": 0.0})
    out = m.training_losses(_one_speed_batch())
    assert "loss_order_aa" not in out and "loss_order_aa" not in m.loss_chance(_one_speed_batch())
    out["loss"].backward()
    assert all(p.grad is not None for p in m.heads["order_aa"].parameters())  # DDP sees every parameter


@pytest.mark.parametrize("kw, reported", [
    (dict(reverse_p=0.5), {"loss_dir_v", "loss_dir_a"}),  # two directions: trains, reported
    (dict(reverse_p=1.0), set()),  # always reversed: one class
    (dict(n_speeds=2), {"loss_speed_v", "loss_speed_a"}),
    (dict(speed_direction="joint"), set()),  # one speed, one direction: one joint class
    (dict(speed_direction="joint", reverse_p=0.5), {"loss_speed_dir_v", "loss_speed_dir_a"}),
])
def test_only_pretext_heads_of_two_or_more_classes_are_reported(kw, reported) -> None:
    """A head whose target has one class (its loss goes to 0 within an epoch) trains nothing the
    log should show: it is neither among the losses nor checked against chance."""
    m = _method(**{**RECIPE, **kw})
    m.cfg.validate()
    batch = _batch()  # targets as the sampler would draw them under these switches
    for key in ("target/speed_a", "target/speed_b"):
        batch[key] = batch[key] % m.cfg.n_speeds
    if m.cfg.reverse_p in (0.0, 1.0):
        for key in ("target/dir_a", "target/dir_b"):
            batch[key] = torch.full((B,), int(m.cfg.reverse_p), dtype=torch.long)
    out = m.training_losses(batch)
    assert {k for k in out if k.startswith(("loss_speed", "loss_dir"))} == reported
    assert {k for k in m.loss_chance(batch) if k.startswith(("loss_speed", "loss_dir"))} == reported


def test_term_weights_are_the_one_source_of_what_is_reported() -> None:
    """The recipe's effective weights: V-V 0, one-class direction heads 0, order heads at a tenth
    of their own weight; the reported terms and the shared trained_loss_chance follow them."""
    m = _method(**{**RECIPE, "weight_pretext": 0.1})
    w = m.term_weights()
    assert w["loss_vv"] == 0.0 and w["loss_dir_v"] == 0.0 and w["loss_va"] == 1.0
    assert w["loss_order_vv"] == pytest.approx(0.05) and w["loss_order_aa"] == pytest.approx(0.1)
    batch = _one_speed_batch()
    assert set(m.trained_loss_chance(batch)) == m._reported() == {k for k, v in w.items() if v > 0}
