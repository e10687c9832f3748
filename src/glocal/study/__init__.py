"""``glocal study`` / ``glocal report``: a grid of pretraining + evaluation runs (arm x dataset x seed),
resumable and within a CPU budget, and the report that states per claim whether it holds.

config (:class:`StudyConfig`) -> grid (cells and their resolved pretraining configs) -> runner
(subprocesses, resume, budget, study.json) -> stats (paired tests) -> verdict (per claim) ->
report (report.md + self-contained report.html). See docs/study.md.
"""
