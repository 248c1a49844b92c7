"""Tree ensembles as flat node arrays, walked for all rows and all trees at once.

sklearn predicts one tree per call (`HistGradientBoostingClassifier`: one Cython call per
tree and class, each with its own thread set-up; a forest: one joblib task per tree), so
a one-row request pays that overhead per tree. Here every tree of an ensemble is one set
of arrays, and `leaves` advances every (row, tree) pair one level per numpy operation:
`max depth` rounds of a few vectorised gathers, whatever the number of trees.

Decisions are sklearn's: `x <= threshold` goes left, NaN goes where the node's
`missing_go_to_left` says. Leaves point to themselves, so a walk that reached its leaf
stays there for the remaining rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from modelwatch.serving.compiled.preprocess import NotCompilable


@dataclass(frozen=True)
class TreeEnsemble:
    feature: np.ndarray  # per node: the input column it splits on
    threshold: np.ndarray  # per node: go left when x <= threshold
    missing_left: np.ndarray  # per node: NaN goes left
    left: np.ndarray  # per node: child index (itself for a leaf)
    right: np.ndarray
    roots: np.ndarray  # root nodes, deepest tree first
    active: tuple  # per round of the walk: how many trees are still deeper
    order: np.ndarray  # tree i of the ensemble is column order[i] of the walk

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """The leaf index of every (row, tree): shape (rows, trees)."""
        n = X.shape[0]
        node = np.repeat(self.roots[np.newaxis, :], n, axis=0)
        rows = np.arange(n)[:, np.newaxis]
        any_nan = bool(np.isnan(X).any())
        for k in self.active:  # shallow trees drop out of the walk once at their leaves
            walk = node[:, :k]
            x = X[rows, self.feature[walk]]
            go_left = x <= self.threshold[walk]
            if any_nan:
                go_left = np.where(np.isnan(x), self.missing_left[walk], go_left)
            node[:, :k] = np.where(go_left, self.left[walk], self.right[walk])
        return node[:, self.order]


def _concat(trees: list[dict]) -> TreeEnsemble:
    """One ensemble from per-tree arrays (children as tree-local indices, -1 at leaves)."""
    sizes = [len(t["feature"]) for t in trees]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    feature, threshold, missing_left, left, right = [], [], [], [], []
    for start, t in zip(starts, trees):
        own = np.arange(len(t["feature"]), dtype=np.intp) + start
        leaf = t["is_leaf"]
        left.append(np.where(leaf, own, t["left"].astype(np.intp) + start))
        right.append(np.where(leaf, own, t["right"].astype(np.intp) + start))
        feature.append(np.where(leaf, 0, t["feature"]).astype(np.intp))
        threshold.append(t["threshold"].astype("float64"))
        missing_left.append(t["missing_left"].astype(bool))
    depths = np.array([t["depth"] for t in trees])
    deepest_first = np.argsort(-depths, kind="stable")
    active = tuple(int((depths > r).sum()) for r in range(int(depths.max())))
    return TreeEnsemble(
        np.concatenate(feature),
        np.concatenate(threshold),
        np.concatenate(missing_left),
        np.concatenate(left),
        np.concatenate(right),
        starts[deepest_first],
        active,
        np.argsort(deepest_first),
    )


def from_hist_gradient_boosting(model) -> tuple[list[TreeEnsemble], list[np.ndarray]]:
    """Per class column k: the ensemble of the k-th tree of every iteration, and each
    node's leaf value (summed in iteration order by the caller)."""
    ensembles, values = [], []
    for k in range(model.n_trees_per_iteration_):
        trees = []
        for iteration in model._predictors:
            nodes = iteration[k].nodes
            if nodes["is_categorical"].any():
                raise NotCompilable("native categorical splits")
            trees.append(
                {
                    "feature": nodes["feature_idx"],
                    "threshold": nodes["num_threshold"],
                    "missing_left": nodes["missing_go_to_left"],
                    "left": nodes["left"],
                    "right": nodes["right"],
                    "is_leaf": nodes["is_leaf"].astype(bool),
                    "depth": int(nodes["depth"].max()),
                }
            )
        ensembles.append(_concat(trees))
        values.append(
            np.concatenate([iteration[k].nodes["value"] for iteration in model._predictors])
        )
    return ensembles, values


def from_forest(model) -> tuple[TreeEnsemble, np.ndarray]:
    """A random forest's trees, and each node's class probabilities as the tree gives
    them (its class weights, normalised per node as `DecisionTreeClassifier` does)."""
    if getattr(model, "n_outputs_", 1) != 1:
        raise NotCompilable("a multi-output forest")
    trees, probas = [], []
    for estimator in model.estimators_:
        tree = estimator.tree_
        leaf = tree.children_left == -1
        missing = getattr(tree, "missing_go_to_left", None)
        trees.append(
            {
                "feature": tree.feature,
                "threshold": tree.threshold,
                "missing_left": (
                    np.zeros(tree.node_count, bool) if missing is None else np.asarray(missing)
                ),
                "left": tree.children_left,
                "right": tree.children_right,
                "is_leaf": leaf,
                "depth": int(tree.max_depth),
            }
        )
        proba = tree.value[:, 0, : model.n_classes_].copy()
        normalizer = proba.sum(axis=1)[:, np.newaxis]
        normalizer[normalizer == 0.0] = 1.0
        proba /= normalizer
        probas.append(proba)
    return _concat(trees), np.concatenate(probas)
