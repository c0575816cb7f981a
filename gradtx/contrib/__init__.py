"""Optax's ``optax.contrib`` optimizers, with Optax's names, signatures and defaults.

Replacing ``optax.contrib.`` by ``gradtx.contrib.`` keeps every positional argument, keyword
and default. What lives where, one place per thing:

- Optimizers only Optax's contrib has (acprop, cocob, dadapt_adamw, dog, dowg, galore,
  madgrad, mechanize, momo, momo_adam, sam and normalize, simplified_ademamix, sophia with
  hutchinson_estimator_diag_hessian, dpsgd and differentially_private_aggregate,
  split_real_and_imaginary and the generic schedule_free wrapper) are written here, one
  private module per family.
- Optimizers gradtx already has at the top level (ademamix, adopt, prodigy,
  schedule_free_sgd) are written there, once; this package only maps Optax's contrib
  signature onto them (``mask`` -> ``weight_decay_mask``, ``betas`` -> ``b1, b2``,
  ``estim_lr0`` -> ``d0``, ``warmup_steps=None`` -> 0), so the formulas and their tests stay
  in one module. ``schedule_free_eval_params`` calls ``gradtx.eval_params``.
- ``schedule_free_adamw`` here is Optax's composition (the generic wrapper around AdamW
  without momentum); ``gradtx.schedule_free_adamw`` is the paper's Algorithm 1, whose
  averaging weights include Adam's bias correction. Both build the same ``ScheduleFree``.
- ``muon`` here is Optax's (bias-corrected momentum, four preconditionings, dimension numbers,
  an AdamW ``partition`` for the other leaves); ``gradtx.muon`` is torch's (no bias
  correction, the iteration rounded to bfloat16). Their Newton-Schulz steps differ in the
  normalisation and the rounding, so each module has its own.
- ``reduce_on_plateau`` here is Optax's rule (``rtol`` and ``atol`` together, a reduction
  after ``patience`` bad checks); ``gradtx.reduce_on_plateau`` is torch's (a threshold from
  ``|best|``, a reduction after more than ``patience``, a ``"max"`` mode).
"""

from ._acprop import ACPropState as ACPropState
from ._acprop import acprop as acprop
from ._acprop import scale_by_acprop as scale_by_acprop
from ._ademamix import ScaleBySimplifiedAdEMAMixState as ScaleBySimplifiedAdEMAMixState
from ._ademamix import ademamix as ademamix
from ._ademamix import scale_by_ademamix as scale_by_ademamix
from ._ademamix import scale_by_simplified_ademamix as scale_by_simplified_ademamix
from ._ademamix import simplified_ademamix as simplified_ademamix
from ._adopt import adopt as adopt
from ._adopt import quarter_power as quarter_power
from ._adopt import scale_by_adopt as scale_by_adopt
from ._cocob import COCOBState as COCOBState
from ._cocob import cocob as cocob
from ._cocob import scale_by_cocob as scale_by_cocob
from ._complex import SplitRealAndImaginaryState as SplitRealAndImaginaryState
from ._complex import split_real_and_imaginary as split_real_and_imaginary
from ._dadapt_adamw import DAdaptAdamWState as DAdaptAdamWState
from ._dadapt_adamw import dadapt_adamw as dadapt_adamw
from ._dog import DoGState as DoGState
from ._dog import DoWGState as DoWGState
from ._dog import dog as dog
from ._dog import dowg as dowg
from ._galore import GaLoreDimensionNumbers as GaLoreDimensionNumbers
from ._galore import GaLoreState as GaLoreState
from ._galore import galore as galore
from ._galore import scale_by_galore as scale_by_galore
from ._madgrad import MadgradState as MadgradState
from ._madgrad import madgrad as madgrad
from ._madgrad import scale_by_madgrad as scale_by_madgrad
from ._mechanic import MechanicState as MechanicState
from ._mechanic import mechanize as mechanize
from ._momo import MomoAdamState as MomoAdamState
from ._momo import MomoState as MomoState
from ._momo import momo as momo
from ._momo import momo_adam as momo_adam
from ._muon import MuonDimensionNumbers as MuonDimensionNumbers
from ._muon import MuonState as MuonState
from ._muon import muon as muon
from ._muon import scale_by_muon as scale_by_muon
from ._plateau import ReduceLROnPlateauState as ReduceLROnPlateauState
from ._plateau import reduce_on_plateau as reduce_on_plateau
from ._privacy import DifferentiallyPrivateAggregateState as DifferentiallyPrivateAggregateState
from ._privacy import differentially_private_aggregate as differentially_private_aggregate
from ._privacy import dpsgd as dpsgd
from ._prodigy import prodigy as prodigy
from ._sam import NormalizeState as NormalizeState
from ._sam import SAMState as SAMState
from ._sam import normalize as normalize
from ._sam import sam as sam
from ._schedule_free import schedule_free as schedule_free
from ._schedule_free import schedule_free_adamw as schedule_free_adamw
from ._schedule_free import schedule_free_eval_params as schedule_free_eval_params
from ._schedule_free import schedule_free_sgd as schedule_free_sgd
from ._sophia import HutchinsonState as HutchinsonState
from ._sophia import SophiaState as SophiaState
from ._sophia import hutchinson_estimator_diag_hessian as hutchinson_estimator_diag_hessian
from ._sophia import sophia as sophia
