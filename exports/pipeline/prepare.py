"""Claim the output directory for this run: open it (making it if needed), refuse a completed
export there unless ``-overwrite``, else set that export's files aside until this one is whole.

Which names mark a completed export, and which describe one, each step declares
(``Step.marker_names``, ``Step.companion_names``): a new step's files are covered by its own
declaration.
"""

from __future__ import annotations

from exports.pipeline.step import ExportRun, Step


class PrepareOutput(Step):
    def run(self, run: ExportRun) -> None:
        run.output.prepare(
            completed_marker_names=[name for step in run.steps for name in step.marker_names(run.stem)],
            overwrite=run.options.overwrite,
            # What describes a previous export: replaced with it, even when this run makes no such file.
            companion_names=[name for step in run.steps for name in step.companion_names(run.stem)],
        )
