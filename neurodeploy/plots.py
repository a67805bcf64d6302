"""Figures for a verify report (matplotlib, PNG, written next to report.md).

* ``trajectories.png``: the weight of a few synapses over time, every backend overlaid;
* ``errors.png``: per comparison, the largest error over synapses at each step
  (normalized by the weight range) with its tolerance;
* ``curve.png``: the protocol's curve (dw against dt or frequency) for every backend;
* ``quantization.png``: lava-fixed (or emu-fixed) against its float twin over time,
  largest and RMS error over synapses, with the plan's own estimate (shown; the verdict judges
  the fixed point link by link, :mod:`neurodeploy.verdict.quantization`).
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from neurodeploy.files import follow_umask


#: Most points one line of a figure has.
MAX_POINTS = 5000


class _Figures:
    """Figures without pyplot (no backend is switched, nothing is kept in pyplot's registry): each is a
    plain ``matplotlib.figure.Figure``, shown by a notebook and saved by :func:`_save`."""

    @staticmethod
    def subplots(*args, figsize=None, **kwargs):
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        return fig, fig.subplots(*args, **kwargs)


def _save(fig, out_dir: str, name: str) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".png", dir=out_dir)
    os.close(fd)
    try:
        follow_umask(tmp)
        fig.savefig(tmp, dpi=100, format="png")
        os.replace(tmp, os.path.join(out_dir, name))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return name


def _synapses(data: dict, shape) -> list:
    curve = data.get("curve")
    if curve:
        pairs = [tuple(p) for p in curve.get("synapses", [])]
        if pairs:
            picks = sorted({0, len(pairs) // 2, len(pairs) - 1})
            return [pairs[k] for k in picks]
    n_post, n_pre = shape
    return sorted({(0, 0), (n_post // 2, n_pre // 2), (n_post - 1, n_pre - 1)})


def _present(diff: np.ndarray) -> np.ndarray:
    """(rows, synapses) errors without the synapses a mask leaves out (NaN at every row)."""
    absent = np.isnan(diff).all(axis=0) if diff.size else np.zeros(0, bool)
    return diff[:, ~absent] if absent.any() else diff


def write_plots(data: dict, trajectories: dict, out_dir: str, curve_synapses=None, rows: dict | None = None) -> list:
    """Write the figures for report ``data`` (:func:`figures`) into ``out_dir``; return their file names."""
    return [_save(fig, out_dir, name) for name, fig in figures(data, trajectories, rows).items()]


def figures(data: dict, trajectories: dict, rows: dict | None = None) -> dict:
    """The figures of report ``data``: file name -> ``matplotlib.figure.Figure`` (trajectories.png,
    errors.png, and where they apply curve.png and quantization.png). ``rows``: backend -> the 0-based
    steps of its trajectory's rows (default: every step from 0); trajectories may hold a recorded
    sub-grid of synapses (``data["recording"]``)."""
    if not trajectories:
        return {}
    plt = _Figures
    out = {}
    rows = {n: (rows or {}).get(n, np.arange(t.shape[0])) for n, t in trajectories.items()}
    # at most ~MAX_POINTS points per line: every k-th recorded row (the figures show the shape, the
    # report's numbers come from every recorded row)
    thin = {n: slice(None, None, max(1, -(-r.size // MAX_POINTS))) for n, r in rows.items()}
    rows = {n: r[thin[n]] for n, r in rows.items()}
    trajectories = {n: t[thin[n]] for n, t in trajectories.items()}
    any_traj = next(iter(trajectories.values()))
    dt_s = data["dt_ms"] * 1e-3
    w_range = data["weight_range"][1] - data["weight_range"][0]
    synapses_rec = (data.get("recording") or {}).get("synapses", "all")

    def common(a, b):
        steps, ia, ib = np.intersect1d(rows[a], rows[b], assume_unique=True, return_indices=True)
        return steps * dt_s, trajectories[a][ia], trajectories[b][ib]

    def local(i, j):  # a (post, pre) synapse in the recorded sub-grid
        if synapses_rec == "all":
            return i, j
        posts, pres = list(synapses_rec["posts"]), list(synapses_rec["pres"])
        return (posts.index(i) if i in posts else None), (pres.index(j) if j in pres else None)

    if synapses_rec == "all":
        synapses = _synapses(data, any_traj.shape[1:])
    else:
        posts, pres = synapses_rec["posts"], synapses_rec["pres"]
        picks = _synapses(data, (len(posts), len(pres)))
        synapses = [(posts[a], pres[b]) for a, b in picks] if not data.get("curve") else picks
    synapses = [(i, j) for i, j in synapses if None not in local(i, j)]
    present = [(i, j) for i, j in synapses if not np.isnan(any_traj[:, local(i, j)[0], local(i, j)[1]]).all()]
    synapses = present or synapses  # a mask: the synapses that exist
    fig, axes = plt.subplots(len(synapses), 1, figsize=(8, 2.4 * len(synapses)), sharex=True, squeeze=False)
    for ax, (i, j) in zip(axes[:, 0], synapses):
        li, lj = local(i, j)
        for name, traj in trajectories.items():
            ax.plot(rows[name] * dt_s, traj[:, li, lj], label=name, lw=1)
        ax.set_ylabel(f"w[{i},{j}]")
    axes[0, 0].legend(fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(f"{data['rule']}: weights of {len(synapses)} synapses, all backends")
    fig.tight_layout()
    out["trajectories.png"] = fig

    comps = [c for c in data["comparisons"] if c["reference"] in trajectories and c["candidate"] in trajectories]
    if comps:
        fig, ax = plt.subplots(figsize=(8, 4))
        for k, c in enumerate(comps):
            time_s, a, b = common(c["reference"], c["candidate"])
            diff = _present(np.abs(b - a).reshape(time_s.size, -1))
            err = np.maximum(diff.max(axis=1) / w_range, 1e-18) if diff.size else np.zeros(time_s.size)
            line, = ax.plot(time_s, err, lw=1, label=f"{c['reference']} -> {c['candidate']} ({c['share']})")
            tol = (c["tolerance"] or {}).get("max_abs")  # None: no predicted band
            if tol:
                ax.axhline(tol, color=line.get_color(), ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("max |error| / range (dashed: tolerance)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        out["errors.png"] = fig

    curve = data.get("curve")
    if curve:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name in trajectories:
            if name in curve:
                ax.plot(curve["x"], curve[name], marker="o", ms=3, lw=1, label=name)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel(curve["x_label"])
        ax.set_ylabel("dw")
        ax.legend(fontsize=7)
        fig.suptitle(f"{data['rule']}: {data['protocol']}")
        fig.tight_layout()
        out["curve.png"] = fig

    band = data.get("quantization_plan", {}).get("fixed", {}).get("band")
    pair = next(((a, b) for a, b in (("lava-float", "lava-fixed"), ("emu-float", "emu-fixed"))
                 if a in trajectories and b in trajectories), None)
    if band and pair:
        time_s, a, b = common(pair[0], pair[1])
        diff = _present(np.abs(b - a).reshape(time_s.size, -1)) / w_range
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.plot(time_s, diff.max(axis=1), lw=1, label="max over synapses")
        ax.plot(time_s, np.sqrt((diff ** 2).mean(axis=1)), lw=1, label="RMS over synapses")
        ax.axhline(band["max_abs"], color="C0", ls="--", lw=0.8, label="plan's own estimate (max; not the verdict)")
        ax.axhline(band["rmse"], color="C1", ls="--", lw=0.8, label="plan's own estimate (rmse)")
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"|{pair[1]} - {pair[0]}| / range")
        ax.legend(fontsize=7)
        fig.tight_layout()
        out["quantization.png"] = fig
    return out
