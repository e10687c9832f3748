"""Every protocol runs on the tiny world and returns finite metrics in their ranges."""

from __future__ import annotations

import math

import pytest

from glocal.eval.suite import TASKS

#: metrics on the ActivityNet 0-100 scale; every other metric is a fraction
PERCENT = {"AR-AN_AUC"}


def _check(result: dict, task: str) -> None:
    metrics = {k: v for k, v in result.items() if k != "meta"}
    assert metrics, task
    for name, value in metrics.items():
        assert isinstance(value, float) and math.isfinite(value), (task, name, value)
        hi = 100.0 if name in PERCENT else 1.0
        assert 0.0 <= value <= hi, (task, name, value)
    assert set(TASKS[task].headline) <= set(metrics), task
    assert isinstance(result.get("meta", {}), dict)


@pytest.mark.parametrize("task", ["linear", "knn", "retrieval", "sound", "localization", "event", "temporal",
                                  "deepfake", "tal", "fingerprint", "finetune"])
def test_task_runs_on_tiny_world(task, tiny_method, make_ctx):
    ctx = make_ctx()
    TASKS[task].requires(ctx)
    _check(TASKS[task].run(tiny_method, ctx), task)


def test_linear_svm_and_knn_k(tiny_method, make_ctx):
    res = TASKS["linear"].run(tiny_method, make_ctx(classifier="svm"))
    _check(res, "linear")
    assert res["meta"]["classifier"] == "svm" and res["meta"]["C"] in (0.01, 0.1, 1.0, 10.0, 100.0)
    res = TASKS["knn"].run(tiny_method, make_ctx(knn_k=3))
    assert res["meta"]["k"] == 3


def test_retrieval_drops_ks_beyond_the_gallery(tiny_method, make_ctx):
    res = TASKS["retrieval"].run(tiny_method, make_ctx())
    gallery = res["meta"]["gallery"]
    assert gallery < 20
    assert {"R@1", "R@5", "R@10"} <= set(res) and "R@20" not in res and res["meta"]["dropped_ks"] == [20, 50]
    assert res["R@1"] <= res["R@5"] <= res["R@10"]


def test_deepfake_says_how_it_split(tiny_method, make_ctx):
    res = TASKS["deepfake"].run(tiny_method, make_ctx())
    assert "50/50" in res["meta"]["split"] and "source video" in res["meta"]["split"]
    assert res["meta"]["test_fake"] * 2 == res["meta"]["test_videos"]


def test_event_class_labels(tiny_method, make_ctx):
    res = TASKS["event"].run(tiny_method, make_ctx(event_labels="class", segment_seconds=0.5))
    _check(res, "event")
    assert res["meta"]["segment_seconds"] == 0.5 and res["meta"]["test_segments"] == 4 * res["meta"]["test_videos"]


def test_localization_with_several_boxes_per_frame(tiny_world, tmp_path, tiny_method, make_ctx):
    """Annotations with one box per annotator per frame: consensus (default) and union ground truth."""
    import json
    import shutil

    world = tmp_path / "world"
    shutil.copytree(tiny_world, world)
    ann = json.loads((world / "annotations.json").read_text())
    for v in ann["videos"].values():  # annotator 1: the true box; annotator 2: the left half of the frame
        v["source_boxes"] = [[b, [0.0, 0.0, 0.5, 1.0]] for b in v["source_boxes"]]
    (world / "annotations.json").write_text(json.dumps(ann))
    cons = TASKS["localization"].run(tiny_method, make_ctx(root=world))
    union = TASKS["localization"].run(tiny_method, make_ctx(root=world, box_merge="union"))
    _check(cons, "localization")
    _check(union, "localization")
    assert cons["meta"]["box_merge"] == "consensus" and union["meta"]["box_merge"] == "union"
    assert cons["mean_cIoU"] != union["mean_cIoU"]


def test_timeline_prefetch_decodes_each_window_once(tiny_world, tiny_method, make_ctx):
    ctx = make_ctx(root=tiny_world)  # a fresh cache
    ctx.timeline_prefetch = ("video_av", "audio", "video")
    TASKS["event"].run(tiny_method, ctx)
    kinds = {key[-1] for key in ctx.cache if key[1] == "timeline"}
    assert kinds == {"video_av", "audio", "video"}
    before = len(ctx.cache)
    TASKS["temporal"].run(tiny_method, ctx)  # served from the cache
    assert len(ctx.cache) == before
    TASKS["deepfake"].run(tiny_method, ctx)  # the fake manifest is not prefetched for "video"
    fake = {key[-1] for key in ctx.cache if key[1] == "timeline" and "fake" in key[2]}
    assert fake == {"video_av", "audio"}


def test_localization_reports_pointing_oracle_and_small_object_warning(tiny_method, make_ctx, capsys):
    res = TASKS["localization"].run(tiny_method, make_ctx())
    _check(res, "localization")
    assert res["gt_area"] < 0.25  # the tiny world's objects are small
    err = capsys.readouterr().err
    assert "cannot exceed 0" in err and f"{res['gt_area']:.1%}" in err and res["meta"]["warnings"]
    assert res["oracle_pointing"] == 1.0 and res["oracle_cIoU@0.5_t0.5"] == 1.0
    assert res["oracle_cIoU@0.5"] == 0.0  # the median rule's ceiling on small objects
    assert res["meta"]["oracle"]["mean_cIoU"] <= 2 * res["gt_area"] + 0.02
    assert "pointing_distractor" in res and res["meta"]["distractor_maps"] > 0
    assert res["meta"]["gt_source"] == {"masks": 0, "boxes": res["meta"]["maps"]}


def test_localization_warns_when_the_maps_point_worse_than_a_centre_point(tiny_method, make_ctx, capsys,
                                                                           monkeypatch):
    """Maps that always peak in the top-left corner: below the centre prior, so a warning names both
    figures; the report carries it in meta.warnings. (The full-frame case in the next test: no warning.)"""
    import torch

    maps_of = tiny_method.localization_maps

    def corner(video, audio):
        maps, frames = maps_of(video, audio)
        peak = torch.zeros_like(maps)
        peak[..., 0, 0] = 1.0
        return peak, frames

    monkeypatch.setattr(tiny_method, "localization_maps", corner)
    res = TASKS["localization"].run(tiny_method, make_ctx())
    assert res["pointing"] < res["centre_pointing"]
    err = capsys.readouterr().err
    line = f"the map's peak lies on the source in {res['pointing']:.1%} of the maps, a fixed point at the frame " \
           f"centre in {res['centre_pointing']:.1%}"
    assert line in err and any(line in w for w in res["meta"]["warnings"])


def test_localization_with_mask_ground_truth(tiny_world, tmp_path, tiny_method, make_ctx, capsys):
    """Masks drawn from the boxes give the boxes' scores; masks win over boxes; large masks: no warning."""
    import json
    import shutil

    import numpy as np

    from glocal.eval.metrics import box_mask

    boxes_res = TASKS["localization"].run(tiny_method, make_ctx())
    capsys.readouterr()
    world = tmp_path / "world"
    shutil.copytree(tiny_world, world)
    ann = json.loads((world / "annotations.json").read_text())
    (world / "masks").mkdir()
    for i, v in enumerate(ann["videos"].values()):  # 32x32 videos, centre crop 32 = the whole frame
        masks = np.stack([box_mask([b], 32, 32) for b in v["source_boxes"]]).astype(np.uint8)
        np.savez_compressed(world / "masks" / f"{i:06d}.npz", masks=masks)
        v["source_masks"] = f"masks/{i:06d}.npz"
        v["distractor_masks"] = [f"masks/{i:06d}.npz"]  # a "distractor" exactly on the source
        v["source_boxes"] = [[0.0, 0.0, 1.0, 1.0]] * len(v["source_boxes"])  # ignored: masks take precedence
    (world / "annotations.json").write_text(json.dumps(ann))
    res = TASKS["localization"].run(tiny_method, make_ctx(root=world))
    same = [k for k in boxes_res if k not in ("meta", "pointing_distractor")]
    assert {k: res[k] for k in same} == pytest.approx({k: boxes_res[k] for k in same})
    assert res["meta"]["gt_source"] == {"masks": res["meta"]["maps"], "boxes": 0}
    assert res["pointing_distractor"] == pytest.approx(res["pointing"])
    capsys.readouterr()
    for i, v in enumerate(ann["videos"].values()):  # full-frame sources: no warning
        n = len(v["source_boxes"])
        np.save(world / "masks" / f"{i:06d}.npy", np.ones((n, 8, 8), dtype=bool))
        v["source_masks"] = f"masks/{i:06d}.npy"
        del v["distractor_masks"]
    (world / "annotations.json").write_text(json.dumps(ann))
    big = TASKS["localization"].run(tiny_method, make_ctx(root=world))
    assert big["gt_area"] == 1.0 and big["pointing"] == 1.0 and not big["meta"]["warnings"]
    assert "warning" not in capsys.readouterr().err


def test_video_pool_max_reaches_linear_knn_and_retrieval(tiny_method, make_ctx):
    from glocal.eval.linear_probe import video_features_by_split

    mean_ctx, max_ctx = make_ctx(), make_ctx(video_pool="max")
    for task in ("linear", "knn", "retrieval"):
        res = TASKS[task].run(tiny_method, max_ctx)
        _check(res, task)
        assert res["meta"]["video_pool"] == "max"
    # the shared cache keeps the two poolings apart, and they differ
    x_mean = video_features_by_split(tiny_method, mean_ctx, ["test"])["test"][0]
    x_max = video_features_by_split(tiny_method, max_ctx, ["test"])["test"][0]
    assert x_mean.shape == x_max.shape and not (abs(x_mean - x_max) < 1e-6).all()


def test_video_pool_sound_reaches_linear_knn_and_retrieval(tiny_method, make_ctx):
    """``video_pool=sound``: the three protocols read each clip with its audio and pool the backbone
    maps by the method's own sound-source map; the features differ from mean pooling and equal
    ``pooled_video_features(.., "sound", audio)`` of the same clips."""
    import numpy as np
    import torch

    from glocal.eval.features import make_loader
    from glocal.eval.linear_probe import video_features_by_split
    from glocal.eval.suite import task_needs

    ctx = make_ctx(video_pool="sound")
    for task in ("linear", "knn", "retrieval"):
        assert task_needs(task, tiny_method, ctx.options) == ("audio", "video")
        res = TASKS[task].run(tiny_method, ctx)
        _check(res, task)
        assert res["meta"]["video_pool"] == "sound"
    x_sound, _ = video_features_by_split(tiny_method, ctx, ["test"])["test"]
    x_mean, _ = video_features_by_split(tiny_method, make_ctx(), ["test"])["test"]
    assert x_sound.shape == x_mean.shape and not (abs(x_sound - x_mean) < 1e-6).all()
    batch = next(iter(make_loader(ctx.split("test"), ctx.data, with_audio=True)))
    tiny_method.eval()
    with torch.no_grad():
        first = tiny_method.pooled_video_features(batch["clip/video"], "sound", batch["clip/audio"])[0]
    rows = batch["index"] == int(batch["index"][0])
    assert int(rows.sum()) == ctx.data.clips_per_video  # the first video's clips are all in the first batch
    with torch.no_grad():
        per_clip = tiny_method.pooled_video_features(batch["clip/video"][rows], "sound", batch["clip/audio"][rows])
    np.testing.assert_allclose(x_sound[0], per_clip.mean(dim=0).numpy(), rtol=1e-4, atol=1e-5)
    assert first.shape[0] == x_sound.shape[1]
