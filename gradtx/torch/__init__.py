"""torch.optim's names, argument names and defaults over gradtx transforms.

Each optimizer here takes the arguments of the torch.optim class of the same name (``lr``,
``betas``, ``history_size``...) with torch's defaults, less ``params``, and returns a gradtx
transform that reproduces torch's steps; each lr scheduler takes the arguments of the
``torch.optim.lr_scheduler`` class, less ``optimizer``, and returns a gradtx schedule. Both are
checked in float64 against fixtures made with torch 2.13.0.
"""

from ._lbfgs import lbfgs as lbfgs
