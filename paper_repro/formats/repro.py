"""Number formats beyond the uniform integer grid: Kuzmin et al. 2022, Widrow–Kollár, INT vs FP (Chen et al. 2025), MX rules.

Everything is exact (bin-by-bin integrals; block formats through the order statistics of the block
maximum) except where a table says Monte Carlo. Sources and formulas: ../shared/papers/formats.md.

Tables (paper_repro/formats/):
  kuzmin            INT8 vs FP8 E2M5/E3M4/E4M3/E5M2 at the searched max value, U(−1,1), N(0,1), t(8)
  widrow_kollar     SQNR at the optimal scale vs 13.47 + 6.02·M; and E4M3 at a fixed scale over σ
  crest             INT vs FP block formats against the block crest factor, exact beside Chen et al.'s INT form
  mx_rules          floor / ceil / rne shared-exponent rules: SQNR and how often the block maximum saturates
  formats           every CLI format under Gaussian, Laplace and Student-t(5), and on two real weight
                    tensors (silero-vad, if installed: exact tensor MSE): bits/element, SQNR
  budget            the best format at each bits-per-element budget (scale overhead included)
  REPORT.md
Figures (figures/formats/): sqnr_vs_bits.png, widrow_kollar.png, crest.png
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import integrate

from qtheory import Gaussian, Laplace
from qtheory._io import save_figure, write_table, write_text
from qtheory.formats import (
    BLOCK_FORMATS,
    FormatInfo,
    block_mse,
    format_table,
    level_set,
    optimal_scale,
)
from qtheory.formats.exact import StudentT, Uniform, abs_sf

PRIORS = {"gaussian": Gaussian(), "laplace": Laplace(), "t5": StudentT(5.0)}
MAX_VALUE_DIGITS = 4   # significant digits of the Kuzmin table's searched max value
WK_DB = 10 * math.log10(1 / 0.180)  # 7.45 dB: Widrow–Kollár's 0.180·2^(−2p), p = M + 1


def kuzmin_table() -> pd.DataFrame:
    """Kuzmin et al.'s grids use all 256 codes and a continuous bias: a scale searched for minimum MSE."""
    priors = {"uniform(-1,1)": Uniform(1.0), "normal clipped ±10": Gaussian(), "t(8) clipped ±100": StudentT(8.0)}
    grids = {
        "INT8": ("int8", "all 256 codes"),
        "E2M5": (FormatInfo("e2m5_all", 2, 5, 1, "none").level_set(), "all 256 codes"),
        "E3M4": (FormatInfo("e3m4_all", 3, 4, 3, "none").level_set(), "all 256 codes"),
        "E4M3": (FormatInfo("e4m3_all", 4, 3, 7, "none").level_set(), "all 256 codes"),
        "E5M2": (FormatInfo("e5m2_all", 5, 2, 15, "none").level_set(), "all 256 codes"),
        "E3M4 (ml_dtypes float8_e3m4)": ("fp8_e3m4", "IEEE: Inf/NaN codes"),
        "E4M3 (ml_dtypes float8_e4m3fn)": ("fp8_e4m3fn", "fn: one NaN code pair"),
        "E5M2 (ml_dtypes float8_e5m2)": ("fp8_e5m2", "IEEE: Inf/NaN codes"),
    }
    rows = []
    for pname, p in priors.items():
        for g, (cb, conv) in grids.items():
            r = optimal_scale(p, cb)
            rows.append(dict(prior=pname, format=g, codes=conv, max_value=r.alpha, sqnr_db=r.sqnr_db))
    df = pd.DataFrame(rows)
    # The MSE is flat at its optimum (t(8), E4M3: ±1e-5 in the max value moves it by ~1e-12, the size of
    # its rounding), so the searched max value is known to ~5 significant digits only: 4 are printed.
    return df.assign(max_value=[float(f"{v:.{MAX_VALUE_DIGITS}g}") for v in df.max_value],
                     sqnr_db=df.sqnr_db.round(2))


def widrow_kollar_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for name in ("fp8_e2m5", "fp8_e3m4", "fp8_e4m3fn", "fp8_e5m2", "fp6_e2m3fn", "fp6_e3m2fn", "fp4_e2m1fn"):
        if name == "fp8_e2m5":
            cb, m = FormatInfo("fp8_e2m5", 2, 5, 1, "none").level_set(), 5
        else:
            cb, m = level_set(name), int(name.split("m")[-1][0])
        for pname in ("gaussian", "laplace"):
            r = optimal_scale(PRIORS[pname], cb)
            rows.append(dict(format=name, mantissa_bits=m, prior=pname, sqnr_exact_db=round(r.sqnr_db, 2),
                             sqnr_law_db=round(WK_DB + 20 * math.log10(2) * (m + 1), 2)))
    opt = pd.DataFrame(rows).assign(deviation_db=lambda d: (d.sqnr_exact_db - d.sqnr_law_db).round(2))
    # E4M3 at scale 1 (levels up to 448) for N(0, σ²) over σ: underflow on the left, overflow on the right
    from qtheory.formats import element_quantizer, level_set_mse

    q = element_quantizer("fp8_e4m3fn", 1.0)
    rows = []
    for k in np.arange(-14.0, 10.5, 0.5):
        sigma = 2.0**k
        mse = level_set_mse(Gaussian(sigma=sigma), q).mse
        rows.append(dict(log2_sigma=k, sigma_over_max=sigma / 448.0, sqnr_exact_db=round(10 * math.log10(sigma**2 / mse), 2),
                         sqnr_law_db=round(WK_DB + 20 * math.log10(2) * 4, 2)))
    sweep = pd.DataFrame(rows).assign(deviation_db=lambda d: (d.sqnr_exact_db - d.sqnr_law_db).round(2))
    return opt, sweep


def expected_block_max(prior, B: int) -> float:
    """``E[max_i |X_i|]`` over a block of ``B``: ``∫ 1 − G(m)^B dm``."""
    f = lambda m: -math.expm1(B * math.log1p(-min(float(abs_sf(prior, m)), 1.0)))  # noqa: E731
    return integrate.quad(f, 0, np.inf, limit=200, epsabs=1e-12)[0]


CREST_PAIRS = (("mxint8", "mxfp8_e4m3", 8, 1.5), ("mxint4", "mxfp4", 4, 1.5), ("nvint4", "nvfp4", 4, 1.05))


def crest_table() -> pd.DataFrame:
    """Exact SQNR of INT and FP block formats for priors of growing crest factor (Chen et al. 2025).

    The crest factor is ``κ = E[block max] / σ``; Chen et al.'s INT closed form is
    ``10.8 + 6.02(b−1) − 20 log10 ρ − 20 log10 κ`` with ρ = 1.5 (UE8M0) or 1.05 (E4M3).
    """
    priors = {"gaussian": Gaussian(), "t30": StudentT(30.0), "t10": StudentT(10.0), "t6": StudentT(6.0),
              "laplace": Laplace(), "t4": StudentT(4.0), "t3": StudentT(3.0)}
    rows = []
    for pname, p in priors.items():
        for int_name, fp_name, bits, rho in CREST_PAIRS:
            B = BLOCK_FORMATS[int_name].block_size
            kappa = expected_block_max(p, B) / p.std
            ri, rf = block_mse(p, int_name), block_mse(p, fp_name)
            rows.append(dict(prior=pname, pair=f"{int_name} vs {fp_name}", block_size=B, crest=round(kappa, 3),
                             int_sqnr_db=round(ri.sqnr_db, 2), fp_sqnr_db=round(rf.sqnr_db, 2),
                             int_chen_db=round(10.8 + 6.02 * (bits - 1) - 20 * math.log10(rho) - 20 * math.log10(kappa), 2),
                             winner="INT" if ri.sqnr_db > rf.sqnr_db else "FP"))
    return pd.DataFrame(rows)


def crossover(crest: pd.DataFrame) -> pd.DataFrame:
    """Crest factor where INT stops winning (linear interpolation of int − fp in crest)."""
    rows = []
    for pair, d in crest.groupby("pair", sort=False):
        d = d.sort_values("crest")
        diff = (d.int_sqnr_db - d.fp_sqnr_db).to_numpy()
        k = d.crest.to_numpy()
        where = np.flatnonzero((diff[:-1] > 0) & (diff[1:] <= 0))
        if where.size:
            i = where[0]
            kc = k[i] + (k[i + 1] - k[i]) * diff[i] / (diff[i] - diff[i + 1])
            rows.append(dict(pair=pair, crossover_crest=round(float(kc), 2), note="INT wins below"))
        else:
            rows.append(dict(pair=pair, crossover_crest=np.nan,
                             note="INT wins everywhere" if np.all(diff > 0) else "FP wins everywhere"))
    return pd.DataFrame(rows)


def mx_rules_table() -> pd.DataFrame:
    rows = []
    for name in ("mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxint8"):
        bf = BLOCK_FORMATS[name]
        loguniform = math.log2(2.0 ** (bf.emax_elem + 1) / bf.element_max)
        for pname, p in PRIORS.items():
            res = {rule: block_mse(p, bf.with_rule(rule)) for rule in ("floor", "ceil", "rne")}
            best = max(res, key=lambda r: res[r].sqnr_db)
            rows.append(dict(format=name, prior=pname,
                             **{f"sqnr_{r}_db": round(v.sqnr_db, 2) for r, v in res.items()},
                             **{f"saturation_{r}": round(v.saturation, 3) for r, v in res.items()},
                             saturation_loguniform=round(loguniform, 3), best_rule=best,
                             ceil_gain_db=round(res["ceil"].sqnr_db - res["floor"].sqnr_db, 2)))
    return pd.DataFrame(rows)


#: Real tensors (read from the installed silero-vad weights file, not its package code): blocks run along
#: the input dimension (last axis after flattening the kernel).
REAL_TENSORS = ("lstm_cell.weight_ih", "conv1.weight")


def real_tensors() -> dict[str, np.ndarray]:
    import importlib.util

    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad_16k.safetensors"
    if not path.is_file():
        return {}
    from safetensors.numpy import load_file

    w = load_file(str(path))
    return {f"silero:{k}": w[k].astype(np.float64).reshape(w[k].shape[0], -1) for k in REAL_TENSORS if k in w}


def formats_table() -> pd.DataFrame:
    frames = [format_table(p).assign(prior=pname) for pname, p in PRIORS.items()]
    frames += [format_table(x).assign(prior=name) for name, x in real_tensors().items()]
    df = pd.concat(frames, ignore_index=True)
    df = df[["prior", "format", "kind", "bits_per_element", "sqnr_db", "saturation"]]
    return df.assign(sqnr_db=df.sqnr_db.round(2), saturation=df.saturation.round(3))


BUDGETS = (4.0, 4.25, 4.5, 6.25, 8.0, 8.5)


def budget_table(formats: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for pname, d in formats.groupby("prior", sort=False):
        for b in BUDGETS:
            ok = d[d.bits_per_element <= b].sort_values("sqnr_db", ascending=False, kind="stable")
            rows.append(dict(prior=pname, bits_budget=b, best_format=ok.format.iloc[0],
                             bits_per_element=ok.bits_per_element.iloc[0], sqnr_db=ok.sqnr_db.iloc[0]))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- report
def report(kuz, wk_opt, wk_sweep, crest, cross, rules, formats, budget) -> str:
    def k(prior, fmt):
        return kuz[(kuz.prior == prior) & (kuz.format == fmt)].sqnr_db.iloc[0]

    lines = ["# Number formats: reproduction report", "",
             "Generated by `qtheory repro formats` from the CSV tables beside this file; every number below is "
             "read from them. All values are exact integrals (no Monte Carlo) unless stated.", ""]
    lines += ["## Kuzmin et al. 2022 (FP8: the power of the exponent)", "",
              "SQNR at the MSE-optimal (searched) max value. Like the paper, the FP8 grids count all 256 codes "
              "as values and the exponent bias is continuous (the searched scale absorbs it); ml_dtypes' "
              "float8_e4m3fn loses its NaN code pair, and float8_e5m2/e3m4 reserve a whole exponent for Inf/NaN. "
              "N(0,1) clipped at ±10 and t(8) clipped at ±100 are computed unclipped (the clipped mass is "
              "below 1e-13). The max value is given to "
              f"{MAX_VALUE_DIGITS} significant digits: the MSE is flat at its optimum (a relative change of 1e-5 "
              "moves it by ~1e-12, the size of its rounding), so further digits depend on the CPU. Where the "
              "optima of several binades tie (MSEs equal to 1e-10: a float grid is invariant under ×2 away "
              "from its ends), the smallest max value is listed.", ""]
    for p in kuz.prior.unique():
        d = kuz[kuz.prior == p].set_index("format").sqnr_db
        best = d[["INT8", "E2M5", "E3M4", "E4M3", "E5M2"]].idxmax()
        lines.append(f"- {p}: INT8 {k(p, 'INT8')} dB, E2M5 {k(p, 'E2M5')}, E3M4 {k(p, 'E3M4')}, "
                     f"E4M3 {k(p, 'E4M3')}, E5M2 {k(p, 'E5M2')} dB; best: {best}.")
    gaps = {p: round(k(p, "E2M5") - k(p, "E3M4"), 2) for p in kuz.prior.unique()}
    ints = {p: round(k(p, "INT8") - max(k(p, f) for f in ("E2M5", "E3M4", "E4M3", "E5M2")), 2) for p in kuz.prior.unique()}
    lines += ["", "The paper's direction holds: INT8 minus the best FP8 grid goes "
              + ", ".join(f"{v:+} dB ({p})" for p, v in ints.items())
              + "; the lead of E2M5 over E3M4 shrinks as the tails grow: "
              + ", ".join(f"{v:+} dB ({p})" for p, v in gaps.items()) + ". "
              "With a searched scale, ml_dtypes' reserved codes cost "
              f"{round(k('normal clipped ±10', 'E4M3') - k('normal clipped ±10', 'E4M3 (ml_dtypes float8_e4m3fn)'), 2)} dB "
              "for E4M3 and "
              f"{round(k('normal clipped ±10', 'E5M2') - k('normal clipped ±10', 'E5M2 (ml_dtypes float8_e5m2)'), 2)} dB "
              "for E5M2 under N(0,1) (at 0.01 dB resolution): the codes lost are at the top of the range, "
              "which the optimal scale does not use.", ""]
    lines += ["## Widrow & Kollár's floating-point noise law", "",
              f"E[ν²] ≈ 0.180·2^(−2p)·E[x²] means SQNR ≈ {WK_DB:.2f} + 6.02·(M+1) dB without overflow or underflow.", ""]
    for _, r in wk_opt[wk_opt.prior == "gaussian"].iterrows():
        lines.append(f"- {r.format} (M={r.mantissa_bits}), Gaussian at its optimal scale: {r.sqnr_exact_db} dB vs law "
                     f"{r.sqnr_law_db} dB ({r.deviation_db:+} dB).")
    ok = wk_sweep[wk_sweep.deviation_db.abs() <= 0.1]
    lines += ["", f"E4M3 at a fixed scale (levels up to 448) under N(0, σ²): the law holds to 0.1 dB for "
              f"σ from 2^{ok.log2_sigma.min():g} to 2^{ok.log2_sigma.max():g}; below, subnormals and underflow "
              f"(at σ = 2^{wk_sweep.log2_sigma.min():g}: {wk_sweep.sqnr_exact_db.iloc[0]} dB); above, overflow "
              f"(at σ = 2^{wk_sweep.log2_sigma.max():g}: {wk_sweep.sqnr_exact_db.iloc[-1]} dB). At their optimal "
              "scale, formats with only four binades ("
              + ", ".join(sorted(set(wk_opt[(wk_opt.prior == "gaussian") & (wk_opt.deviation_db < -0.25)].format)))
              + ") stay below the law under a Gaussian: the scale trades underflow against overflow.", ""]
    lines += ["## INT vs FP block formats against the crest factor (Chen et al. 2025)", "",
              "Crest factor κ = E[block max]/σ under Gaussian, Laplace and Student-t priors; exact SQNR of each pair, "
              "beside Chen et al.'s INT closed form 10.8 + 6.02(b−1) − 20 log10 ρ − 20 log10 κ (ρ = 1.5 for "
              "E8M0 scales, 1.05 for E4M3). Their FP closed forms are not reproduced here.", ""]
    for _, r in cross.iterrows():
        if np.isnan(r.crossover_crest):
            lines.append(f"- {r.pair}: {r.note} over κ = {crest.crest.min()}–{crest.crest.max()}.")
        else:
            lines.append(f"- {r.pair}: crossover at κ ≈ {r.crossover_crest} ({r.note}).")
    t3 = crest[crest.prior == "t3"]
    lines.append("- Chen et al.'s INT form overestimates the exact INT SQNR by up to "
                 f"{round(float((crest.int_chen_db - crest.int_sqnr_db).max()), 2)} dB (heaviest tails, t3: "
                 + ", ".join(f"{r.pair.split()[0]} {round(r.int_chen_db - r.int_sqnr_db, 2)} dB" for _, r in t3.iterrows())
                 + ").")
    g = crest[crest.prior == "gaussian"]
    for _, r in g.iterrows():
        lines.append(f"- Gaussian, {r.pair}: INT {r.int_sqnr_db} dB (Chen's form {r.int_chen_db} dB), FP {r.fp_sqnr_db} dB.")
    lines += ["", "## The MX shared-exponent rule", "",
              "OCP MX v1.0 takes 2^(floor(log2 amax) − emax_elem); the block maximum then exceeds the largest "
              "element and saturates whenever its mantissa is above max_elem/2^emax_elem. 'ceil' takes the "
              "smallest power of two with amax/scale ≤ max_elem (never saturates); 'rne' the power of two nearest "
              "to amax/max_elem (an E8M0 cast, ties up), which can saturate the maximum by up to 1.5×.", ""]
    for _, r in rules[rules.prior == "gaussian"].iterrows():
        lines.append(f"- {r.format}, Gaussian: floor saturates the block max with probability {r.saturation_floor} "
                     f"(log-uniform estimate {r.saturation_loguniform}); SQNR floor {r.sqnr_floor_db}, ceil "
                     f"{r.sqnr_ceil_db}, rne {r.sqnr_rne_db} dB; best rule: {r.best_rule}.")
    lines += ["", f"Rounding up gains between {rules.ceil_gain_db.min()} and {rules.ceil_gain_db.max()} dB over the "
              "formats and priors of `mx_rules.csv`.", ""]
    lines += ["## Best format at a bits-per-element budget", "",
              "Scale overhead included (E8M0/32 = 0.25, E4M3/16 = 0.5, FP16/32 = 0.5, FP16/128 = 0.125 bit); element "
              "formats at their MSE-optimal per-tensor scale; block formats with their own rule. NVFP4 under a prior "
              "uses the large-tensor per-tensor scale: amax is the 1 − 2^−24 quantile of |X|. Rows named silero:… are "
              "real weight tensors of the silero-vad model (exact MSE of that tensor, blocks along the input "
              "dimension; saturation not tabulated).", ""]
    for _, r in budget.iterrows():
        lines.append(f"- {r.prior}, ≤ {r.bits_budget} bits: {r.best_format} ({r.bits_per_element} bits, {r.sqnr_db} dB).")
    lines += ["", CONVENTIONS]
    return "\n".join(lines) + "\n"


CONVENTIONS = """## Conventions and where references differ

- Rounding is to the nearest level, ties to the even code, with saturation at the largest level, for every
  element format (OCP). `tests/test_formats.py` checks every code and every tie against ml_dtypes casts.
- ml_dtypes casts do not saturate (float8_e4m3fn overflows to NaN above 464, float8_e5m2 to Inf from 61440):
  clip first. Before ml_dtypes 0.7 they also rounded a float64 input through float32, so a float64 just inside
  a tie could round the other way (a double rounding; 0.7 casts float64 directly); on float32 inputs they agree
  with qtheory bit for bit.
- microxcaling's default element rounding `"nearest"` rounds half away from zero; its `"even"` mode (and the
  OCP spec) round half to even, as here.
- MX scales: `floor` is OCP MX v1.0 §6.3; `ceil` is the smallest power of two without saturation (the
  round-up of recent MXFP8 pre-training recipes); `rne` is ml_dtypes' float8_e8m0fnu cast of amax/max_elem.
- NVFP4: the per-tensor scale amax/(448·6) is kept in float64 (FP32 in the recipe); an E4M3 block scale that
  rounds to zero is raised to 2^-9. "4 over 6" chooses per block from all its elements, so it has no
  order-statistics integral: only the tensor path and Monte Carlo.
- Group-wise INT: symmetric absmax, levels −(2^(b−1)−1)..2^(b−1)−1, scale amax/qmax rounded to FP16.
"""


# ----------------------------------------------------------------------------- figures
def fig_sqnr_vs_bits(formats):
    import matplotlib.pyplot as plt

    groups = list(formats.groupby("prior", sort=False))
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4.5), sharey=True)
    for ax, (pname, d) in zip(axes, groups, strict=True):
        for kind, mk in (("element", "o"), ("block", "s")):
            e = d[d.kind == kind]
            ax.scatter(e.bits_per_element, e.sqnr_db, marker=mk, label=kind)
            for _, r in e.iterrows():
                ax.annotate(r.format, (r.bits_per_element, r.sqnr_db), fontsize=7, xytext=(3, 2),
                            textcoords="offset points")
        ax.set(title=pname, xlabel="bits per element (with scale overhead)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("SQNR (dB), exact")
    axes[0].legend()
    return fig


def fig_widrow_kollar(sweep):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(sweep.log2_sigma, sweep.sqnr_exact_db, "k", label="E4M3 exact, N(0, σ²), scale 1")
    ax.plot(sweep.log2_sigma, sweep.sqnr_law_db, "r--", label="Widrow–Kollár 0.180·2^(−2p)")
    ax.set(xlabel="log2 σ", ylabel="SQNR (dB)")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def fig_crest(crest):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CREST_PAIRS), figsize=(15, 4))
    for ax, (pair, d) in zip(axes, crest.groupby("pair", sort=False), strict=True):
        d = d.sort_values("crest")
        ax.plot(d.crest, d.int_sqnr_db, "o-", label="INT exact")
        ax.plot(d.crest, d.int_chen_db, ":", label="INT, Chen et al. form")
        ax.plot(d.crest, d.fp_sqnr_db, "s-", label="FP exact")
        ax.set(title=pair, xlabel="crest factor E[block max]/σ", ylabel="SQNR (dB)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    return fig


def main(root: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = Path(root) / "figures" / "formats"
    tabs = Path(root) / "paper_repro" / "formats"
    out: list[Path] = []
    kuz = kuzmin_table()
    wk_opt, wk_sweep = widrow_kollar_tables()
    crest = crest_table()
    cross = crossover(crest)
    rules = mx_rules_table()
    formats = formats_table()
    budget = budget_table(formats)
    for name, df in (("kuzmin", kuz), ("widrow_kollar", wk_opt), ("widrow_kollar_sweep", wk_sweep), ("crest", crest),
                     ("crossover", cross), ("mx_rules", rules), ("formats", formats), ("budget", budget)):
        out += write_table(df, tabs / name)
    out.append(write_text(tabs / "REPORT.md", report(kuz, wk_opt, wk_sweep, crest, cross, rules, formats, budget)))
    for name, fig in (("sqnr_vs_bits", fig_sqnr_vs_bits(formats)), ("widrow_kollar", fig_widrow_kollar(wk_sweep)),
                      ("crest", fig_crest(crest))):
        out.append(save_figure(fig, figs / f"{name}.png"))
        plt.close(fig)
    return out


if __name__ == "__main__":
    main(Path(__file__).resolve().parents[2])
