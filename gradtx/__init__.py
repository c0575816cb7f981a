"""gradtx: optimizer transforms for JAX whose hyperparameters are pytree leaves."""

from ._checks import HyperparameterError as HyperparameterError
from ._checks import TreeMismatchError as TreeMismatchError
from ._transform import Chain as Chain
from ._transform import CountState as CountState
from ._transform import EmptyState as EmptyState
from ._transform import FunctionSchedule as FunctionSchedule
from ._transform import Schedule as Schedule
from ._transform import Transform as Transform
from ._transform import apply_updates as apply_updates
from ._transform import batch_axes as batch_axes
from ._transform import chain as chain
from ._transform import identity as identity
from ._transform import pytree_dataclass as pytree_dataclass
from ._transform import scale as scale
from ._transform import scale_by_learning_rate as scale_by_learning_rate
from ._transform import static_field as static_field

# optimizers
from .optimizers.adagrad import AdagradState as AdagradState
from .optimizers.adagrad import adagrad as adagrad
from .optimizers.adagrad import scale_by_adagrad as scale_by_adagrad
from .optimizers.adam import AdamState as AdamState
from .optimizers.adam import adam as adam
from .optimizers.adam import adamw as adamw
from .optimizers.adam import scale_by_adam as scale_by_adam
from .optimizers.rmsprop import RMSpropState as RMSpropState
from .optimizers.rmsprop import rmsprop as rmsprop
from .optimizers.rmsprop import scale_by_rmsprop as scale_by_rmsprop
from .optimizers.sgd import MomentumState as MomentumState
from .optimizers.sgd import scale_by_momentum as scale_by_momentum
from .optimizers.sgd import sgd as sgd

# schedules
from .schedules._basic import constant as constant
from .schedules._basic import cosine_decay as cosine_decay
from .schedules._basic import exponential_decay as exponential_decay
from .schedules._basic import inverse_time_decay as inverse_time_decay
from .schedules._basic import linear as linear
from .schedules._basic import piecewise_constant as piecewise_constant
from .schedules._join import join as join

# transforms
from .transforms._scaling import negate as negate
from .transforms._weight_decay import add_decayed_weights as add_decayed_weights

# --- schedules family (issue: schedules) ---

# --- composition: masks, partition, clipping, accumulation, safety, averaging (issue: composition) ---

# --- torch.optim catalogue (issue: catalogue) ---

# --- Optax catalogue (issue: catalogue) ---

# --- modern optimizers (issue: catalogue) ---

# --- sweeps (issue: sweeps) ---
from .sweep._lr_finder import LRFinderResult as LRFinderResult
from .sweep._lr_finder import lr_finder as lr_finder
from .sweep._sweep import SweepResult as SweepResult
from .sweep._sweep import sweep as sweep  # after the subpackage import: gradtx.sweep is the function

# --- performance: grouped path, fused step (issue: performance) ---

# --- trust: sharding, mixed precision, checkpoints (issue: trust) ---

from . import registry as registry  # last: it imports the factories above

__version__ = "0.1.0"
