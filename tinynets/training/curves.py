"""The training curves: loss and accuracy per epoch, train and test."""
from __future__ import annotations

from typing import Dict, List


def plot_history(history: List[Dict[str, float]], title: str = ""):
    """A matplotlib Figure (no pyplot state): loss and accuracy per epoch, train and test."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 3), layout="tight")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ep = [h["epoch"] for h in history]
    for split, style in (("train", "-o"), ("test", "--s")):
        ax_loss.plot(ep, [h[f"{split}_loss"] for h in history], style, ms=3, label=split)
        ax_acc.plot(ep, [h[f"{split}_acc"] for h in history], style, ms=3, label=split)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", yscale="log",
                title="loss (train: augmented, label-smoothed)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title=f"accuracy (test: {history[-1]['test_acc']:.2%})")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
