"""Shared building blocks: logical-axis boxing, one Dense, LayerNorm and a feed-forward MLP.

* `boxed(init, *names)`: an initializer whose parameter carries logical axis names
  (`nn.with_logical_partitioning`), the vocabulary `jaxvision.sharding` maps to a mesh.
* `Dense`: y = x . W + b contracting the last `in_dims` input dims with a kernel of
  shape (*in, *features). Parameters are created at their final shape (flax's
  DenseGeneral reshapes a boxed init, which breaks the logical constraint for kernels
  of more than two dims) but drawn as the flat (prod(in), prod(features)) matrix, so
  fan-in/fan-out, and the values for one seed, equal those of a 2-D Dense.
  `torch_init=True` is PyTorch's `nn.Linear` default, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  for kernel and bias (He et al.'s kaiming_uniform with a = sqrt(5) reduces to that).
* `TorchLinear`: the 2-D `Dense` with PyTorch's init, for ports of PyTorch models.
* `layer_norm(name, eps)`: LayerNorm with its scale/bias on the 'norm' axis.
* `Mlp`: Dense(width -> hidden) -> activation -> dropout -> Dense(hidden -> width), the
  Transformer feed-forward block (Vaswani et al. 2017, Sec. 3.3).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

Init = Callable[..., jax.Array]


def boxed(init: Init, *names: Optional[str]) -> Init:
  """`init` whose parameters are annotated with the logical axis `names`."""
  return nn.with_logical_partitioning(init, names)


def flat_init(init: Init, n_in: int) -> Init:
  """`init` drawn for the (prod(shape[:n_in]), prod(shape[n_in:])) matrix, reshaped."""
  def init_fn(key, shape, dtype=jnp.float32):
    flat = (math.prod(shape[:n_in]), math.prod(shape[n_in:]))
    return jnp.reshape(init(key, flat, dtype), shape)
  return init_fn


def torch_uniform(fan_in: int) -> Init:
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's nn.Linear default for W and b."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


ACTIVATIONS = {
    'gelu_tanh': lambda x: jax.nn.gelu(x, approximate=True),   # flax's nn.gelu, big_vision
    'gelu': lambda x: jax.nn.gelu(x, approximate=False),       # exact, PyTorch's default
    'quick_gelu': lambda x: x * jax.nn.sigmoid(1.702 * x),     # CLIP
    'relu': jax.nn.relu,
    'silu': jax.nn.silu,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
  if name not in ACTIVATIONS:
    raise ValueError(f'unknown activation {name!r}; known: {sorted(ACTIVATIONS)}')
  return ACTIVATIONS[name]


class Dense(nn.Module):
  """Contracts the last `in_dims` dims of x with a (*in, *features) kernel (+ bias).

  kernel_init/bias_init see the flat matrix / flat bias; `torch_init` replaces both by
  PyTorch's U(+-1/sqrt(fan_in)). Parameters are float32; the matmul runs in `dtype_mm`.
  """
  features: Union[int, Sequence[int]]
  in_dims: int = 1
  use_bias: bool = True
  kernel_axes: Sequence[Optional[str]] = ('embed', 'mlp')
  bias_axes: Optional[Sequence[Optional[str]]] = None   # default: kernel_axes' feature part
  kernel_init: Init = nn.initializers.lecun_normal()
  bias_init: Init = nn.initializers.zeros
  torch_init: bool = False
  dtype_mm: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    features = (self.features,) if isinstance(self.features, int) else tuple(self.features)
    in_shape = tuple(x.shape[x.ndim - self.in_dims:])
    if len(self.kernel_axes) != self.in_dims + len(features):
      raise ValueError(f'kernel_axes {tuple(self.kernel_axes)} must name {self.in_dims} input '
                       f'and {len(features)} feature dims')
    fan_in = math.prod(in_shape)
    kernel_init = torch_uniform(fan_in) if self.torch_init else self.kernel_init
    kernel = self.param('kernel', boxed(flat_init(kernel_init, self.in_dims), *self.kernel_axes),
                        in_shape + features, jnp.float32)
    dtype = jnp.dtype(self.dtype_mm)
    y = jax.lax.dot_general(x.astype(dtype), kernel.astype(dtype),
                            ((tuple(range(x.ndim - self.in_dims, x.ndim)),
                              tuple(range(self.in_dims))), ((), ())))
    if self.use_bias:
      bias_axes = (tuple(self.kernel_axes[self.in_dims:]) if self.bias_axes is None
                   else tuple(self.bias_axes))
      bias_init = torch_uniform(fan_in) if self.torch_init else self.bias_init
      flat_bias = lambda key, shape, dtype=jnp.float32: jnp.reshape(  # pylint: disable=g-long-lambda
          bias_init(key, (math.prod(shape),), dtype), shape)
      bias = self.param('bias', boxed(flat_bias, *bias_axes), features, jnp.float32)
      y = y + bias.astype(dtype)
    return y


class TorchLinear(Dense):
  """torch.nn.Linear: y = x W^T + b (kernel stored as W^T), PyTorch's default init."""
  torch_init: bool = True


def layer_norm(name: Optional[str] = None, eps: float = 1e-6) -> nn.LayerNorm:
  """LayerNorm (eps 1e-6 as flax/big_vision; PyTorch ports pass 1e-5), params on 'norm'."""
  return nn.LayerNorm(epsilon=eps, name=name,
                      scale_init=boxed(nn.initializers.ones, 'norm'),
                      bias_init=boxed(nn.initializers.zeros, 'norm'))


class Mlp(nn.Module):
  """Dense(d -> hidden) -> activation -> dropout -> Dense(hidden -> d or out_features)."""
  hidden: Optional[int] = None          # default 4 x width
  out_features: Optional[int] = None    # default: the input width
  activation: str = 'gelu_tanh'
  dropout: float = 0.0
  names: Sequence[str] = ('Dense_0', 'Dense_1')
  kernel_init: Init = nn.initializers.xavier_uniform()
  bias_init: Init = nn.initializers.zeros
  torch_init: bool = False
  dtype_mm: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    width = x.shape[-1]
    dense = lambda n, axes, name: Dense(  # pylint: disable=g-long-lambda
        n, kernel_axes=axes, kernel_init=self.kernel_init, bias_init=self.bias_init,
        torch_init=self.torch_init, dtype_mm=self.dtype_mm, name=name)
    h = dense(self.hidden or 4 * width, ('embed', 'mlp'), self.names[0])(x)
    h = activation(self.activation)(h)
    if self.dropout:
      h = nn.Dropout(rate=self.dropout)(h, deterministic=not train)
    return dense(self.out_features or width, ('mlp', 'embed'), self.names[1])(h)
