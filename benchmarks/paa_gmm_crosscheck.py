"""Check: PAA's EM (``ultralytics_fss.assign.paa.gmm_em_1d``, vectorised over GTs) against scikit-learn's
``GaussianMixture``, called as PAA's code (kkhoot/PAA) and MMDetection's ``PAAHead`` call it: two components, weights
(0.5, 0.5), means at the min and max of the samples, precisions 1, sklearn's defaults otherwise.

The tests check the EM against a plain-Python loop reference (``tests/reference_baselines.py``); this script checks
that reference's rules are sklearn's, on random 1-D sample sets of 2 to 40 values (uniform, two clusters, ties),
fitted all at once by ``gmm_em_1d`` and one by one by sklearn. Prints how many component labels agree and the largest
difference of the log densities. Needs scikit-learn, which this package does not require: ``pip install scikit-learn``.

Examples:
    python benchmarks/paa_gmm_crosscheck.py               # 600 fits, both of sklearn's covariance types
    python benchmarks/paa_gmm_crosscheck.py --fits 5000
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ultralytics_fss.assign.paa import gmm_em_1d


def sample_sets(n: int, seed: int = 0) -> list[np.ndarray]:
    """`n` random 1-D sample sets: uniform, two clusters of random spread, and sets with repeated values."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(2, 41))
        if i % 3 == 0:
            x = rng.uniform(0, 3, k)
        elif i % 3 == 1:
            x = rng.normal(0, rng.uniform(0.05, 0.5), k) + 2.5 * (rng.random(k) < 0.4)
        else:
            x = rng.choice(rng.uniform(0, 2, 4), k)  # ties
        out.append(np.abs(x))
    return out


def main(argv: list[str] | None = None) -> None:
    """Fit every set both ways and print the agreement."""
    from sklearn.mixture import GaussianMixture

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fits", type=int, default=600, help="random sample sets (default: 600)")
    a = p.parse_args(argv)
    sets = sample_sets(a.fits)
    width = max(len(x) for x in sets)
    values = torch.zeros(len(sets), width, dtype=torch.float64)
    valid = torch.zeros(len(sets), width, dtype=torch.bool)
    for g, x in enumerate(sets):
        values[g, : len(x)], valid[g, : len(x)] = torch.from_numpy(x), True
    component, density = gmm_em_1d(values, valid)
    for cov in ("full", "diag"):
        same, worst = 0, 0.0
        for g, x in enumerate(sets):
            gmm = GaussianMixture(2, covariance_type=cov, weights_init=[0.5, 0.5],
                                  means_init=[[x.min()], [x.max()]], precisions_init=[[[1.0]], [[1.0]]]
                                  if cov == "full" else [[1.0], [1.0]])  # fmt: skip
            gmm.fit(x[:, None])
            same += component[g, : len(x)].tolist() == gmm.predict(x[:, None]).tolist()
            worst = max(worst, float(np.abs(density[g, : len(x)].numpy() - gmm.score_samples(x[:, None])).max()))
        print(f"sklearn covariance_type={cov!r}: {same}/{len(sets)} fits with every component label equal, largest "
              f"log-density difference {worst:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
