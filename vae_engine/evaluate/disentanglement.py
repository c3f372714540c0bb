"""Code-level disentanglement metrics: MIG, SAP and DCI (ENGINE_SPEC section 7).

Definitions follow google-research/disentanglement_lib (``evaluation/metrics/mig.py``,
``sap_score.py``, ``dci.py``); every open choice is stated here and in
:func:`disentanglement_scores`. Inputs are numpy arrays: codes z (N, D), usually the encoder
means, and ground-truth factors v (N, K).

- **MIG** (Chen et al. 2018, "Isolating sources of disentanglement in VAEs"): each code
  dimension is discretised into 20 equal-width bins over its range (disentanglement_lib's
  ``_histogram_discretize``); I(z_j; v_k) is the plug-in estimate of sklearn's
  ``mutual_info_score`` (nats); H(v_k) = I(v_k; v_k). MIG = mean_k (I_(1) - I_(2)) / H(v_k)
  with I_(1) >= I_(2) the two largest I(z_j; v_k) over j. A factor with H = 0 (constant) is
  left out of the mean.
- **SAP** (Kumar et al. 2018, "Variational inference of disentangled latent concepts"): a
  D x K score matrix, each entry from one code dimension alone. Discrete factor: accuracy on
  the held-out part of a ``LinearSVC(C=0.01, class_weight="balanced")`` fitted on the other
  part; continuous factor: squared Pearson correlation on the whole set. SAP = mean_k (top1 -
  top2) over j.
- **DCI** (Eastwood & Williams 2018, "A framework for the quantitative evaluation of
  disentangled representations"): an importance matrix R (D x K), one classifier per factor
  predicting v_k from all of z; R_jk = the classifier's impurity-based feature importance of
  z_j. *Choice:* disentanglement_lib uses ``GradientBoostingClassifier()`` (100 stages of one
  tree per class: 11,300 trees for the 113 values of the shapes factors, ~minutes on a CPU);
  here it is a ``RandomForestClassifier(n_estimators=20, max_depth=6, max_features=None)``
  (Eastwood & Williams' paper uses random forests too): ~20x cheaper, and with every code
  dimension offered at every split, a dimension that predicts the factor takes the splits.
  Disentanglement = sum_j rho_j (1 - H_K(P_j)), P_jk = R_jk / sum_k R_jk, rho_j = sum_k R_jk /
  sum R; completeness = mean_k (1 - H_D(R_.k / sum_j R_jk)); entropies with log base K and D
  (base 1 -> entropy 0). Informativeness = mean held-out accuracy of the classifiers.

Codes are standardised per dimension (zero mean, unit variance; a constant dimension stays 0)
before any metric: MIG's bins and DCI's trees do not care, but SAP's LinearSVC does (C = 0.01
penalises the weight, so its accuracy depends on the code's scale); with it, permuting,
rescaling or flipping code dimensions changes neither MIG nor SAP, and DCI only within the
forests' seeded randomness (~1e-3: the columns reach the forest in another order).
(disentanglement_lib does not standardise.)

Factors: a *discrete* factor is used as is (its distinct values are the classes). A
*continuous* factor is discretised into 20 equal-width bins for MIG and DCI (which need
classes) and used as is for SAP (squared correlation). Train/held-out split for SAP and DCI:
a seeded permutation, 2/3 train and 1/3 held out. Same seed -> same numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

N_BINS = 20
TRAIN_FRACTION = 2 / 3


def histogram_discretize(x: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """(N, D) values -> (N, D) int bin indices, n_bins equal-width bins per column."""
    out = np.zeros(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        edges = np.histogram(x[:, j], n_bins)[1]
        out[:, j] = np.digitize(x[:, j], edges[:-1])
    return out


def factor_classes(factors: np.ndarray, discrete: Sequence[bool]) -> np.ndarray:
    """(N, K) factors -> (N, K) int class labels: the value's rank among the distinct values
    (discrete factor) or its 20-bin histogram index (continuous factor)."""
    out = np.zeros(factors.shape, dtype=np.int64)
    for k, is_discrete in enumerate(discrete):
        col = factors[:, k]
        if is_discrete:
            out[:, k] = np.unique(col, return_inverse=True)[1].reshape(-1)
        else:
            out[:, k] = histogram_discretize(col[:, None])[:, 0]
    return out


def mutual_info_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Da, Db) plug-in mutual information in nats between the int columns of a and b."""
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(a[:, i], b[:, j]) for j in range(b.shape[1])]
                     for i in range(a.shape[1])])


def mig(codes: np.ndarray, classes: np.ndarray) -> float:
    """Mutual information gap; codes (N, D) real, classes (N, K) int."""
    mi = mutual_info_matrix(histogram_discretize(codes), classes)  # (D, K)
    entropy = np.array([mutual_info_matrix(classes[:, k:k + 1], classes[:, k:k + 1])[0, 0]
                        for k in range(classes.shape[1])])  # (K,)
    keep = entropy > 0
    if mi.shape[0] < 2 or not keep.any():
        return float("nan")
    top = np.sort(mi, axis=0)[::-1]  # (D, K) descending per factor
    return float(np.mean((top[0, keep] - top[1, keep]) / entropy[keep]))


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * TRAIN_FRACTION))
    return perm[:cut], perm[cut:]


def sap(codes: np.ndarray, factors: np.ndarray, classes: np.ndarray,
        discrete: Sequence[bool], seed: int) -> float:
    """Separated attribute predictability; see the module docstring."""
    from sklearn.svm import LinearSVC

    n, d = codes.shape
    tr, te = _split(n, seed)
    score = np.zeros((d, len(discrete)))  # (D, K)
    for k, is_discrete in enumerate(discrete):
        for j in range(d):
            if is_discrete:
                y_tr, y_te = classes[tr, k], classes[te, k]
                if len(np.unique(y_tr)) < 2:
                    continue
                clf = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
                clf.fit(codes[tr, j:j + 1], y_tr)
                score[j, k] = float(np.mean(clf.predict(codes[te, j:j + 1]) == y_te))
            else:
                cov = np.cov(codes[:, j], factors[:, k], ddof=1)
                denom = cov[0, 0] * cov[1, 1]
                score[j, k] = cov[0, 1] ** 2 / denom if denom > 0 else 0.0
    if d < 2:
        return float("nan")
    top = np.sort(score, axis=0)[::-1]
    return float(np.mean(top[0] - top[1]))


def _entropy_base(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row of p (rows sum to 1) with log base ``base`` (0 when base is 1)."""
    if base <= 1:
        return np.zeros(p.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(1) / np.log(base)


def dci(codes: np.ndarray, classes: np.ndarray, seed: int) -> dict[str, Any]:
    """DCI disentanglement, completeness, informativeness and the importance matrix."""
    from sklearn.ensemble import RandomForestClassifier

    n, d = codes.shape
    k_n = classes.shape[1]
    tr, te = _split(n, seed)
    importance = np.zeros((d, k_n))  # (D, K)
    acc = []
    for k in range(k_n):
        forest = RandomForestClassifier(n_estimators=20, max_depth=6, max_features=None,
                                        random_state=seed, n_jobs=1)
        forest.fit(codes[tr], classes[tr, k])
        importance[:, k] = np.abs(forest.feature_importances_)
        acc.append(float(np.mean(forest.predict(codes[te]) == classes[te, k])))
    total = importance.sum()
    if total <= 0:
        return {"dci_disentanglement": 0.0, "dci_completeness": 0.0,
                "dci_informativeness": float(np.mean(acc)), "dci_importance": importance.tolist()}
    per_code = importance.sum(1)  # (D,)
    rows = np.divide(importance, per_code[:, None], out=np.zeros_like(importance),
                     where=per_code[:, None] > 0)
    disent = float(np.sum(per_code / total * (1.0 - _entropy_base(rows, k_n))))
    per_factor = importance.sum(0)  # (K,)
    cols = np.divide(importance, per_factor[None, :], out=np.zeros_like(importance),
                     where=per_factor[None, :] > 0)
    complete = float(np.mean(1.0 - _entropy_base(cols.T, d)))
    return {"dci_disentanglement": disent, "dci_completeness": complete,
            "dci_informativeness": float(np.mean(acc)), "dci_importance": importance.tolist()}


def disentanglement_scores(
    codes: Any, factors: Any, discrete: Sequence[bool] | None = None, seed: int = 0,
) -> dict[str, Any]:
    """MIG, SAP and DCI of codes (N, D) against ground-truth factors (N, K).

    ``codes`` and ``factors`` are numpy arrays or tensors (moved to the CPU as float64).
    ``discrete[k]`` says whether factor k takes a few distinct values (used as classes) or is
    continuous (20-bin histogram for MIG/DCI, squared correlation for SAP); default: all
    discrete. ``seed`` fixes the train/held-out split and the classifiers. Returns ``mig``,
    ``sap``, ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness`` (floats in
    [0, 1]; NaN where undefined, e.g. MIG of a single code dimension), ``dci_importance`` (D x K
    list) and ``n_examples``. The choices (bins, classifiers, split) are in the module
    docstring: MIG 20 equal-width bins, MI normalised by the factor entropy; SAP LinearSVC
    C = 0.01; DCI random forests (20 trees, depth 6), 2/3 train, 1/3 held out.
    """
    z = _standardise(_numpy(codes))
    v = _numpy(factors)
    if z.ndim != 2 or v.ndim != 2 or z.shape[0] != v.shape[0]:
        raise ValueError(f"codes (N, D) and factors (N, K) expected; got {z.shape}, {v.shape}")
    if z.shape[0] < 10:
        raise ValueError(f"need at least 10 examples, got {z.shape[0]}")
    disc = [True] * v.shape[1] if discrete is None else [bool(b) for b in discrete]
    if len(disc) != v.shape[1]:
        raise ValueError(f"discrete has {len(disc)} entries for {v.shape[1]} factors")
    classes = factor_classes(v, disc)
    with warnings.catch_warnings():  # sklearn: "many classes for few samples" on small sets
        warnings.simplefilter("ignore", UserWarning)
        out: dict[str, Any] = {"mig": mig(z, classes), "sap": sap(z, v, classes, disc, seed)}
        out.update(dci(z, classes, seed))
    out["n_examples"] = int(z.shape[0])
    return out


def _standardise(z: np.ndarray) -> np.ndarray:
    if z.ndim != 2:
        return z
    sd = z.std(0)
    return (z - z.mean(0)) / np.where(sd > 0, sd, 1.0)


def _numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().to("cpu").double().numpy()
    return np.asarray(a, dtype=np.float64)
