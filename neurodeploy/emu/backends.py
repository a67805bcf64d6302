"""The emulator backends ``emu-float`` and ``emu-fixed``: Lava's learning engine in numpy.

Same plans, same units and same report facts as ``lava-float`` / ``lava-fixed``
(:mod:`neurodeploy.lava.backends`), without starting Lava: the fixed-point
trajectory is bit-identical to ``lava-fixed``, the float one equal to
``lava-float`` to rounding (:mod:`neurodeploy.emu.engine`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurodeploy.backend import REGISTRY, EngineBackend
from neurodeploy.compile.loihi import RNG_SEED
from neurodeploy.emu.engine import simulate as emulate
from neurodeploy.compile.loihi import supplied_traces


class _EmuBackend(EngineBackend):
    """``unsupported_reason`` and report facts as the Lava backends (the rule must lower to the engine).

    Every dependency the plans use is emulated: ``x0``, ``y0``, the continuous
    terms' ``u0`` and ``uk``; the tag ``t`` (dt); three-factor rules with the y
    traces the post side supplies (:func:`~neurodeploy.lava.backends.supplied_traces`).
    """

    records = True  # records only what is asked (memory O(recorded), not O(steps x synapses))
    closed_loop = True  # the closed loop's LIF: :class:`neurodeploy.emu.closed_loop.Lif`, bit-exact with Lava's
    networks = True  # :func:`neurodeploy.emu.network.simulate_network`, bit-exact with lava-fixed
    lava_sparse = False  # the open loop's mask: synapses starting at 0 stay (Lava's LearningSparse drops them)

    def trajectory(self, plan, w0_lava, trains, progress=None, recording=None, supplied=None):
        # recorded straight in rule units: w_lava * weight_scale, as plan.weights_from_lava
        if recording is None or recording.everything:
            return emulate(plan, w0_lava, trains.pre, trains.post, rng_seed=RNG_SEED, scale=plan.weight_scale,
                           supplied=supplied)
        posts, pres = recording.post_index(trains.n_post), recording.pre_index(trains.n_pre)
        flat = (posts[:, None] * trains.n_pre + pres[None, :]).reshape(-1)
        out = emulate(plan, w0_lava, trains.pre, trains.post, rng_seed=RNG_SEED, scale=plan.weight_scale,
                      record_rows=recording.rows(trains.steps), record_synapses=flat, supplied=supplied)
        return out.reshape(out.shape[0], posts.size, pres.size)

    def simulate(self, rule, trains, plans, progress=None, recording=None):

        plan = plans[self.mode]
        w0 = plan.weights_to_lava(trains.w0)
        info = {"w0_lava_error_max": float(np.max(np.abs(plan.weights_from_lava(w0) - trains.w0)))}
        schedule = getattr(trains, "reward_schedule", None) if plan.three_factor else None
        if trains.network is not None:
            from neurodeploy.emu.network import simulate_network

            net = trains.network
            rows = None if recording is None else recording.rows(trains.steps)  # memory O(recorded rows)
            weights, spikes = simulate_network(rule, net, plan, trains.w0, trains.pre[: net.n_inputs],
                                               rng_seed=RNG_SEED, record_rows=rows, third_factor=schedule)
            info["post_spikes"] = spikes
            if recording is not None:
                from neurodeploy.backend import apply_recording
                weights = apply_recording(weights, dataclasses.replace(recording, every=1), weights.shape[0])
            return weights, info
        if trains.neuron is not None and (trains.mask is not None or schedule is not None):
            # Lava's LearningSparse drives the LIF; a three-factor rule: its traces online, as lava-* run it
            from neurodeploy.emu.network import simulate_network
            from neurodeploy.network import closed_loop_network

            net, w0_net = closed_loop_network(trains)
            rows = None if recording is None else recording.rows(trains.steps)
            weights, spikes = simulate_network(rule, net, plan, w0_net, trains.pre, rng_seed=RNG_SEED,
                                               record_rows=rows, third_factor=schedule)
            info["post_spikes"] = spikes
            weights = np.ascontiguousarray(weights[:, :, : trains.n_pre])
            if recording is not None:
                from neurodeploy.backend import apply_recording
                weights = apply_recording(weights, dataclasses.replace(recording, every=1), weights.shape[0])
            return weights, info
        if trains.neuron is not None:
            from neurodeploy.backend import apply_recording
            from neurodeploy.compile.loihi import lif_params
            from neurodeploy.emu.closed_loop import simulate_closed_loop

            n = trains.neuron  # Lava's LIF as lava-float/lava-fixed build it
            lif = lif_params(plan.mode, n["tau_u_ms"], n["tau_v_ms"], n["vth"], plan, dt=rule.dt * 1e3)
            rows = None if recording is None else recording.rows(trains.steps)  # memory O(recorded rows)
            weights, post = simulate_closed_loop(plan, w0, trains.pre, lif, rng_seed=RNG_SEED,
                                                 scale=plan.weight_scale, record_rows=rows)
            info["post_spikes"] = post
            if recording is not None:
                weights = apply_recording(weights, dataclasses.replace(recording, every=1), weights.shape[0])
            return weights, info
        supplied = None
        if plan.three_factor:
            supplied = supplied_traces(rule, plan, trains)
            info["three_factor"] = True
        return self.trajectory(plan, w0, trains, progress, recording, supplied), info


@REGISTRY.register
class EmuFloat(_EmuBackend):
    name = "emu-float"
    description = "numpy emulator of Lava's floating_pt learning model (weights clipped to the rule's bounds)"
    mode = "float"


@REGISTRY.register
class EmuFixed(_EmuBackend):
    name = "emu-fixed"
    description = "numpy emulator of Lava's fixed_pt bit-approximate learning model (bit-exact)"
    mode = "fixed"
