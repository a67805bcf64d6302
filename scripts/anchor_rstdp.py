"""The anchor for rstdp on the learning engine: Lava's own ``RewardModulatedSTDP`` on the same trains.

Usage: PYTHONPATH=. python scripts/anchor_rstdp.py [--steps 2000] [--seed 3]

Lava's rule keeps the eligibility in the tag ``t`` and decays it by a product
``u0 * t * tau_e`` every epoch (``dt = lr A_minus x0 y1 + lr A_plus y0 x1 - u0 t tau_e``,
``dw = u0 t y2``); its constructor rounds every constant to a power of two
(``float_to_literal``). Here it gets rstdp's parameters in mV (weights in mV,
``A_plus = 0.1``, ``A_minus = -0.15``, ``tau_e = dt / tau_c = 0.001``), ``y1`` is the
post trace and ``y2 = rate dt (DA_tonic + da)``, both supplied by the post side
(divided by Lava's one decay of received values), on ``lava-float``. Variants:

* ``tau_e = dt / tau_c``: 0.001 -> 2^-10, which Lava refuses ("Exponent of scaling constant
  exponent must within -7 and 9"): rstdp's eligibility cannot be written in Lava's rule at t_epoch 1;
* ``literal``: as Lava writes it with the smallest decay it accepts, 2^-7 per step (tau_c 127.5 ms);
  0.1 -> 2^-3, -0.15 -> -2^-3 (A-/A+ 1 instead of 1.5);
* ``amplitudes exact``: the STDP amplitudes exact (the trace scales absorb them), decay 2^-7 per step;
* ``t_epoch 8``: amplitudes exact, decay 2^-7 per 8-step epoch (tau_c 1.02 s), dw every epoch; the
  supplied y1 is read at the epoch's end (Lava's three-factor model decays the last received value
  back to the spike), not at the pre spike.

Prints each variant's error against brian2 and brian2-step (max abs and rmse
over steps and synapses, normalized by the weight range), next to neurodeploy's approximation
(emu-float: tag decay 2^-7 every 8 epochs, u3) and its fixed point (emu-fixed).
"""
from __future__ import annotations

import argparse

import numpy as np


def run_anchor(rule, trains, variant: str) -> np.ndarray:
    from neurodeploy.lava.backends import _execute
    from neurodeploy.compile.loihi import Y3F_DECAY
    from neurodeploy.lava.compat import import_lava

    import_lava()
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    from lava.proc.io.source import RingBuffer
    from lava.proc.learning_rules.r_stdp_learning_rule import RewardModulatedSTDP
    from lava.utils.weightutils import SignMode

    from neurodeploy.lava.recording.processes import RecordingLearningDense

    v = rule.values
    mv = 1e-3
    tau_x = rule.tau_steps(rule.trace("x"))
    t_epoch = 8 if variant == "t_epoch 8" else 1
    if variant in ("literal", "tau_e = dt / tau_c"):
        decay = rule.dt / v["tau_c"] if variant == "tau_e = dt / tau_c" else 2.0 ** -7
        lava_rule = RewardModulatedSTDP(learning_rate=1, A_plus=v["A_plus"] / mv, A_minus=-v["A_minus"] / mv,
                                        pre_trace_decay_tau=tau_x, post_trace_decay_tau=tau_x,
                                        pre_trace_kernel_magnitude=1.0, post_trace_kernel_magnitude=1.0,
                                        eligibility_trace_decay_tau=decay, t_epoch=1, rng_seed=7)
        k_x, k_y = 1.0, 1.0
    else:
        # STDP amplitudes exact: 2^-3 * x0 * y1 with y1 scaled by A_minus / 2^-3 (x likewise)
        k_x, k_y = (v["A_plus"] / mv) / 2 ** -3, (v["A_minus"] / mv) / 2 ** -3
        lava_rule = Loihi3FLearningRule(dw="u0 * t * y2", dt="-2^-3 * x0 * y1 + 2^-3 * y0 * x1 - 2^-7 * u0 * t",
                                        x1_impulse=k_x, x1_tau=tau_x, t_epoch=t_epoch, rng_seed=7)
    steps = trains.steps
    a = float(np.exp(-1.0 / tau_x))
    post_trace = np.zeros(trains.post.shape)
    y = np.zeros(trains.n_post)
    for n in range(steps):
        y = y * a + trains.post[:, n]
        post_trace[:, n] = y
    a_d = float(np.exp(-1.0 / rule.tau_steps(rule.trace("da"))))
    da = np.zeros(trains.post.shape)
    d = np.zeros(trains.n_post)
    reward = trains.reward_or_zeros()
    for n in range(steps):
        d = d * a_d + v["DA_reward"] * reward[:, n]
        da[:, n] = d
    y1 = post_trace * k_y / Y3F_DECAY
    y1 = y1 / Y3F_DECAY ** (t_epoch - 1)  # an epoch decays the received value t_epoch times
    y2 = t_epoch * v["rate"] * rule.dt * (v["DA_tonic"] + da) / Y3F_DECAY ** t_epoch
    w0 = np.asarray(trains.w0, dtype=float) / mv

    def build(history_path):
        conn = RecordingLearningDense(weights=w0, history_path=history_path, learning_rule=lava_rule,
                                      sign_mode=SignMode.EXCITATORY,
                                      weight_bounds=(rule.weight.w_min / mv, rule.weight.w_max / mv))
        RingBuffer(data=trains.pre.astype(float)).s_out.connect(conn.s_in)
        RingBuffer(data=trains.post.astype(float)).s_out.connect(conn.s_in_bap)
        for slot, values in (("y1", y1), ("y2", y2), ("y3", np.zeros_like(y1))):
            RingBuffer(data=values).s_out.connect(getattr(conn, f"s_in_{slot}"))
        return conn

    return _execute(build, (steps,) + w0.shape, "floating_pt") * mv


def main():
    from neurodeploy.targets import load_all
    from neurodeploy.compile.compilation import compile_plans
    from neurodeploy.protocol import make_trains
    from neurodeploy.spec.loader import load_rule

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rule = load_rule("reference/rules/rstdp.yaml")
    trains = make_trains(rule, "poisson", {"steps": args.steps}, args.seed)
    registry = load_all()
    plans = compile_plans(rule, trains, approximate=True)
    refs = {name: registry.get(name).run(rule, trains, plans).trajectory for name in ("brian2", "brian2-step")}
    w_range = rule.weight.range
    rows = []
    for variant in ("tau_e = dt / tau_c", "literal", "amplitudes exact", "t_epoch 8"):
        try:
            rows.append((f"Lava RewardModulatedSTDP ({variant}), lava-float", run_anchor(rule, trains, variant)))
        except ValueError as exc:
            rows.append((f"Lava RewardModulatedSTDP ({variant})", str(exc)))
    for name in ("emu-float", "emu-fixed"):
        rows.append((f"neurodeploy approximation, {name}", registry.get(name).run(rule, trains, plans).trajectory))
    print(f"rstdp, poisson {trains.n_pre}x{trains.n_post}, {trains.steps} steps, seed {args.seed}: error against brian2 "
          "and brian2-step (the engine's step order; brian2 -> brian2-step alone is the timing share), normalized "
          "by the weight range")
    for name, trajectory in rows:
        if isinstance(trajectory, str):
            print(f"  {name:58s} refused by Lava: {trajectory}")
            continue
        line = f"  {name:58s}"
        for ref_name, ref in refs.items():
            diff = np.abs(trajectory - ref)
            line += f"  {ref_name}: max {diff.max() / w_range:.4g} rmse {np.sqrt(np.mean(diff ** 2)) / w_range:.4g}"
        print(line)


if __name__ == "__main__":
    main()
