#!/usr/bin/env python3
"""Score an exported split with the peer libraries a shop would try instead.

usage: peers.py EXPORT_DIR OUT_DIR

Reads what `edgerec export` wrote (items.tsv, users.tsv, train.tsv,
test.jsonl) and writes one score matrix per model to OUT_DIR/<model>.f32:
little-endian float32, test cases x items, in test.jsonl and items.tsv order.
`edgerec eval --external <model>=OUT_DIR/<model>.f32` then computes the
metrics with the same full-ranking code as edgerec's own models.

Models (fixed, documented settings; no tuning on the test cases):
  als       implicit.als.AlternatingLeastSquares(factors=64, regularization=0.05,
            iterations=20, alpha=10), user vector recomputed from the case history
  bpr       implicit.bpr.BayesianPersonalizedRanking(factors=64, learning_rate=0.05,
            regularization=0.01, iterations=100), user vector fitted in training
            (cases of users without training data score 0: popularity ties)
  lightfm   lightfm.LightFM(loss="warp", no_components=64), item features = item
            identity + title words (hashed bag of words), 30 epochs; users
            represented by their case history (sum of item representations)
"""
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp


def load(export):
    items = [line.rstrip("\n").split("\t") for line in open(export / "items.tsv", encoding="utf-8")]
    n_items = len(items)
    n_users = sum(1 for _ in open(export / "users.tsv", encoding="utf-8"))
    rows, cols, vals = [], [], []
    for line in open(export / "train.tsv", encoding="utf-8"):
        u, i, c = line.split("\t")
        rows.append(int(u)); cols.append(int(i)); vals.append(float(c))
    train = sp.csr_matrix((np.ones(len(vals), dtype=np.float32), (rows, cols)), shape=(n_users, n_items))
    cases = [json.loads(line) for line in open(export / "test.jsonl", encoding="utf-8")]
    texts = [t[2] if len(t) > 2 else "" for t in items]
    return n_items, n_users, train, cases, texts


def history_matrix(cases, n_items):
    rows, cols = [], []
    for r, c in enumerate(cases):
        for i in set(c["history"]):
            rows.append(r); cols.append(i)
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(cases), n_items))


def write(out, name, scores, started):
    scores = np.ascontiguousarray(scores, dtype="<f4")
    scores.tofile(out / f"{name}.f32")
    print(f"{name}: {scores.shape[0]} cases x {scores.shape[1]} items in {time.time() - started:.1f}s", flush=True)


def run_als(train, cases, n_items, out):
    from implicit.als import AlternatingLeastSquares
    started = time.time()
    model = AlternatingLeastSquares(factors=64, regularization=0.05, iterations=20, alpha=10.0, random_state=42)
    model.fit(train, show_progress=False)
    hist = history_matrix(cases, n_items)
    users = model.recalculate_user(np.arange(len(cases)), hist)
    items = model.item_factors
    users, items = (np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x) for x in (users, items))
    write(out, "als", users @ items.T, started)


def run_bpr(train, cases, n_items, out):
    from implicit.bpr import BayesianPersonalizedRanking
    started = time.time()
    model = BayesianPersonalizedRanking(factors=64, learning_rate=0.05, regularization=0.01, iterations=100, random_state=42)
    model.fit(train, show_progress=False)
    uf = np.asarray(model.user_factors)
    itf = np.asarray(model.item_factors)
    scores = np.zeros((len(cases), n_items), dtype=np.float32)
    for r, c in enumerate(cases):
        if c["user"] >= 0:
            scores[r] = itf @ uf[c["user"]]
    write(out, "bpr", scores, started)


def run_lightfm(train, cases, texts, n_items, out):
    from lightfm import LightFM
    started = time.time()
    vocab = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        rows.append(i); cols.append(i)  # identity feature
        for w in set(re.findall(r"[a-z0-9]+", text.lower())):
            j = vocab.setdefault(w, len(vocab))
            rows.append(i); cols.append(n_items + j)
    feats = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_items, n_items + len(vocab)))
    # Normalize rows so items with long texts do not dominate.
    norms = np.asarray(feats.sum(axis=1)).ravel()
    feats = sp.diags(1.0 / np.maximum(norms, 1)) @ feats
    model = LightFM(loss="warp", no_components=64, learning_rate=0.05, random_state=42)
    model.fit(train.tocoo(), item_features=feats, epochs=30, num_threads=2)
    _, item_repr = model.get_item_representations(feats)
    item_bias, _ = model.get_item_representations(feats)
    hist = history_matrix(cases, n_items)
    users = hist @ item_repr  # a case's user = sum of its history items
    scores = users @ item_repr.T + item_bias[None, :]
    write(out, "lightfm", scores, started)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    export, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    n_items, n_users, train, cases, texts = load(export)
    print(f"{n_users} training users, {n_items} items, {train.nnz} training pairs, {len(cases)} test cases", flush=True)
    run_als(train, cases, n_items, out)
    run_bpr(train, cases, n_items, out)
    try:
        run_lightfm(train, cases, texts, n_items, out)
    except ImportError as e:
        print(f"lightfm: not installed ({e}); skipped", flush=True)


if __name__ == "__main__":
    main()
