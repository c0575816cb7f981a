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
from .optimizers.adabelief import AdaBeliefState as AdaBeliefState
from .optimizers.adabelief import adabelief as adabelief
from .optimizers.adabelief import scale_by_belief as scale_by_belief
from .optimizers.adan import AdanState as AdanState
from .optimizers.adan import adan as adan
from .optimizers.adan import scale_by_adan as scale_by_adan
from .optimizers.fromage import fromage as fromage
from .optimizers.fromage import scale_by_fromage as scale_by_fromage
from .optimizers.lamb import lamb as lamb
from .optimizers.lamb import scale_by_trust_ratio as scale_by_trust_ratio
from .optimizers.lars import lars as lars
from .optimizers.lion import LionState as LionState
from .optimizers.lion import lion as lion
from .optimizers.lion import scale_by_lion as scale_by_lion
from .optimizers.noisy_sgd import NoiseState as NoiseState
from .optimizers.noisy_sgd import noisy_sgd as noisy_sgd
from .optimizers.novograd import NovoGradState as NovoGradState
from .optimizers.novograd import novograd as novograd
from .optimizers.novograd import scale_by_novograd as scale_by_novograd
from .optimizers.optimistic import OptimisticState as OptimisticState
from .optimizers.optimistic import optimistic_gradient_descent as optimistic_gradient_descent
from .optimizers.optimistic import scale_by_optimistic_gradient as scale_by_optimistic_gradient
from .optimizers.polyak_sgd import polyak_sgd as polyak_sgd
from .optimizers.polyak_sgd import scale_by_polyak as scale_by_polyak
from .optimizers.sign import SignumState as SignumState
from .optimizers.sign import scale_by_sign as scale_by_sign
from .optimizers.sign import scale_by_signum as scale_by_signum
from .optimizers.sign import sign_sgd as sign_sgd
from .optimizers.sign import signum as signum
from .optimizers.sm3 import SM3State as SM3State
from .optimizers.sm3 import scale_by_sm3 as scale_by_sm3
from .optimizers.sm3 import sm3 as sm3
from .optimizers.yogi import YogiState as YogiState
from .optimizers.yogi import scale_by_yogi as scale_by_yogi
from .optimizers.yogi import yogi as yogi

# --- modern optimizers (issue: catalogue) ---
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
from .optimizers.schedule_free import schedule_free_eval_params as schedule_free_eval_params
from .optimizers.schedule_free import schedule_free_sgd as schedule_free_sgd
from .optimizers.soap import SOAPState as SOAPState
from .optimizers.soap import scale_by_soap as scale_by_soap
from .optimizers.soap import soap as soap

# --- sweeps (issue: sweeps) ---

# --- performance: grouped path, fused step (issue: performance) ---

# --- trust: sharding, mixed precision, checkpoints (issue: trust) ---

from . import registry as registry  # last: it imports the factories above

__version__ = "0.1.0"
