"""Generic building blocks, one concern per module.

Also Optax's ``optax.transforms`` namespace: ``gradtx.transforms.<name>`` is ``gradtx.<name>``,
the same object (documented on the transforms page), for every building block and for
Optax's names of that namespace (``chain``, ``named_chain``). The modules inside this package
are private.
"""

#: The public names: gradtx's own of this family, and Optax's ``optax.transforms`` names.
NAMES = (
    "accumulate",
    "AccumulateState",
    "adaptive_grad_clip",
    "add_decayed_weights",
    "add_noise",
    "AddNoiseState",
    "apply_every",
    "apply_if_finite",
    "apply_updates_stochastic",
    "ApplyEveryState",
    "ApplyIfFiniteState",
    "BacktrackingLinesearchInfo",
    "centralize",
    "chain",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "clip_updates",
    "ClipState",
    "conditionally_mask",
    "conditionally_transform",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "current_hyperparams",
    "decay_mask",
    "ema",
    "ema_params",
    "EmaParamsState",
    "eval_params",
    "flatten",
    "freeze",
    "init_empty_state",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "InjectHyperparamsState",
    "keep_params_nonnegative",
    "key_path_str",
    "label_by_path",
    "lookahead",
    "LookaheadState",
    "mask_by_path",
    "mask_fn",
    "masked",
    "MaskedState",
    "measure_with_ema",
    "MomentumState",
    "monitor",
    "MonitorState",
    "multi_transform",
    "MultiSteps",
    "MultiStepsState",
    "named_chain",
    "negate",
    "normalize_by_update_norm",
    "partition",
    "PartitionState",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "quantized",
    "Quantized",
    "QuantizedArray",
    "reset_group",
    "scale_by_backtracking_linesearch",
    "scale_by_distance_over_gradients",
    "scale_by_momentum",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_schedule",
    "scale_by_sign",
    "scale_by_trust_ratio",
    "scale_by_zoom_linesearch",
    "ScaleByBacktrackingLinesearch",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByDistanceOverGradientsState",
    "ScaleByZoomLinesearch",
    "ScaleByZoomLinesearchState",
    "selective_transform",
    "set_to_zero",
    "ShouldSkipUpdateFunction",
    "skip_large_updates",
    "skip_not_finite",
    "snapshot",
    "SnapshotState",
    "state_nbytes",
    "stateless",
    "stateless_with_tree_map",
    "stochastic_round",
    "StochasticRoundingState",
    "swa",
    "swa_schedule",
    "SwaState",
    "trace",
    "unitwise_clip",
    "unitwise_norm",
    "value_and_grad_from_state",
    "with_extra_args_support",
    "with_stochastic_rounding",
    "zero_nans",
    "ZeroNansState",
    "zoom_linesearch",
    "ZoomLinesearchInfo",
    "ZoomLinesearchState",
)


def __getattr__(name: str):
    # Read from the top level on first use: the private modules here import one another and the
    # rest of the package, so the namespace cannot be filled while they load.
    if name in NAMES:
        import gradtx

        value = getattr(gradtx, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gradtx.transforms' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *NAMES})
