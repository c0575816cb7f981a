"""Optax's ``optax.tree_utils`` names: ``gradtx.tree_utils.tree_<name>`` is
``gradtx.tree.<name>``, the same function (documented there), and ``NamedTupleKey`` is
``gradtx.NamedTupleKey``, the path entry that ``tree_get_all_with_path`` gives a NamedTuple's
fields.

The names: ``tree_add``, ``tree_add_scale``, ``tree_allclose``, ``tree_batch_shape``,
``tree_bias_correction``, ``tree_cast``, ``tree_cast_like``, ``tree_clip``, ``tree_conj``,
``tree_div``, ``tree_dtype``, ``tree_full_like``, ``tree_get``, ``tree_get_all_with_path``,
``tree_map_params``, ``tree_max``, ``tree_min``, ``tree_mul``, ``tree_norm``,
``tree_ones_like``, ``tree_random_like``, ``tree_real``, ``tree_scale``, ``tree_set``,
``tree_size``, ``tree_split_key_like``, ``tree_sub``, ``tree_sum``,
``tree_unwrap_random_key_data``, ``tree_update_infinity_moment``, ``tree_update_moment``,
``tree_update_moment_per_elem_norm``, ``tree_vdot``, ``tree_where``, ``tree_zeros_like``.

Optax's deprecated names (``tree_scalar_mul``, ``tree_add_scalar_mul``, ``tree_l1_norm``,
``tree_l2_norm``, ``tree_linf_norm``) are not here: use ``tree_scale``, ``tree_add_scale``
and ``tree_norm(tree, ord)``.
"""

from ._numerics import bias_correction as tree_bias_correction
from ._numerics import update_infinity_moment as tree_update_infinity_moment
from ._numerics import update_moment as tree_update_moment
from ._numerics import update_moment_per_elem_norm as tree_update_moment_per_elem_norm
from ._state_utils import NamedTupleKey as NamedTupleKey
from ._state_utils import tree_get as tree_get
from ._state_utils import tree_get_all_with_path as tree_get_all_with_path
from ._state_utils import tree_map_params as tree_map_params
from ._state_utils import tree_set as tree_set
from ._tree_utils import tree_add as tree_add
from ._tree_utils import tree_add_scale as tree_add_scale
from ._tree_utils import tree_allclose as tree_allclose
from ._tree_utils import tree_batch_shape as tree_batch_shape
from ._tree_utils import tree_cast as tree_cast
from ._tree_utils import tree_cast_like as tree_cast_like
from ._tree_utils import tree_clip as tree_clip
from ._tree_utils import tree_conj as tree_conj
from ._tree_utils import tree_div as tree_div
from ._tree_utils import tree_dtype as tree_dtype
from ._tree_utils import tree_full_like as tree_full_like
from ._tree_utils import tree_max as tree_max
from ._tree_utils import tree_min as tree_min
from ._tree_utils import tree_mul as tree_mul
from ._tree_utils import tree_norm as tree_norm
from ._tree_utils import tree_ones_like as tree_ones_like
from ._tree_utils import tree_random_like as tree_random_like
from ._tree_utils import tree_real as tree_real
from ._tree_utils import tree_scale as tree_scale
from ._tree_utils import tree_size as tree_size
from ._tree_utils import tree_split_key_like as tree_split_key_like
from ._tree_utils import tree_sub as tree_sub
from ._tree_utils import tree_sum as tree_sum
from ._tree_utils import tree_unwrap_random_key_data as tree_unwrap_random_key_data
from ._tree_utils import tree_vdot as tree_vdot
from ._tree_utils import tree_where as tree_where
from ._tree_utils import tree_zeros_like as tree_zeros_like

__all__ = [
    "NamedTupleKey",
    "tree_add",
    "tree_add_scale",
    "tree_allclose",
    "tree_batch_shape",
    "tree_bias_correction",
    "tree_cast",
    "tree_cast_like",
    "tree_clip",
    "tree_conj",
    "tree_div",
    "tree_dtype",
    "tree_full_like",
    "tree_get",
    "tree_get_all_with_path",
    "tree_map_params",
    "tree_max",
    "tree_min",
    "tree_mul",
    "tree_norm",
    "tree_ones_like",
    "tree_random_like",
    "tree_real",
    "tree_scale",
    "tree_set",
    "tree_size",
    "tree_split_key_like",
    "tree_sub",
    "tree_sum",
    "tree_unwrap_random_key_data",
    "tree_update_infinity_moment",
    "tree_update_moment",
    "tree_update_moment_per_elem_norm",
    "tree_vdot",
    "tree_where",
    "tree_zeros_like",
]
