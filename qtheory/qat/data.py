"""The digits task (scikit-learn's 1,797 8×8 images) with a fixed, stratified split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DigitsSplit", "load_digits_split"]


@dataclass(frozen=True)
class DigitsSplit:
    """Pixel codes (uint8, 0..16) and labels of a fixed train/validation/test split.

    The images are stored as their integer pixel values ``0..16``; the network reads
    ``code / 16``, which the 8-bit ``"uint"`` grid with step 1/16 represents exactly, so the input
    of the integer network is the codes themselves and carries no quantization error.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def sizes(self) -> dict:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def load_digits_split(*, val_fraction: float = 0.2, test_fraction: float = 0.2, split_seed: int = 0) -> DigitsSplit:
    """Load scikit-learn's digits (bundled with the package, no download) and split it.

    The split is stratified by class and fixed by ``split_seed``, independent of any training seed.

    Examples
    --------
    >>> d = load_digits_split()
    >>> d.sizes()
    {'train': 1079, 'val': 359, 'test': 359}
    >>> d.x_train.shape, d.x_train.dtype, int(d.x_train.max())
    ((1079, 1, 8, 8), dtype('uint8'), 16)
    """
    from sklearn.datasets import load_digits

    from .._validation import check_int, check_real

    func = "load_digits_split"
    val_fraction = check_real(val_fraction, "val_fraction", func, 0.0, 0.5, low_open=True)
    test_fraction = check_real(test_fraction, "test_fraction", func, 0.0, 0.5, low_open=True)
    split_seed = check_int(split_seed, "split_seed", func, 0)
    ds = load_digits()
    x = ds.images.astype(np.uint8)[:, None]
    y = ds.target.astype(np.int64)
    gen = np.random.default_rng(split_seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in range(10):
        idx = gen.permutation(np.flatnonzero(y == c))
        n_val, n_test = round(val_fraction * len(idx)), round(test_fraction * len(idx))
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val:n_val + n_test])
        parts["train"].append(idx[n_val + n_test:])
    sel = {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
    return DigitsSplit(x[sel["train"]], y[sel["train"]], x[sel["val"]], y[sel["val"]],
                       x[sel["test"]], y[sel["test"]])
