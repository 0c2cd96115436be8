"""QC figure of the evaluate stage: the stage's labels against the phantom's ground truth."""
from __future__ import annotations

import numpy as np

from voxelyte.contract import phase_table
from voxelyte.segment import INVALID, phase_colours
from voxelyte.segment.qc import PHASE_COLOURS


def qc_figure(labels: np.ndarray, truth: np.ndarray, document: dict, phases: dict,
              path) -> None:
    """Write the evaluation's QC figure (PNG): the central xy slice of the ground truth
    (registered frame), of the labels and of the misclassified voxels, and the volume
    fractions against the truth's.

    Parameters
    ----------
    labels : numpy.ndarray
        The segment stage's labels (z, y, x).
    truth : numpy.ndarray
        The truth in the registered frame (``INVALID`` = not scored).
    document : dict
        The evaluation document (:func:`evaluate`).
    phases : dict or PhaseTable
    path : str or Path

    Returns
    -------
    None
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    order, lut = phase_colours(phase_table(phases).labels)
    z = labels.shape[0] // 2
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    axes[0].imshow(lut[np.minimum(truth[z].astype(np.int64), 255)][..., :3],
                   interpolation="nearest")
    axes[0].set_title("ground truth xy (registered frame)")
    axes[1].imshow(lut[labels[z]][..., :3], interpolation="nearest")
    axes[1].set_title("labels xy")
    axes[2].imshow((labels[z] != truth[z]) & (truth[z] != INVALID), cmap="gray_r",
                   interpolation="nearest")
    axes[2].set_title("misclassified xy")
    scored = document["segmentation"]["score_registered_frame"]
    colours = [PHASE_COLOURS[i % len(PHASE_COLOURS)] for i in range(len(order))]
    axes[3].bar(order, [scored["volume_fraction_predicted"][n] for n in order], color=colours)
    axes[3].plot(order, [scored["volume_fraction_truth"][n] for n in order], "k_",
                 markersize=30, label="truth")
    axes[3].legend()
    axes[3].set_ylabel("volume fraction (scored voxels)")
    axes[3].set_title("volume fractions")
    iou = ", ".join(f"{k} {v:.3f}" for k, v in scored["iou"].items())
    fig.suptitle(f"{document['sample']}: labels vs ground truth (registered frame; IoU {iou})")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
