"""Optax's ``optax.contrib`` optimizers, with Optax's names, signatures and defaults."""

from ._acprop import ACPropState as ACPropState
from ._acprop import acprop as acprop
from ._acprop import scale_by_acprop as scale_by_acprop
from ._cocob import COCOBState as COCOBState
from ._cocob import cocob as cocob
from ._cocob import scale_by_cocob as scale_by_cocob
from ._dadapt_adamw import DAdaptAdamWState as DAdaptAdamWState
from ._dadapt_adamw import dadapt_adamw as dadapt_adamw
from ._dog import DoGState as DoGState
from ._dog import DoWGState as DoWGState
from ._dog import dog as dog
from ._dog import dowg as dowg
from ._madgrad import MadgradState as MadgradState
from ._madgrad import madgrad as madgrad
from ._madgrad import scale_by_madgrad as scale_by_madgrad
from ._ademamix import ScaleBySimplifiedAdEMAMixState as ScaleBySimplifiedAdEMAMixState
from ._ademamix import ademamix as ademamix
from ._ademamix import scale_by_ademamix as scale_by_ademamix
from ._ademamix import scale_by_simplified_ademamix as scale_by_simplified_ademamix
from ._ademamix import simplified_ademamix as simplified_ademamix
from ._adopt import adopt as adopt
from ._adopt import quarter_power as quarter_power
from ._adopt import scale_by_adopt as scale_by_adopt
from ._prodigy import prodigy as prodigy
