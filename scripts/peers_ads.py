#!/usr/bin/env python3
"""TF-IDF logistic regression for ad-copy click prediction: the baseline a
data scientist would fit first (scikit-learn).

usage: peers_ads.py VARIANTS_CSV OUT_CSV

Reads the split `edgerec train-ads` exported (row, part, test, headline,
impressions, clicks), fits on the `train` rows, tunes C on the `valid` rows
(pairwise accuracy within tests + AUC, like edgerec's own choice of L2),
and writes `row,p` for every row. `edgerec eval-ads --external
tfidf-logreg=OUT_CSV` then scores it on the held-out tests with the same
metric code as edgerec's model.

Each variant becomes two weighted samples (clicked: weight = clicks,
not clicked: weight = impressions - clicks), which is the binomial
likelihood edgerec fits as well. Features: word 1-2 grams, sublinear tf,
min_df 2.
"""
import csv
import sys

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score


def pairwise(rows, p):
    by_test = {}
    for i, r in enumerate(rows):
        by_test.setdefault(r["test"], []).append(i)
    right = weight = 0.0
    for members in by_test.values():
        for a, i in enumerate(members):
            for j in members[a + 1:]:
                ri, rj = rows[i], rows[j]
                ci, cj = ri["clicks"] / ri["impressions"], rj["clicks"] / rj["impressions"]
                if ri["headline"] == rj["headline"] or ci == cj:
                    continue
                w = ri["impressions"] + rj["impressions"]
                agree = (p[i] - p[j]) * (ci - cj)
                right += w * (1.0 if agree > 0 else 0.5 if p[i] == p[j] else 0.0)
                weight += w
    return right / weight if weight else 0.5


def samples(rows):
    text = [r["headline"] for r in rows] * 2
    y = np.array([1] * len(rows) + [0] * len(rows))
    w = np.array([r["clicks"] for r in rows] + [r["impressions"] - r["clicks"] for r in rows])
    return text, y, w


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
    for r in rows:
        r["impressions"], r["clicks"] = float(r["impressions"]), float(r["clicks"])
    train = [r for r in rows if r["part"] == "train"]
    valid = [r for r in rows if r["part"] == "valid"]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    text, y, w = samples(train)
    x = vectorizer.fit_transform(text)
    best = None
    for c in [0.0001, 0.001, 0.01, 0.1, 1.0, 10.0]:
        model = LogisticRegression(C=c, max_iter=2000).fit(x, y, sample_weight=w / w.mean())
        p = model.predict_proba(vectorizer.transform([r["headline"] for r in valid]))[:, 1]
        vt, vy, vw = samples(valid)
        auc = roc_auc_score(vy, np.concatenate([p, p]), sample_weight=vw)
        score = pairwise(valid, p) + auc
        print(f"C={c}: validation pairwise {pairwise(valid, p):.4f}, AUC {auc:.4f}", file=sys.stderr)
        if best is None or score > best[0]:
            best = (score, c, model)
    _, c, model = best
    p = model.predict_proba(vectorizer.transform([r["headline"] for r in rows]))[:, 1]
    with open(sys.argv[2], "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["row", "p"])
        for r, pi in zip(rows, p):
            out.writerow([r["row"], f"{pi:.8f}"])
    print(f"tfidf-logreg: C={c}, {len(train)} training variants, wrote {sys.argv[2]}", file=sys.stderr)


if __name__ == "__main__":
    main()
