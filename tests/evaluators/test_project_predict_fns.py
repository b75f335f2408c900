"""Projects' prediction functions keep the numbers of the paths they replaced."""

import jax
import numpy as np

from jaxvision.projects.frofa import evaluators as frofa_evaluators


def test_frofa_pooled_features_equal_numpy_bit_for_bit():
  rng = np.random.default_rng(0)
  # (a plain jnp.mean differs from numpy in the last bit for ~5% of these values)
  grids = (rng.standard_exponential(size=(9, 8, 8, 32)) * 10 - 3).astype(np.float32)
  pooled = jax.jit(frofa_evaluators.predict_fns(None, None)['features'])({}, {'features': grids})
  np.testing.assert_array_equal(np.asarray(pooled['features']),
                                grids.reshape(9, -1, 32).mean(1))
