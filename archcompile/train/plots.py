"""Training curves and confusion matrices as PNG files (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted

import matplotlib.pyplot as plt

from archcompile.files import PNG_SOFTWARE, Owner, is_archc_png, read_header, write_output
from archcompile.train.evaluate import Evaluation
from archcompile.train.rundir import read_metrics

#: recorded in every PNG archc writes, so that it can recognize its own files
SOFTWARE = PNG_SOFTWARE


def _save(fig, out: Path, parents: bool = False) -> None:
    """Save ``fig`` as a PNG at ``out`` atomically, marked as archc's."""
    try:
        write_output(
            out,
            lambda tmp: fig.savefig(tmp, dpi=110, format="png", metadata={"Software": SOFTWARE}),
            parents,
        )
    finally:
        plt.close(fig)


def recognize_png(fd: int) -> Owner:
    """Whether the open file ``fd`` is a PNG archc wrote (from its header)."""
    return Owner.ARCHC if is_archc_png(read_header(fd)) else Owner.OTHER


def plot_curves(metrics_path: Path, out: Path, title: str) -> None:
    """Loss and accuracy against the step: training per logged step, test per evaluation."""
    records = read_metrics(metrics_path)
    train = [r for r in records if r.get("type") == "train"]
    test = [r for r in records if r.get("type") == "eval"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        if train:
            ax.plot(
                [r["step"] for r in train],
                [r.get(key) for r in train],
                lw=0.6,
                alpha=0.7,
                label=f"train {label} (batch)",
            )
        if test:
            ax.plot([r["step"] for r in test], [r[key] for r in test], "o-", label=f"test {label}")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_acc.set_ylim(0, 1)
    fig.suptitle(title)
    _save(fig, out)


def plot_confusion(evaluation: Evaluation, out: Path, title: str) -> None:
    matrix = evaluation.confusion.numpy()
    fig, ax = plt.subplots(figsize=(8, 7), constrained_layout=True)
    image = ax.imshow(matrix, cmap="Blues")
    names = evaluation.class_names
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if matrix[i, j] > threshold else "black",
            )
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(f"{title}: accuracy {evaluation.accuracy:.2%}")
    _save(fig, out)
