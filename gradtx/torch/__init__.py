"""torch.optim's names, argument names and defaults over gradtx transforms.

Each optimizer here takes the arguments of the torch.optim class of the same name (``lr``,
``betas``, ``history_size``...) with torch's defaults, less ``params``, and returns a gradtx
transform that reproduces torch's steps; each lr scheduler takes the arguments of the
``torch.optim.lr_scheduler`` class, less ``optimizer``, and returns a gradtx schedule. Both are
checked in float64 against fixtures made with torch 2.13.0.
"""

from ._lbfgs import lbfgs as lbfgs
from ._lr_scheduler import constant_lr as constant_lr
from ._lr_scheduler import cosine_annealing_lr as cosine_annealing_lr
from ._lr_scheduler import cosine_annealing_warm_restarts as cosine_annealing_warm_restarts
from ._lr_scheduler import cyclic_lr as cyclic_lr
from ._lr_scheduler import exponential_lr as exponential_lr
from ._lr_scheduler import linear_lr as linear_lr
from ._lr_scheduler import multi_step_lr as multi_step_lr
from ._lr_scheduler import one_cycle_lr as one_cycle_lr
from ._lr_scheduler import polynomial_lr as polynomial_lr
from ._lr_scheduler import reduce_lr_on_plateau as reduce_lr_on_plateau
from ._lr_scheduler import step_lr as step_lr
from ._optim import adadelta as adadelta
from ._optim import adafactor as adafactor
from ._optim import adagrad as adagrad
from ._optim import adam as adam
from ._optim import adamax as adamax
from ._optim import adamw as adamw
from ._optim import asgd as asgd
from ._optim import muon as muon
from ._optim import nadam as nadam
from ._optim import radam as radam
from ._optim import rmsprop as rmsprop
from ._optim import rprop as rprop
from ._optim import sgd as sgd
