"""torch.optim's names, argument names and defaults over gradtx transforms.

Each optimizer here takes the arguments of the torch.optim class of the same name (``lr``,
``betas``, ``history_size``...) with torch's defaults, less ``params``, and returns a gradtx
transform that reproduces torch's steps; each lr scheduler takes the arguments of the
``torch.optim.lr_scheduler`` class, less ``optimizer``, and returns a gradtx schedule. Both are
checked in float64 against fixtures made with torch 2.13.0.
"""

from ._lbfgs import lbfgs as lbfgs
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
