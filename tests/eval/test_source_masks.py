"""Per-frame mask ground truth: file format, crop / flip / resize mapping, precedence over boxes, distractors."""

from __future__ import annotations

import numpy as np
import pytest

from glocal.errors import DataError
from glocal.eval.localization_gt import VideoGroundTruth, frame_gt, frame_index
from glocal.eval.metrics import box_mask
from glocal.eval.source_masks import crop_mask, load_masks

FULL = [0.0, 0.0, 1.0, 1.0, 0.0]


def test_load_masks_npz_npy_and_errors(tmp_path):
    arr = np.zeros((3, 5, 7), dtype=np.uint8)
    arr[1, 2, 3] = 255
    np.savez_compressed(tmp_path / "m.npz", masks=arr)
    np.save(tmp_path / "m.npy", arr.astype(bool))
    for name in ("m.npz", "m.npy"):
        got = load_masks(tmp_path / name)
        assert got.dtype == bool and got.shape == (3, 5, 7) and got.sum() == 1 and got[1, 2, 3]
    np.savez(tmp_path / "wrong_key.npz", mask=arr)
    np.save(tmp_path / "float.npy", arr.astype(np.float32))
    np.save(tmp_path / "2d.npy", arr[0])
    (tmp_path / "junk.npz").write_bytes(b"not a numpy file")
    for name, msg in (("missing.npz", "not found"), ("wrong_key.npz", "no array 'masks'"), ("float.npy", "dtype"),
                      ("2d.npy", "(num_frames, H, W)"), ("junk.npz", "cannot be read")):
        with pytest.raises(DataError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            load_masks(tmp_path / name)


def test_crop_mask_hand_cases():
    m = np.zeros((8, 8), dtype=bool)
    m[0:2, 0:4] = True  # top rows, left half
    np.testing.assert_array_equal(crop_mask(m, FULL, 8), m)
    np.testing.assert_array_equal(crop_mask(m, [0, 0, 1, 1, 1.0], 8), m[:, ::-1])  # flipped
    np.testing.assert_array_equal(crop_mask(m, [0.25, 0.0, 0.75, 0.5, 0.0], 4), m[0:4, 2:6])  # crop, same scale
    np.testing.assert_array_equal(crop_mask(m, FULL, 4), m[1::2, 1::2])  # downscale: pixel under each centre
    up = crop_mask(m, [0.0, 0.0, 0.25, 0.25, 0.0], 4)  # 2x2 source pixels -> 4x4: nearest neighbour
    np.testing.assert_array_equal(up, np.ones((4, 4)))
    assert crop_mask(m, [0.5, 0.5, 1.0, 1.0, 0.0], 4).sum() == 0  # object outside the crop


@pytest.mark.parametrize("crop", [FULL, [0, 0, 1, 1, 1.0], [0.25, 0.0, 0.75, 0.5, 0.0], [0.25, 0.0, 0.75, 0.5, 1.0],
                                  [0.125, 0.25, 0.625, 0.75, 1.0], [0.0, 0.5, 0.5, 1.0, 0.0]])
def test_crop_mask_maps_like_boxes(crop):
    """A box drawn at the native resolution and mapped as a mask = the same box mapped by clip_box."""
    box = [0.1875, 0.125, 0.5625, 0.4375]  # multiples of 1/32: on the pixel grid of both sizes
    native = box_mask([box], 64, 64).astype(bool)
    np.testing.assert_array_equal(crop_mask(native, crop, 16), frame_gt(box, crop, 16))


def test_frame_index():
    assert frame_index(0.0, 16, 64) == 0
    assert frame_index(0.5, 16, 64) == 8
    assert frame_index(0.49, 16, 64) == 7
    assert frame_index(10.0, 16, 64) == 63 and frame_index(-1.0, 16, 64) == 0


def _write(tmp_path, name, frames):
    np.savez(tmp_path / name, masks=np.stack(frames).astype(np.uint8))
    return name


def test_masks_take_precedence_over_boxes(tmp_path):
    left = np.zeros((4, 4), bool)
    left[:, :2] = True
    right = left[:, ::-1]
    ann = {"fps": 2, "source_masks": _write(tmp_path, "src.npz", [left, right]),
           "source_boxes": [[0.0, 0.0, 1.0, 0.25], [0.0, 0.0, 1.0, 0.25]]}  # top row: ignored
    truth = VideoGroundTruth(ann, tmp_path, fps=8.0, merge="consensus", name="v")
    assert truth.uses_masks and not truth.has_distractors
    np.testing.assert_array_equal(truth.source(0.2, FULL, 4), left)  # frame 0 (t < 0.5 s at 2 fps)
    np.testing.assert_array_equal(truth.source(0.6, FULL, 4), right)  # frame 1
    np.testing.assert_array_equal(truth.source(0.6, [0, 0, 1, 1, 1.0], 4), left)  # flipped
    no_masks = {k: v for k, v in ann.items() if k != "source_masks"}
    boxes_only = VideoGroundTruth(no_masks, tmp_path, 8.0, "consensus", "v")
    assert not boxes_only.uses_masks and boxes_only.source(0.0, FULL, 4)[0].sum() == 4


def test_distractors_from_masks_or_boxes(tmp_path):
    a = np.zeros((4, 4), bool)
    a[0, 0] = True
    b = np.zeros((4, 4), bool)
    b[3, 3] = True
    ann = {"source_boxes": [[0.25, 0.25, 0.75, 0.75]], "distractor_masks": [_write(tmp_path, "d0.npz", [a]),
                                                                            _write(tmp_path, "d1.npz", [b])],
           "distractors": [{"label": "x", "boxes": [[0.0, 0.0, 1.0, 1.0]]}]}  # boxes ignored: masks given
    truth = VideoGroundTruth(ann, tmp_path, 8.0, "consensus", "v")
    np.testing.assert_array_equal(truth.distractors(0.0, FULL, 4), a | b)
    del ann["distractor_masks"]
    np.testing.assert_array_equal(VideoGroundTruth(ann, tmp_path, 8.0, "consensus", "v").distractors(0.0, FULL, 4),
                                  np.ones((4, 4)))
    none = VideoGroundTruth({"source_boxes": [[0, 0, 1, 1]]}, tmp_path, 8.0, "consensus", "v")
    assert not none.has_distractors and none.distractors(0.0, FULL, 4).sum() == 0


def test_bad_ground_truth_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no 'source_masks' or 'source_boxes'"):
        VideoGroundTruth({"fps": 8}, tmp_path, 8.0, "consensus", "videos/a.mp4")
    with pytest.raises(DataError, match="videos/a.mp4.*not found"):
        VideoGroundTruth({"source_masks": "masks/a.npz"}, tmp_path, 8.0, "consensus", "videos/a.mp4")
    with pytest.raises(DataError, match="must be a list"):
        VideoGroundTruth({"source_boxes": [[0, 0, 1, 1]], "distractor_masks": "d.npz"}, tmp_path, 8.0, "consensus", "v")
