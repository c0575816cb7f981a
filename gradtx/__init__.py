"""gradtx: optimizer transforms for JAX whose hyperparameters are pytree leaves.

The public API is what this module re-exports: factories (``gradtx.adam``), their states
(``AdamState``), and the classes users subclass to write their own (``Transform``,
``Elementwise``, ``Schedule``, with ``pytree_dataclass``, ``field`` and ``static_field``).
Where Optax's top level has a class or a type, it is here under its name (``MultiSteps``,
``GradientTransformation``, the callable types and the annotation aliases).
Optax's namespaces of the same names are submodules: ``gradtx.contrib``,
``gradtx.projections``, ``gradtx.schedules``, ``gradtx.transforms``, ``gradtx.tree`` and
``gradtx.tree_utils``.
"""

from ._checks import HyperparameterError as HyperparameterError
from ._checks import TreeMismatchError as TreeMismatchError
from ._fusion import cpu_multi_output_fusion as cpu_multi_output_fusion
from ._fusion import enable_cpu_multi_output_fusion as enable_cpu_multi_output_fusion
from ._transform import CountState as CountState
from ._transform import EmptyState as EmptyState
from ._transform import Schedule as Schedule
from ._transform import Transform as Transform
from ._transform import apply_updates as apply_updates
from ._transform import batch_axes as batch_axes
from ._transform import field as field
from ._kernel import Elementwise as Elementwise
from ._transform import chain as chain
from ._transform import identity as identity
from ._transform import incremental_update as incremental_update
from ._transform import named_chain as named_chain
from ._transform import periodic_update as periodic_update
from ._transform import pytree_dataclass as pytree_dataclass
from ._transform import scale as scale
from ._transform import scale_by_learning_rate as scale_by_learning_rate
from ._transform import static_field as static_field

# optimizers
from .optimizers.adagrad import AdagradState as AdagradState
from .optimizers.adagrad import adagrad as adagrad
from .optimizers.adagrad import scale_by_adagrad as scale_by_adagrad
from .optimizers.adagrad import scale_by_rss as scale_by_rss
from .optimizers.adam import AdamState as AdamState
from .optimizers.adam import adam as adam
from .optimizers.adam import adamw as adamw
from .optimizers.adam import scale_by_adam as scale_by_adam
from .optimizers.amsgrad import amsgrad as amsgrad
from .optimizers.amsgrad import scale_by_amsgrad as scale_by_amsgrad
from .optimizers.rmsprop import RMSpropState as RMSpropState
from .optimizers.rmsprop import rmsprop as rmsprop
from .optimizers.rmsprop import scale_by_rmsprop as scale_by_rmsprop
from .optimizers.rmsprop import scale_by_rms as scale_by_rms
from .optimizers.rmsprop import scale_by_stddev as scale_by_stddev
from .transforms._momentum import MomentumState as MomentumState
from .transforms._momentum import scale_by_momentum as scale_by_momentum
from .optimizers.sgd import sgd as sgd

# schedules
from .schedules._basic import constant_schedule as constant_schedule
from .schedules._basic import cosine_decay_schedule as cosine_decay_schedule
from .schedules._basic import exponential_decay as exponential_decay
from .schedules._basic import inverse_time_decay_schedule as inverse_time_decay_schedule
from .schedules._basic import linear_schedule as linear_schedule
from .schedules._basic import piecewise_constant_schedule as piecewise_constant_schedule
from .schedules._join import join_schedules as join_schedules

# transforms
from .transforms._scaling import negate as negate
from .transforms._scaling import (
    ScaleByDistanceOverGradientsState as ScaleByDistanceOverGradientsState,
)
from .transforms._scaling import (
    scale_by_distance_over_gradients as scale_by_distance_over_gradients,
)
from .transforms._scaling import scale_by_param_block_norm as scale_by_param_block_norm
from .transforms._scaling import scale_by_param_block_rms as scale_by_param_block_rms
from .transforms._scaling import scale_by_schedule as scale_by_schedule
from .transforms._weight_decay import add_decayed_weights as add_decayed_weights

# schedules family
from ._transform import as_schedule as as_schedule
from ._transform import value_at as value_at
from .schedules._cosine import cosine_restarts_schedule as cosine_restarts_schedule
from .schedules._cosine import sgdr_schedule as sgdr_schedule
from .schedules._cosine import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from .schedules._cyclic import cosine_onecycle_schedule as cosine_onecycle_schedule
from .schedules._cyclic import cyclic_schedule as cyclic_schedule
from .schedules._cyclic import linear_onecycle_schedule as linear_onecycle_schedule
from .schedules._cyclic import onecycle_momentum_schedule as onecycle_momentum_schedule
from .schedules._join import multiply_schedules as multiply_schedules
from .schedules._piecewise import piecewise_interpolate_schedule as piecewise_interpolate_schedule
from .schedules._plateau import ReduceOnPlateauState as ReduceOnPlateauState
from .schedules._plateau import reduce_on_plateau as reduce_on_plateau
from .schedules._plot import plot_schedules as plot_schedules
from .schedules._plot import schedule_values as schedule_values
from .schedules._polynomial import inverse_sqrt_schedule as inverse_sqrt_schedule
from .schedules._polynomial import polynomial_schedule as polynomial_schedule
from .schedules._warmup import warmup_constant_schedule as warmup_constant_schedule
from .schedules._warmup import (
    warmup_exponential_decay_schedule as warmup_exponential_decay_schedule,
)
from .schedules._warmup import warmup_stable_decay_schedule as warmup_stable_decay_schedule

# composition: masks, partition, clipping, accumulation, safety, averaging
from ._mask import mask_fn as mask_fn
from .transforms._accumulate import AccumulateState as AccumulateState
from .transforms._accumulate import accumulate as accumulate
from .transforms._averaging import EmaParamsState as EmaParamsState
from .transforms._averaging import LookaheadState as LookaheadState
from .transforms._averaging import SwaState as SwaState
from .transforms._averaging import ema_params as ema_params
from .transforms._averaging import eval_params as eval_params
from .transforms._averaging import lookahead as lookahead
from .transforms._averaging import swa as swa
from .transforms._averaging import swa_schedule as swa_schedule
from .transforms._clipping import ClipState as ClipState
from .transforms._clipping import adaptive_grad_clip as adaptive_grad_clip
from .transforms._clipping import clip as clip
from .transforms._clipping import clip_by_block_rms as clip_by_block_rms
from .transforms._clipping import clip_by_global_norm as clip_by_global_norm
from .transforms._clipping import clip_updates as clip_updates
from .transforms._clipping import unitwise_norm as unitwise_norm
from .transforms._finite import ApplyIfFiniteState as ApplyIfFiniteState
from .transforms._finite import ZeroNansState as ZeroNansState
from .transforms._finite import apply_if_finite as apply_if_finite
from .transforms._finite import zero_nans as zero_nans
from .transforms._logging import current_hyperparams as current_hyperparams
from .transforms._masking import MaskedState as MaskedState
from .transforms._masking import decay_mask as decay_mask
from .transforms._masking import freeze as freeze
from .transforms._masking import key_path_str as key_path_str
from .transforms._masking import mask_by_path as mask_by_path
from .transforms._masking import masked as masked
from .transforms._momentum import ema as ema
from .transforms._momentum import trace as trace
from .transforms._noise import AddNoiseState as AddNoiseState
from .transforms._noise import add_noise as add_noise
from .transforms._partition import PartitionState as PartitionState
from .transforms._partition import label_by_path as label_by_path
from .transforms._partition import partition as partition
from .transforms._partition import multi_transform as multi_transform
from .transforms._partition import reset_group as reset_group
from .transforms._shaping import centralize as centralize
from .transforms._shaping import keep_params_nonnegative as keep_params_nonnegative
from .transforms._shaping import scale_by_sign as scale_by_sign
from .transforms._shaping import scale_by_trust_ratio as scale_by_trust_ratio

# Optax's base, update, wrapper and tree utilities
from ._base import GradientTransformation as GradientTransformation
from ._base import GradientTransformationExtraArgs as GradientTransformationExtraArgs
from ._base import TransformInitFn as TransformInitFn
from ._base import TransformUpdateExtraArgsFn as TransformUpdateExtraArgsFn
from ._base import TransformUpdateFn as TransformUpdateFn
from ._transform import MaskOrFn as MaskOrFn
from ._transform import OptState as OptState
from ._transform import Params as Params
from ._transform import ScalarOrSchedule as ScalarOrSchedule
from ._transform import Updates as Updates
from ._numerics import bias_correction as bias_correction
from ._numerics import global_norm as global_norm
from ._numerics import safe_increment as safe_increment
from ._numerics import safe_int32_increment as safe_int32_increment
from ._numerics import safe_norm as safe_norm
from ._numerics import safe_root_mean_squares as safe_root_mean_squares
from ._numerics import scale_gradient as scale_gradient
from ._numerics import update_infinity_moment as update_infinity_moment
from ._numerics import update_moment as update_moment
from ._numerics import update_moment_per_elem_norm as update_moment_per_elem_norm
from .transforms._accumulate import MultiSteps as MultiSteps
from .transforms._accumulate import MultiStepsState as MultiStepsState
from .transforms._accumulate import ShouldSkipUpdateFunction as ShouldSkipUpdateFunction
from ._state_utils import NamedTupleKey as NamedTupleKey
from ._state_utils import tree_get as tree_get
from ._state_utils import tree_get_all_with_path as tree_get_all_with_path
from ._state_utils import tree_map_params as tree_map_params
from ._state_utils import tree_set as tree_set
from .transforms._accumulate import ApplyEveryState as ApplyEveryState
from .transforms._accumulate import apply_every as apply_every
from .transforms._accumulate import skip_large_updates as skip_large_updates
from .transforms._accumulate import skip_not_finite as skip_not_finite
from .transforms._clipping import per_example_global_norm_clip as per_example_global_norm_clip
from .transforms._clipping import per_example_layer_norm_clip as per_example_layer_norm_clip
from .transforms._clipping import unitwise_clip as unitwise_clip
from .transforms._conditionality import ConditionallyMaskState as ConditionallyMaskState
from .transforms._conditionality import (
    ConditionallyTransformState as ConditionallyTransformState,
)
from .transforms._conditionality import conditionally_mask as conditionally_mask
from .transforms._conditionality import conditionally_transform as conditionally_transform
from .transforms._inject import InjectHyperparamsState as InjectHyperparamsState
from .transforms._inject import inject_hyperparams as inject_hyperparams
from .transforms._inject import inject_stateful_hyperparams as inject_stateful_hyperparams
from .transforms._masking import selective_transform as selective_transform
from .transforms._monitoring import MonitorState as MonitorState
from .transforms._monitoring import SnapshotState as SnapshotState
from .transforms._monitoring import measure_with_ema as measure_with_ema
from .transforms._monitoring import monitor as monitor
from .transforms._monitoring import snapshot as snapshot
from .transforms._shaping import normalize_by_update_norm as normalize_by_update_norm
from .transforms._stateless import init_empty_state as init_empty_state
from .transforms._stateless import set_to_zero as set_to_zero
from .transforms._stateless import stateless as stateless
from .transforms._stateless import stateless_with_tree_map as stateless_with_tree_map
from .transforms._stateless import with_extra_args_support as with_extra_args_support

# torch.optim catalogue
from .optimizers.adadelta import AdadeltaState as AdadeltaState
from .optimizers.adadelta import adadelta as adadelta
from .optimizers.adadelta import scale_by_adadelta as scale_by_adadelta
from .optimizers.adafactor import AdafactorState as AdafactorState
from .optimizers.adafactor import adafactor as adafactor
from .optimizers.adafactor import scale_by_adafactor as scale_by_adafactor
from .optimizers.adafactor import scale_by_factored_rms as scale_by_factored_rms
from .optimizers.adamax import AdamaxState as AdamaxState
from .optimizers.adamax import adamax as adamax
from .optimizers.adamax import adamaxw as adamaxw
from .optimizers.adamax import scale_by_adamax as scale_by_adamax
from .optimizers.asgd import ASGDState as ASGDState
from .optimizers.asgd import asgd as asgd
from .optimizers.asgd import scale_by_asgd as scale_by_asgd
from .optimizers.muon import MuonSplitState as MuonSplitState
from .optimizers.muon import MuonState as MuonState
from .optimizers.muon import muon as muon
from .optimizers.muon import scale_by_muon as scale_by_muon
from .optimizers.nadam import NAdamState as NAdamState
from .optimizers.nadam import nadam as nadam
from .optimizers.nadam import nadamw as nadamw
from .optimizers.nadam import scale_by_nadam as scale_by_nadam
from .optimizers.radam import RAdamState as RAdamState
from .optimizers.radam import radam as radam
from .optimizers.radam import scale_by_radam as scale_by_radam
from .optimizers.rprop import RpropState as RpropState
from .optimizers.rprop import rprop as rprop
from .optimizers.rprop import scale_by_rprop as scale_by_rprop

# Optax catalogue
from .optimizers.adabelief import AdaBeliefState as AdaBeliefState
from .optimizers.adabelief import adabelief as adabelief
from .optimizers.adabelief import scale_by_belief as scale_by_belief
from .optimizers.adan import AdanState as AdanState
from .optimizers.adan import adan as adan
from .optimizers.adan import scale_by_adan as scale_by_adan
from .optimizers.fromage import fromage as fromage
from .optimizers.fromage import scale_by_fromage as scale_by_fromage
from .optimizers.lamb import lamb as lamb
from .optimizers.lars import lars as lars
from .optimizers.lion import LionState as LionState
from .optimizers.lion import lion as lion
from .optimizers.lion import scale_by_lion as scale_by_lion
from .optimizers.noisy_sgd import noisy_sgd as noisy_sgd
from .optimizers.novograd import NovoGradState as NovoGradState
from .optimizers.novograd import novograd as novograd
from .optimizers.novograd import scale_by_novograd as scale_by_novograd
from .optimizers.optimistic import OptimisticState as OptimisticState
from .optimizers.optimistic import optimistic_adam as optimistic_adam
from .optimizers.optimistic import optimistic_adam_v2 as optimistic_adam_v2
from .optimizers.optimistic import optimistic_gradient_descent as optimistic_gradient_descent
from .optimizers.optimistic import scale_by_optimistic_gradient as scale_by_optimistic_gradient
from .optimizers.polyak_sgd import polyak_sgd as polyak_sgd
from .optimizers.polyak_sgd import scale_by_polyak as scale_by_polyak
from .optimizers.sign import SignumState as SignumState
from .optimizers.sign import scale_by_signum as scale_by_signum
from .optimizers.sign import sign_sgd as sign_sgd
from .optimizers.sign import signum as signum
from .optimizers.sm3 import SM3State as SM3State
from .optimizers.sm3 import scale_by_sm3 as scale_by_sm3
from .optimizers.sm3 import sm3 as sm3
from .optimizers.yogi import YogiState as YogiState
from .optimizers.yogi import scale_by_yogi as scale_by_yogi
from .optimizers.yogi import yogi as yogi
from .optimizers.lbfgs import ScaleByLBFGS as ScaleByLBFGS
from .optimizers.lbfgs import ScaleByLBFGSState as ScaleByLBFGSState
from .optimizers.lbfgs import lbfgs as lbfgs
from .optimizers.lbfgs import scale_by_lbfgs as scale_by_lbfgs
from .transforms._linesearch import BacktrackingLinesearchInfo as BacktrackingLinesearchInfo
from .transforms._linesearch import ScaleByBacktrackingLinesearch as ScaleByBacktrackingLinesearch
from .transforms._linesearch import (
    ScaleByBacktrackingLinesearchState as ScaleByBacktrackingLinesearchState,
)
from .transforms._linesearch import ScaleByZoomLinesearch as ScaleByZoomLinesearch
from .transforms._linesearch import ScaleByZoomLinesearchState as ScaleByZoomLinesearchState
from .transforms._linesearch import ZoomLinesearchInfo as ZoomLinesearchInfo
from .transforms._linesearch import ZoomLinesearchState as ZoomLinesearchState
from .transforms._linesearch import (
    scale_by_backtracking_linesearch as scale_by_backtracking_linesearch,
)
from .transforms._linesearch import scale_by_zoom_linesearch as scale_by_zoom_linesearch
from .transforms._linesearch import value_and_grad_from_state as value_and_grad_from_state
from .transforms._linesearch import zoom_linesearch as zoom_linesearch
from . import torch as torch  # torch.optim's names: gradtx.torch.lbfgs

# modern optimizers
from .optimizers.ademamix import AdEMAMixState as AdEMAMixState
from .optimizers.ademamix import ademamix as ademamix
from .optimizers.ademamix import scale_by_ademamix as scale_by_ademamix
from .optimizers.adopt import ADOPTState as ADOPTState
from .optimizers.adopt import adopt as adopt
from .optimizers.adopt import scale_by_adopt as scale_by_adopt
from .optimizers.mars import MARSState as MARSState
from .optimizers.mars import mars as mars
from .optimizers.mars import scale_by_mars as scale_by_mars
from .optimizers.prodigy import ProdigyState as ProdigyState
from .optimizers.prodigy import prodigy as prodigy
from .optimizers.schedule_free import ScheduleFreeState as ScheduleFreeState
from .optimizers.schedule_free import schedule_free_adamw as schedule_free_adamw
from .optimizers.schedule_free import schedule_free_sgd as schedule_free_sgd
from .optimizers.soap import SOAPState as SOAPState
from .optimizers.soap import scale_by_soap as scale_by_soap
from .optimizers.soap import soap as soap
from .optimizers.kron import KronState as KronState
from .optimizers.kron import kron as kron
from .schedules._probability import precond_update_prob_schedule as precond_update_prob_schedule
from .optimizers.kron import scale_by_kron as scale_by_kron

# sweeps
from ._sweep._lr_finder import LRFinderResult as LRFinderResult
from ._sweep._lr_finder import lr_finder as lr_finder
from ._sweep._sweep import SweepResult as SweepResult
from ._sweep._sweep import sweep as sweep
from ._sweep._grid import choice as choice
from ._sweep._grid import int_uniform as int_uniform
from ._sweep._grid import log_uniform as log_uniform
from ._sweep._grid import uniform as uniform
from ._sweep._halving import HalvingResult as HalvingResult
from ._sweep._halving import successive_halving as successive_halving
from ._sweep._pbt import PBTResult as PBTResult
from ._sweep._pbt import pbt as pbt

# performance: the packed layout, the donating step, Optax's flatten
from ._layout import Packed as Packed
from ._layout import pack as pack
from ._layout import pack_like as pack_like
from ._layout import unpack as unpack
from ._step import step as step
from .transforms._layouts import flatten as flatten

# trust: sharding, mixed precision, checkpoints
from ._checkpoint import check_state as check_state
from ._checkpoint import load_npz as load_npz
from ._checkpoint import save_npz as save_npz
from ._precision import MasterWeightsState as MasterWeightsState
from ._precision import with_master_weights as with_master_weights
from ._sharding import bytes_per_device as bytes_per_device
from ._sharding import shard_state as shard_state
from ._sharding import state_shardings as state_shardings
from ._sharding import zero1 as zero1
from .transforms._quantize import Quantized as Quantized
from .transforms._quantize import QuantizedArray as QuantizedArray
from .transforms._quantize import quantized as quantized
from .transforms._quantize import state_nbytes as state_nbytes
from .transforms._rounding import StochasticRoundingState as StochasticRoundingState
from .transforms._rounding import apply_updates_stochastic as apply_updates_stochastic
from .transforms._rounding import stochastic_round as stochastic_round
from .transforms._rounding import with_stochastic_rounding as with_stochastic_rounding

from . import contrib as contrib
from . import projections as projections  # Optax's optax.projections, the same names
from . import tree as tree  # Optax's optax.tree: gradtx.tree.norm
from . import tree_utils as tree_utils  # Optax's optax.tree_utils: the same functions
from . import registry as registry  # last: it imports the factories above

__version__ = "0.1.0"


def __getattr__(name: str):
    # gradtx.nnx imports Flax, an optional extra: loaded on first use, not by ``import gradtx``.
    if name == "nnx":
        import importlib

        return importlib.import_module(".nnx", __name__)
    raise AttributeError(f"module 'gradtx' has no attribute {name!r}")
