"""A small live plot of training curves, embedded in a dock widget (matplotlib's Qt canvas)."""

from __future__ import annotations

import math


class TrainingCurves:
    """Loss (left axis, log scale) and validation PSNR (right axis) against the step."""

    def __init__(self, height: float = 2.6):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, height), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(int(height * 70))
        self.ax = self.figure.add_subplot(111)
        self.ax_psnr = self.ax.twinx()
        self.clear()

    def clear(self):
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.val_steps: list[int] = []
        self.psnrs: list[float] = []
        self.input_psnr = math.nan
        self.redraw()

    def add_loss(self, step: int, loss: float):
        self.steps.append(step)
        self.losses.append(loss)

    def add_validation(self, step: int, psnr: float, input_psnr: float):
        self.val_steps.append(step)
        self.psnrs.append(psnr)
        self.input_psnr = input_psnr

    def load_log(self, path, upto: int) -> None:
        """Replace the curves by a run's ``log.csv`` up to step ``upto`` (a resumed run goes on from
        there, also in a new napari session); a missing or unreadable log leaves them empty."""
        import csv

        self.clear()
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except (OSError, csv.Error):
            return
        for r in rows:
            try:
                step = int(r["step"])
                if step > upto:
                    continue
                self.add_loss(step, float(r["loss"]))
                if r.get("val_psnr"):
                    self.add_validation(step, float(r["val_psnr"]), float(r.get("input_psnr") or "nan"))
            except (KeyError, TypeError, ValueError):
                continue
        self.redraw()

    def redraw(self):
        ax, ax2 = self.ax, self.ax_psnr
        ax.clear()
        ax2.clear()
        # clear() puts a twin axis' ticks and label back on the left, over the loss axis
        ax2.yaxis.tick_right()
        ax2.yaxis.set_label_position("right")
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("loss", fontsize=8, color="tab:blue")
        ax2.set_ylabel("val PSNR (dB)", fontsize=8, color="tab:orange")
        ax.tick_params(labelsize=7)
        ax2.tick_params(labelsize=7)
        if self.losses:
            ax.plot(self.steps, self.losses, color="tab:blue", lw=0.8)
            if min(self.losses) > 0:
                ax.set_yscale("log")
        if self.psnrs:
            ax2.plot(self.val_steps, self.psnrs, "o-", color="tab:orange", ms=3, lw=1, label="network")
            if math.isfinite(self.input_psnr):
                ax2.axhline(self.input_psnr, color="tab:gray", ls="--", lw=0.8, label="blurry input")
            ax2.legend(fontsize=7, loc="lower right")
        self.canvas.draw_idle()
