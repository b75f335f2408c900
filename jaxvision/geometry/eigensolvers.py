"""Smallest eigenpairs of the generalized problem `L u = λ B u`, B diagonal positive.

Coupled Laplacian (Bastico et al., CVPR 2024), Eq. (4)–(5): the eigenmaps are the
eigenvectors of the (coupled) graph Laplacian L against a diagonal "mass" B, sorted by
increasing λ, B-orthonormal (`Uᵀ B U = I`).  Upstream solves it with LOBPCG + an AMG
preconditioner inside a modified scikit-learn `spectral_embedding`; here:

- `'eigsh'`: ARPACK in shift-invert mode around a small negative shift (L - σB is then
  positive definite, so its sparse LU is safe) — the default for large sparse graphs
  (13,000-point clouds, two or three of them coupled);
- `'lobpcg'`: scipy LOBPCG with a Jacobi preconditioner, seeded random start whose
  first column is the degree vector (as upstream);
- `'dense'`: JAX `eigh` of `B^{-1/2} L B^{-1/2}` (float32 on accelerators), for small
  graphs; `'auto'` picks dense below `dense_max_nodes`;
- `'upstream'`: upstream's solver as it runs (scikit-learn `spectral_embedding` with
  `eigen_solver='amg'`, `norm_laplacian=False`, `random_state=42`): LOBPCG with a pyamg
  smoothed-aggregation preconditioner built on `L + 1e-5 I`, start
  `RandomState(seed).standard_normal((n, k + 1))` with the first column the (coupled)
  degrees, scipy's default tolerance and **maxiter = 20** — so at 200 maps the result
  is usually NOT converged.  Below `5 k` nodes scikit-learn switches to ARPACK on `-L`
  around σ = 1 (reproduced).  pyamg draws its spectral-radius estimate from numpy's
  global RNG (upstream never seeds it: `np.random.seed = 42` assigns); here that draw is
  seeded with `seed` and the global state restored.  Needs `pip install jaxvision[upstream]`.

`sign_flip` is upstream's rule (scikit-learn `_deterministic_vector_sign_flip`): each
eigenvector is multiplied by the sign of its largest-magnitude entry.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from scipy.sparse import linalg as spla

SOLVERS = ('auto', 'eigsh', 'lobpcg', 'dense', 'upstream')


def sign_flip(vectors: np.ndarray) -> np.ndarray:
  """Columns multiplied by the sign of their largest-|entry| (first one on ties)."""
  v = np.asarray(vectors)
  rows = np.argmax(np.abs(v), axis=0)
  signs = np.sign(v[rows, np.arange(v.shape[1])])
  signs[signs == 0] = 1.0
  return v * signs[None, :]


def _check(lap, mass, k):
  n = lap.shape[0]
  if lap.shape != (n, n):
    raise ValueError(f'the Laplacian must be square, got shape {lap.shape}')
  b = np.asarray(mass, dtype=np.float64).ravel()
  if b.shape != (n,):
    raise ValueError(f'the mass vector has {b.size} entries for a {n}-node Laplacian')
  if not np.all(np.isfinite(b)) or np.any(b <= 0):
    raise ValueError('the mass matrix B must be diagonal with finite, positive entries '
                     f'(got min {np.min(b) if b.size else "n/a"}); an isolated node has degree 0')
  if not 1 <= k < n:
    raise ValueError(f'asked for {k} eigenpairs of a {n}-node problem')
  return b


@jax.jit
def _dense_eigh(lap, inv_sqrt_b):
  c = lap * inv_sqrt_b[:, None] * inv_sqrt_b[None, :]
  c = 0.5 * (c + c.T)
  vals, vecs = jnp.linalg.eigh(c)
  return vals, vecs * inv_sqrt_b[:, None]


def dense_generalized_eigh(lap, mass, k: int):
  """JAX path: all eigenpairs of the whitened problem, the k smallest returned."""
  b = _check(lap, mass, k)
  lap_dense = lap.toarray() if sp.issparse(lap) else np.asarray(lap)
  dtype = jnp.float64 if jax.config.read('jax_enable_x64') else jnp.float32
  vals, vecs = _dense_eigh(jnp.asarray(lap_dense, dtype), jnp.asarray(1.0 / np.sqrt(b), dtype))
  vals, vecs = np.asarray(vals, np.float64), np.asarray(vecs, np.float64)
  # Re-normalise in float64 so that Uᵀ B U = I holds to double precision per column.
  vecs = vecs[:, :k] / np.sqrt(np.sum(vecs[:, :k] ** 2 * b[:, None], axis=0))
  return vals[:k], vecs


def eigsh_generalized(lap, mass, k: int, *, shift: float = -1e-5, tol: float = 0.0,
                      seed: int = 0):
  """ARPACK shift-invert around `shift * mean(B)`: the k eigenpairs nearest to it."""
  b = _check(lap, mass, k)
  lap = sp.csc_matrix(lap, dtype=np.float64)
  sigma = shift * float(np.mean(b))
  v0 = np.random.default_rng(seed).uniform(-1, 1, lap.shape[0])
  vals, vecs = spla.eigsh(lap, k=k, M=sp.diags(b).tocsc(), sigma=sigma, which='LM',
                          tol=tol, v0=v0)
  order = np.argsort(vals)
  return vals[order], vecs[:, order]


def lobpcg_generalized(lap, mass, k: int, *, seed: int = 0, tol: float | None = None,
                       maxiter: int = 2000):
  """LOBPCG (Jacobi-preconditioned) for the k smallest; start = [degrees, random]."""
  b = _check(lap, mass, k)
  lap = sp.csr_matrix(lap, dtype=np.float64)
  n = lap.shape[0]
  m = min(k + 1, n - 1)  # one extra vector helps LOBPCG (as upstream)
  x = np.random.default_rng(seed).standard_normal((n, m))
  x[:, 0] = lap.diagonal()
  diag = lap.diagonal() + 1e-5 * b
  precond = sp.diags(1.0 / diag)
  vals, vecs = spla.lobpcg(lap, x, B=sp.diags(b), M=precond, tol=tol, largest=False,
                           maxiter=maxiter)
  order = np.argsort(vals)[:k]
  return vals[order], vecs[:, order]


def upstream_amg_lobpcg(lap, mass, k: int, *, seed: int = 42, maxiter: int = 20):
  """scikit-learn's `spectral_embedding(eigen_solver='amg')` path with mass B (module doc).

  Returns the k smallest (λ, u) as that path keeps them (before the sign flip): LOBPCG
  iterates k + 1 vectors and the last is discarded.
  """
  b = _check(lap, mass, k)
  lap = sp.csr_matrix(lap, dtype=np.float64)
  n = lap.shape[0]
  dd = lap.diagonal()                 # csgraph_laplacian's diag: the coupled degrees
  state = np.random.RandomState(seed)
  big_b = sp.diags(b)
  if n < 5 * k:
    # scikit-learn's small-graph branch: ARPACK shift-invert on -L around 1.
    v0 = state.uniform(-1, 1, n)
    vals, vecs = spla.eigsh(-lap.tocsc(), k=k, sigma=1.0, which='LM', tol=0, v0=v0,
                            M=big_b.tocsc())
    order = np.argsort(-vals)         # -L's eigenvalues nearest 0 first = smallest λ
    return -vals[order], vecs[:, order]
  try:
    import pyamg  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("solver='upstream' needs pyamg (pip install 'jaxvision[upstream]' "
                      "or pip install pyamg)") from e
  x = state.standard_normal((n, k + 1))
  x[:, 0] = dd
  saved = np.random.get_state()
  np.random.seed(seed)
  try:
    ml = pyamg.smoothed_aggregation_solver((lap + 1e-5 * sp.eye(n, format='csr')).tocsr())
  finally:
    np.random.set_state(saved)
  with warnings.catch_warnings():   # 20 iterations rarely reach the tolerance: expected
    warnings.simplefilter('ignore', UserWarning)
    vals, vecs = spla.lobpcg(lap, x, B=big_b, M=ml.aspreconditioner(), tol=None,
                             largest=False, maxiter=maxiter)
  order = np.argsort(vals)[:k]
  return vals[order], vecs[:, order]


def smallest_eigenpairs(lap, mass, k: int, *, solver: str = 'auto', seed: int = 0,
                        dense_max_nodes: int = 1000, upstream_maxiter: int = 20):
  """The k smallest eigenpairs of `L u = λ diag(mass) u`, B-orthonormal, sign-flipped."""
  if solver not in SOLVERS:
    raise ValueError(f'eigen solver {solver!r}; expected one of {SOLVERS}')
  n = lap.shape[0]
  if solver == 'auto':
    solver = 'dense' if n <= dense_max_nodes else 'eigsh'
  if solver == 'eigsh' and k >= n - 1:
    solver = 'dense'   # ARPACK needs k < n - 1
  if solver == 'dense':
    vals, vecs = dense_generalized_eigh(lap, mass, k)
  elif solver == 'eigsh':
    vals, vecs = eigsh_generalized(lap, mass, k, seed=seed)
  elif solver == 'upstream':
    # scikit-learn's random_state is fixed at 42 upstream, whatever the caller's seed.
    vals, vecs = upstream_amg_lobpcg(lap, mass, k, seed=42, maxiter=upstream_maxiter)
  else:
    vals, vecs = lobpcg_generalized(lap, mass, k, seed=seed)
  return vals, sign_flip(vecs)
