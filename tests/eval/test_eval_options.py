"""`glocal eval` options: EvalOptions built by glocal.config.build from key=value overrides, the old
flags as aliases of the same fields, one-line errors for bad values."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from glocal.cli import build_parser, main
from glocal.config import apply_overrides, build
from glocal.errors import ConfigError
from glocal.eval.cli import OPTION_FLAGS, option_overrides
from glocal.eval.context import EDIT_NAMES, EvalOptions, EvalRunOptions

ROOT = Path(__file__).resolve().parents[2]


def _options(*argv: str) -> EvalRunOptions:
    """The options `glocal eval linear --checkpoint C *argv` would run with."""
    args, extra = build_parser().parse_known_args(["eval", "linear", "--checkpoint", "C", *argv])
    args.overrides = list(args.overrides) + extra
    return build(EvalRunOptions, apply_overrides({}, option_overrides(args)))


def test_key_value_overrides_and_their_flag_aliases_agree():
    by_key = _options("clips_per_video=2", "classifier=svm", "knn_k=3", "retrieval_ks=[1,5]", "faiss=off",
                      "edits=[crop,blur]", "tal_thresholds=[0.2,0.4]", "finetune_lr=1e-3", "num_workers=0")
    by_flag = _options("--clips-per-video", "2", "--classifier", "svm", "--k", "3", "--ks", "1,5", "--faiss", "off",
                       "--edits", "crop,blur", "--tal-thresholds", "0.2,0.4", "--finetune-lr", "1e-3",
                       "--num-workers", "0")
    assert by_key == by_flag
    assert by_key.retrieval_ks == (1, 5) and by_key.edits == ("crop", "blur") and by_key.faiss == "off"
    assert by_key.finetune_lr == 1e-3 and by_key.tal_thresholds == (0.2, 0.4)
    protocol = by_key.protocol_options()
    assert type(protocol) is EvalOptions and protocol.classifier == "svm" and protocol.knn_k == 3
    assert by_key.loader_overrides() == {"clips_per_video": 2, "num_workers": 0}  # batch_size not given
    assert _options() == EvalRunOptions() and EvalRunOptions().loader_overrides() == {}
    assert _options().protocol_options() == EvalOptions()  # same defaults as before
    assert _options("--k", "3", "knn_k=5").knn_k == 5  # key=value after the flags: it wins


def test_every_alias_flag_names_a_field():
    fields = {f.name for f in dataclasses.fields(EvalRunOptions)}
    assert set(OPTION_FLAGS.values()) <= fields
    assert len(set(OPTION_FLAGS.values())) == len(OPTION_FLAGS)
    for flag in ("--clips-per-video", "--batch-size", "--num-workers", "--classifier", "--video-pool", "--k", "--ks",
                 "--segment-seconds", "--event-labels", "--test-clips", "--head-epochs"):  # kept from the old CLI
        assert flag in OPTION_FLAGS


def test_edit_names_are_the_edits_module_s():
    from glocal.eval.edits import EDITS

    assert EDIT_NAMES == tuple(EDITS)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["knn_k=0"], "config key 'knn_k' = 0 is out of range; allowed: [1, inf]"),
        (["--k", "0"], "config key 'knn_k' = 0 is out of range; allowed: [1, inf]"),
        (["--k", "three"], "config key 'knn_k' must be an integer, got 'three'"),
        (["classifier=tree"], "config key 'classifier' = 'tree' is not allowed; allowed values: ['logreg', 'svm']"),
        (["--ks", "1,0"], "config key 'retrieval_ks[1]' = 0 is out of range"),
        (["retrieval_ks=5"], "config key 'retrieval_ks' must be a list, got 5"),
        (["--edits", "crop,rotate"], "config key 'edits[1]' = 'rotate' is not allowed"),
        (["--tal-thresholds", "0.5,1.5"], "config key 'tal_thresholds[1]' = 1.5 is out of range; allowed: [0.0, 1.0]"),
        (["segment_seconds=0"], "config key 'segment_seconds' = 0.0 is out of range; allowed: (0.0, inf]"),
        (["--clips-per-video", "0"], "config key 'clips_per_video' = 0 is out of range; allowed: [1, inf]"),
        (["--num-workers", "-1"], "config key 'num_workers' = -1 is out of range; allowed: [0, inf]"),
        (["knn=3"], "unknown config key 'knn' (did you mean 'knn_k'?)"),
    ],
)
def test_bad_options_are_one_line_errors_before_any_work(argv, message, tmp_path, capsys):
    with pytest.raises(ConfigError) as err:
        _options(*argv)
    assert message in str(err.value), str(err.value)
    # the CLI: exit status 2, one line, before the (missing) checkpoint is opened
    rc = main(["eval", "linear", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "r.json"), *argv])
    err_text = capsys.readouterr().err
    assert rc == 2 and err_text.count("\n") == 1 and message in err_text, err_text
    assert not (tmp_path / "r.json").exists()


def test_docs_list_every_option_with_its_default():
    """docs/evaluation.md "Options" names every key of `glocal eval` and its default."""
    text = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
    section = text[text.index("## Options"):]
    section = section[: section.index("\n## ", 4)]
    for f in dataclasses.fields(EvalRunOptions):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        shown = "[" + ", ".join(str(v) for v in default) + "]" if isinstance(default, tuple) else str(default)
        row = re.search(rf"^\| `{f.name}` \|.*$", section, flags=re.M)
        assert row, f.name
        if default is not None:  # None: the row says what is used instead
            assert f"| `{shown}` |" in row.group(0), (f.name, shown, row.group(0))
    for flag, key in OPTION_FLAGS.items():
        assert f"`{flag}`" in section, flag


def test_cli_eval_takes_key_value_overrides(tiny_checkpoint, tiny_world, tmp_path):
    out = tmp_path / "knn.json"
    rc = main(["eval", "knn", "--checkpoint", str(tiny_checkpoint), "--data", str(tiny_world), "--quiet",
               "--no-random", "num_workers=0", "knn_k=3", "clips_per_video=2", "--out", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["options"]["knn_k"] == 3 and "clips_per_video" not in data["options"]
    assert data["eval_data"]["clips_per_video"] == 2 and data["eval_data"]["num_workers"] == 0
