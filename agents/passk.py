"""pass@k: the chance that at least one of k samples proves a problem, estimated without bias.

With n samples of a problem, c of them correct, the estimator of Chen et al. (2021, "Evaluating
Large Language Models Trained on Code") is

    pass@k = 1 - C(n - c, k) / C(n, k)        (k <= n)

the probability that k samples drawn without replacement from the n include a correct one.
It is computed as a product, which never forms the (huge) binomials. A set's pass@k is the
mean over its problems.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem from `n` samples of which `c` are correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n={n}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i = n-c+1}^{n} (1 - k / i)
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems given as (n, c) pairs; 0.0 for no problem."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    return sum(values) / len(values) if values else 0.0


def ks_up_to(n: int) -> list[int]:
    """The k to report for n samples: 1, 2, 4, 8, … up to n, and n itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return [*ks, n] if n >= 1 else []


def pass_at_k_table(counts: Sequence[tuple[int, int]], ks: Sequence[int]) -> dict[int, float]:
    """pass@k for each k that every problem has enough samples for."""
    n_min = min((n for n, _ in counts), default=0)
    return {k: mean_pass_at_k(counts, k) for k in ks if k <= n_min}
