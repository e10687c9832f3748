"""Downstream evaluation: one module per protocol, registered in :data:`glocal.eval.suite.TASKS`.

``linear_probe`` / ``knn`` / ``finetune`` / ``retrieval`` (video classes), ``sound_classification``
(audio, ESC-50 k-fold), ``localization`` (sound-source maps; + ``localization_gt`` boxes / masks,
``source_masks``, ``localization_scores`` pointing / mass share / oracle), ``event`` (AVE segments),
``temporal`` (rhythm from the local pathway), ``deepfake`` (AV sync), ``tal`` (temporal action
localisation), ``fingerprint`` (+ ``edits``). Shared pieces: ``context`` (dataset + options),
``features`` / ``timeline`` (frozen clip / per-frame features), ``classifiers``, ``metrics``,
``probes``, ``checkpoint`` (strict loading, random-init twin). See docs/evaluation.md.
"""
