"""Runs one peer method inside the peers' own virtualenv; started by ``benchmarks/peers.py``, never imported.

    python peers_worker.py METHOD WORKDIR OUT.json

``WORKDIR`` holds what ``peers.py`` exported (plain data only, never pickle): ``schema.json`` (features,
kinds, levels, bounds, mutability, canonical column slices), ``people.csv`` (raw rows), ``people.npy``
(their canonical tensor), ``train.csv`` (raw training rows with a 0/1 outcome), ``mlp.npz`` (the German
default network: standardisation then three linear layers) and ``logistic.npz`` (w, b on canonical
columns). ``OUT.json`` gets one record per person: ``status`` ("found", "none" or "error"), ``space``
("raw": a dict of raw values, "canonical": a list of canonical floats), ``x``, ``seconds``, ``error``;
plus ``version`` of the peer. Nothing here imports actionable: peers see only the exported data.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def load(workdir: Path) -> tuple[dict[str, Any], pd.DataFrame, np.ndarray]:
    schema = json.loads((workdir / "schema.json").read_text())
    people = pd.read_csv(workdir / "people.csv", dtype=schema["dtypes"])
    return schema, people, np.load(workdir / "people.npy")


def encode(schema: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Raw frame -> canonical array (numeric columns in raw units, one one-hot block per category)."""
    out = np.zeros((len(frame), schema["width"]))
    for f in schema["features"]:
        lo = f["slice"][0]
        if f["kind"] == "category":
            codes = frame[f["name"]].astype(str).map({lvl: i for i, lvl in enumerate(f["levels"])})
            codes = codes.fillna(-1).to_numpy(int)
            ok = codes >= 0
            out[np.flatnonzero(ok), lo + codes[ok]] = 1.0
        else:
            out[:, lo] = pd.to_numeric(frame[f["name"]]).to_numpy(float)
    return out


def mlp_numpy(workdir: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The German MLP as a numpy function: canonical array -> logits."""
    w = dict(np.load(workdir / "mlp.npz"))

    def forward(x: np.ndarray) -> np.ndarray:
        h = (x - w["mean"]) / w["std"]
        h = np.maximum(h @ w["W0"].T + w["b0"], 0)
        h = np.maximum(h @ w["W1"].T + w["b1"], 0)
        return h @ w["W2"].T + w["b2"]

    return forward


# ----------------------------------------------------------------------------------------------- DiCE
def _dice_columns(
    encoded: list[str], schema: dict[str, Any], numeric: list[str], train: pd.DataFrame
) -> tuple[Any, Any, Any]:
    """DiCE's own encoding (min-max numbers, its one-hot columns in its order) as a map onto canonical columns."""
    import torch

    lo = {c: float(train[c].min()) for c in numeric}
    hi = {c: float(train[c].max()) for c in numeric}
    index = torch.zeros(len(encoded), dtype=torch.int64)
    scale = torch.ones(len(encoded), dtype=torch.float64)
    shift = torch.zeros(len(encoded), dtype=torch.float64)
    for j, col in enumerate(encoded):
        for f in schema["features"]:
            if f["kind"] == "category" and col.startswith(f["name"] + "_"):
                level = col[len(f["name"]) + 1 :]
                if level in f["levels"]:
                    index[j] = f["slice"][0] + f["levels"].index(level)
                    break
            elif col == f["name"]:
                index[j] = f["slice"][0]
                scale[j], shift[j] = hi[col] - lo[col], lo[col]
                break
        else:
            raise ValueError(f"DiCE encoded column {col!r} has no canonical column")
    return index, scale, shift


def run_dice(workdir: Path, method: str) -> tuple[list[dict[str, Any]], str]:
    import dice_ml
    import torch

    schema, people, _ = load(workdir)
    train = pd.read_csv(workdir / "train.csv", dtype=schema["dtypes"])
    names = [f["name"] for f in schema["features"]]
    numeric = [f["name"] for f in schema["features"] if f["kind"] != "category"]
    mutable = [f["name"] for f in schema["features"] if f["mutability"] != "fixed"]
    # DiCE wants a range for every feature; its genetic method accepts only levels seen in training
    ranges = {
        f["name"]: (
            [lvl for lvl in f["levels"] if lvl in set(train[f["name"]])]
            if f["kind"] == "category"
            else [f["bounds"][0], f["bounds"][1]]
        )
        for f in schema["features"]
    }
    weights = {k: torch.tensor(v) for k, v in np.load(workdir / "mlp.npz").items()}
    data = dice_ml.Data(dataframe=train, continuous_features=numeric, outcome_name="outcome")

    def logits(x: torch.Tensor) -> torch.Tensor:
        h = (x - weights["mean"]) / weights["std"]
        h = torch.relu(h @ weights["W0"].T + weights["b0"])
        h = torch.relu(h @ weights["W1"].T + weights["b1"])
        return h @ weights["W2"].T + weights["b2"]

    if method == "gradient":
        encoded = list(data.get_ohe_min_max_normalized_data(people.iloc[[0]][names]).columns)
        index, scale, shift = _dice_columns(encoded, schema, numeric, train)

        class Wrapped(torch.nn.Module):
            def forward(self, z: torch.Tensor) -> torch.Tensor:
                rows = z.reshape(-1, len(encoded)).to(torch.float64)
                x = torch.zeros(rows.shape[0], schema["width"], dtype=torch.float64)
                x = x.index_add(1, index, rows * scale + shift)
                out = logits(x)
                p = torch.sigmoid(out[:, 1:2] - out[:, 0:1]).to(z.dtype)
                return p.reshape(-1) if z.ndim == 1 else p

        model = dice_ml.Model(model=Wrapped(), backend="PYT", func="ohe-min-max")
    else:

        class Proba:
            def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
                with torch.no_grad():
                    out = logits(torch.tensor(encode(schema, frame[names])))
                return torch.softmax(out, dim=1).numpy()

            def predict(self, frame: pd.DataFrame) -> np.ndarray:
                return self.predict_proba(frame).argmax(1)

        model = dice_ml.Model(model=Proba(), backend="sklearn")
    explainer = dice_ml.Dice(data, model, method=method)
    records = []
    for i in range(len(people)):
        query = people.iloc[[i]][names]
        # a direction becomes this person's permitted range: age may only go up from where it is
        mine = dict(ranges)
        for f in schema["features"]:
            value = float(query.iloc[0][f["name"]]) if f["kind"] != "category" else None
            if f["direction"] == "increase" and value is not None:
                mine[f["name"]] = [value, f["bounds"][1]]
            elif f["direction"] == "decrease" and value is not None:
                mine[f["name"]] = [f["bounds"][0], value]
        started = time.perf_counter()
        try:
            result = explainer.generate_counterfactuals(
                query,
                total_CFs=1,
                desired_class="opposite",
                features_to_vary=mutable,
                permitted_range=mine,
                verbose=False,
            )
            frame = result.cf_examples_list[0].final_cfs_df
            seconds = time.perf_counter() - started
            if frame is None or len(frame) == 0:
                records.append({"status": "none", "seconds": seconds, "error": "no counterfactual returned"})
            else:
                row = {k: _plain(frame.iloc[0][k]) for k in names}
                records.append({"status": "found", "space": "raw", "x": row, "seconds": seconds})
        except Exception as exc:  # a peer crash on one person is recorded, not hidden
            records.append(
                {"status": "error", "seconds": time.perf_counter() - started, "error": _short(exc)}
            )
    return records, versions("dice-ml", "torch")


def versions(*dists: str) -> str:
    from importlib.metadata import version

    return ", ".join(f"{d} {version(d)}" for d in dists)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _short(exc: BaseException) -> str:
    """The error's type, first line and innermost frame (where in the peer it failed)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = (
        f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    )
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {message[:200]}{where}"


# ----------------------------------------------------------------------------------------------- ReLax
def relax_setup(workdir: Path) -> tuple[Callable[[Any, Any], Any], Any, Any, Callable[[Any], np.ndarray]]:
    """ReLax's VanillaCF on the same MLP, set up as its DataModule would: inputs min-max scaled by the
    training data, immutable features frozen and the box kept at every step, category blocks made one-hot
    (argmax) at the end; through ReLax's constraint hook also the allowed directions (age only up). Returns the jitted, vmapped generator, the scaled people, keys and the unscaler."""
    import jax
    import jax.numpy as jnp
    from relax.methods import VanillaCF, VanillaCFConfig

    schema, _, x0 = load(workdir)
    train = pd.read_csv(workdir / "train.csv", dtype=schema["dtypes"])
    names = [f["name"] for f in schema["features"]]
    canonical = encode(schema, train[names])
    lo, span = canonical.min(0), np.maximum(canonical.max(0) - canonical.min(0), 1e-12)
    w = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in np.load(workdir / "mlp.npz").items()}
    lo_j, span_j = jnp.asarray(lo, dtype=jnp.float32), jnp.asarray(span, dtype=jnp.float32)
    mutable = np.zeros(schema["width"], dtype=bool)
    up, down = np.zeros(schema["width"], dtype=bool), np.zeros(schema["width"], dtype=bool)
    blocks = []
    for f in schema["features"]:
        a, b = f["slice"]
        mutable[a:b] = f["mutability"] != "fixed"
        up[a:b], down[a:b] = f["direction"] == "increase", f["direction"] == "decrease"
        if f["kind"] == "category":
            blocks.append((a, b))
    mutable_j, up_j, down_j = jnp.asarray(mutable), jnp.asarray(up), jnp.asarray(down)

    def pred_fn(z: Any) -> Any:
        """ReLax-scaled batch -> probabilities of both classes."""
        h = (z * span_j + lo_j - w["mean"]) / w["std"]
        h = jnp.maximum(h @ w["W0"].T + w["b0"], 0)
        h = jnp.maximum(h @ w["W1"].T + w["b1"], 0)
        return jax.nn.softmax(h @ w["W2"].T + w["b2"], axis=-1)

    def constraints(x: Any, cf: Any, hard: bool = False, **_: Any) -> Any:
        cf = jnp.where(mutable_j, jnp.clip(cf, 0.0, 1.0), x)
        cf = jnp.where(up_j, jnp.maximum(cf, x), jnp.where(down_j, jnp.minimum(cf, x), cf))
        if hard:
            for a, b in blocks:
                block = cf[..., a:b]
                cf = cf.at[..., a:b].set(jax.nn.one_hot(block.argmax(-1), b - a, dtype=cf.dtype))
        return cf

    module = VanillaCF(VanillaCFConfig(n_steps=1000, lr=0.01, lambda_=0.01))
    module.set_apply_constraints_fn(constraints)
    xs = jnp.asarray((x0 - lo) / span, dtype=jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(0), len(x0))
    generate = jax.jit(jax.vmap(lambda x, k: module.generate_cf(x, pred_fn, rng_key=k)))

    def unscale(z: Any) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * span + lo

    return generate, xs, keys, unscale


def run_relax(workdir: Path) -> tuple[list[dict[str, Any]], str]:
    """One counterfactual per person, all people in one jitted call (the first call compiles, not timed)."""
    generate, xs, keys, unscale = relax_setup(workdir)
    started = time.perf_counter()
    generate(xs, keys).block_until_ready()
    compile_seconds = time.perf_counter() - started
    started = time.perf_counter()
    out = unscale(generate(xs, keys).block_until_ready())
    seconds = (time.perf_counter() - started) / len(out)
    records = [
        {
            "status": "found",
            "space": "canonical",
            "x": row.tolist(),
            "seconds": seconds,
            "compile": compile_seconds,
        }
        for row in out
    ]
    return records, versions(
        "jax-relax", "jax"
    ) + f"; first call (compilation) {compile_seconds:.1f} s, not counted"


def run_relax_core(workdir: Path) -> tuple[list[dict[str, Any]], str]:
    """ReLax's batched core as the issue measured it: 100 people x 1000 gradient steps, compiled once."""
    generate, xs, keys, _ = relax_setup(workdir)
    generate(xs, keys).block_until_ready()
    records = []
    for _ in range(7):
        started = time.perf_counter()
        generate(xs, keys).block_until_ready()
        records.append({"status": "found", "seconds": time.perf_counter() - started})
    return records, versions("jax-relax", "jax")


# ------------------------------------------------------------------------------- actionable-recourse
def run_ar(workdir: Path) -> tuple[list[dict[str, Any]], str]:
    """actionable-recourse (Ustun et al.) on the logistic model over canonical columns, one flipset each."""
    import recourse as rs

    schema, _, x0 = load(workdir)
    lr = np.load(workdir / "logistic.npz")
    w, b = lr["w"], float(lr["b"])
    columns = [f"c{j}" for j in range(schema["width"])]
    train = pd.read_csv(workdir / "train.csv", dtype=schema["dtypes"])
    X = pd.DataFrame(encode(schema, train[[f["name"] for f in schema["features"]]]), columns=columns)
    actions = rs.ActionSet(X=X)
    for f in schema["features"]:
        lo, hi = f["slice"]
        for j in range(lo, hi):
            item = actions[columns[j]]
            item.actionable = f["mutability"] != "fixed"
            item.bounds = (0.0, 1.0, "absolute") if f["kind"] == "category" else (*f["bounds"], "absolute")
            if f["direction"] == "increase":
                item.step_direction = 1
            elif f["direction"] == "decrease":
                item.step_direction = -1
    actions.set_alignment(coefficients=w, intercept=b)
    records = []
    for x in x0:
        started = time.perf_counter()
        try:
            flipset = rs.Flipset(x=x, action_set=actions, coefficients=w, intercept=b)
            flipset.populate(enumeration_type="distinct_subsets", total_items=1)
            seconds = time.perf_counter() - started
            items = flipset.items
            if not items:
                records.append({"status": "none", "seconds": seconds, "error": "no flipset item"})
                continue
            action = np.asarray([items[0][c] for c in columns], dtype=float)
            records.append(
                {"status": "found", "space": "canonical", "x": (x + action).tolist(), "seconds": seconds}
            )
        except Exception as exc:
            records.append(
                {"status": "error", "seconds": time.perf_counter() - started, "error": _short(exc)}
            )
    return records, versions("actionable-recourse", "cplex", "numpy")


METHODS: dict[str, Callable[[Path], tuple[list[dict[str, Any]], str]]] = {
    "dice-gradient": lambda w: run_dice(w, "gradient"),
    "dice-genetic": lambda w: run_dice(w, "genetic"),
    "relax": run_relax,
    "relax-core": run_relax_core,
    "actionable-recourse": run_ar,
}


def main() -> None:
    method, workdir, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    try:
        records, version = METHODS[method](workdir)
        payload: dict[str, Any] = {"records": records, "version": version}
    except Exception as exc:  # the whole peer failed: its error is the result
        payload = {"records": [], "version": "", "error": _short(exc), "traceback": traceback.format_exc()}
    out.write_text(json.dumps(payload))


if __name__ == "__main__":
    main()
