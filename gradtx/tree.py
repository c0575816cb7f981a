"""Functions over whole pytrees, under Optax's ``optax.tree`` names.

``gradtx.tree.<name>`` takes the arguments of ``optax.tree.<name>``, in the same order and
with the same keywords and defaults: arithmetic (``add``, ``sub``, ``mul``, ``div``,
``scale``, ``add_scale``, ``conj``, ``real``, ``where``, ``clip``), reductions (``sum``,
``max``, ``min``, ``vdot``, ``norm``, ``size``, ``allclose``), trees of constants and random
numbers (``zeros_like``, ``ones_like``, ``full_like``, ``batch_shape``, ``random_like``,
``split_key_like``, ``unwrap_random_key_data``), dtypes (``dtype``, ``cast``, ``cast_like``),
the moment updates optimizers are written with (``update_moment``,
``update_moment_per_elem_norm``, ``update_infinity_moment``, ``bias_correction``) and the state
utilities (``get``, ``set``, ``get_all_with_path``, ``map_params``).

``None`` leaves are empty subtrees: maps pass them through and reductions skip them.
Reductions over floating-point leaves accumulate in at least float32. Each function says where
it differs from Optax under "Conventions".

``gradtx.tree_utils`` holds the same functions under ``tree_`` names
(``gradtx.tree_utils.tree_norm is gradtx.tree.norm``); the moment updates and state
utilities are also at the top level (``gradtx.update_moment``, ``gradtx.tree_get``).
"""

from ._numerics import bias_correction as bias_correction
from ._numerics import update_infinity_moment as update_infinity_moment
from ._numerics import update_moment as update_moment
from ._numerics import update_moment_per_elem_norm as update_moment_per_elem_norm
from ._state_utils import tree_get as get
from ._state_utils import tree_get_all_with_path as get_all_with_path
from ._state_utils import tree_map_params as map_params
from ._state_utils import tree_set as set
from ._tree_utils import tree_add as add
from ._tree_utils import tree_add_scale as add_scale
from ._tree_utils import tree_allclose as allclose
from ._tree_utils import tree_batch_shape as batch_shape
from ._tree_utils import tree_cast as cast
from ._tree_utils import tree_cast_like as cast_like
from ._tree_utils import tree_clip as clip
from ._tree_utils import tree_conj as conj
from ._tree_utils import tree_div as div
from ._tree_utils import tree_dtype as dtype
from ._tree_utils import tree_full_like as full_like
from ._tree_utils import tree_max as max
from ._tree_utils import tree_min as min
from ._tree_utils import tree_mul as mul
from ._tree_utils import tree_norm as norm
from ._tree_utils import tree_ones_like as ones_like
from ._tree_utils import tree_random_like as random_like
from ._tree_utils import tree_real as real
from ._tree_utils import tree_scale as scale
from ._tree_utils import tree_size as size
from ._tree_utils import tree_split_key_like as split_key_like
from ._tree_utils import tree_sub as sub
from ._tree_utils import tree_sum as sum
from ._tree_utils import tree_unwrap_random_key_data as unwrap_random_key_data
from ._tree_utils import tree_vdot as vdot
from ._tree_utils import tree_where as where
from ._tree_utils import tree_zeros_like as zeros_like

__all__ = [
    "add",
    "add_scale",
    "allclose",
    "batch_shape",
    "bias_correction",
    "cast",
    "cast_like",
    "clip",
    "conj",
    "div",
    "dtype",
    "full_like",
    "get",
    "get_all_with_path",
    "map_params",
    "max",
    "min",
    "mul",
    "norm",
    "ones_like",
    "random_like",
    "real",
    "scale",
    "set",
    "size",
    "split_key_like",
    "sub",
    "sum",
    "unwrap_random_key_data",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
    "where",
    "zeros_like",
]
