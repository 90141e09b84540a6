"""The bundled authors' networks equal their source HDF5 files (read here with h5py and NumPy, not read_keras).

The source files and the AAAI 2020 instances (the rows the paper explains, in the networks' own input
space) are copied in tests/data/keras by scripts/authors_models.py, so these run without ../shared.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from actionable import datasets

h5py = pytest.importorskip("h5py")
DATA = Path(__file__).parent / "data" / "keras"
PACKAGE = Path(datasets.__file__).parent


def numpy_forward(path: Path, Z: np.ndarray, activations: list[str]) -> np.ndarray:
    """The file's Dense layers applied in float64: kernels (in x out) in `layer_names` order."""
    with h5py.File(path, "r") as f:
        weights = f["model_weights"]
        h = Z.astype(np.float64)
        dense = [n.decode() for n in weights.attrs["layer_names"] if n.decode().startswith("dense")]
        assert len(dense) == len(activations)
        for name, activation in zip(dense, activations, strict=True):
            group = weights[name]
            kernel, bias = (np.asarray(group[w.decode()], np.float64) for w in group.attrs["weight_names"])
            h = h @ kernel + bias
            h = np.maximum(h, 0) if activation == "relu" else h
    return h


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["german", "adult"])
def test_aaai2020_networks_equal_their_files_on_the_papers_instances(name: str) -> None:
    data = datasets.load(name)
    model = data.models["aaai2020"]
    source = DATA / f"{name}_aaai2020.h5"
    assert model.provenance["sha256"] == sha256(source)
    Z = np.load(DATA / f"{name}_aaai2020_instances.npy")
    logits = numpy_forward(source, Z, ["relu", "relu", "linear"])
    rows = pd.read_csv(PACKAGE / name / "aaai2020_instances.csv").drop(columns="instance")
    assert len(rows) == 100
    with torch.no_grad():
        ours = model(data.schema.encode(rows)).numpy()
    # the instances are float32 z-scores; decoded to whole raw values and encoded again in float64
    np.testing.assert_allclose(ours, logits, rtol=0, atol=1e-5)
    undesired = {"german": "bad", "adult": "<=50K"}[name]
    assert (model.predict(rows) == undesired).all()  # the paper explains 100 denied applicants
    assert model.classes[int(np.argmax(logits[0]))] == undesired


def test_lash_networks_equal_their_files_and_his_published_baseline() -> None:
    data = datasets.load("student")
    regular, indirect = data.models["lash2017-regular"], data.models["lash2017-indirect"]
    table = pd.read_csv(PACKAGE / "student" / "processed_stud_minmax.csv")
    lo, hi = table["train_min"].to_numpy(float), table["train_max"].to_numpy(float)
    raw = data.X_test[table["feature"]].to_numpy(float)
    scaled = (raw - lo) / np.where(hi > lo, hi - lo, 1)
    assert regular.provenance["sha256"] == sha256(DATA / "student_lash2017_regular.h5")
    assert indirect.provenance["sha256"] == sha256(DATA / "student_lash2017_indirect.h5")
    x = data.schema.encode(data.X_test)
    with torch.no_grad():
        np.testing.assert_allclose(
            regular(x).numpy(),
            numpy_forward(DATA / "student_lash2017_regular.h5", scaled, ["relu", "linear"]),
            atol=1e-6,
        )
        ind = (table["group"] == "ind").to_numpy()
        out = numpy_forward(DATA / "student_lash2017_indirect.h5", scaled[:, ~ind], ["relu", "relu"])
        np.testing.assert_allclose(indirect(x).numpy(), out * (hi[ind] - lo[ind]) + lo[ind], atol=1e-6)
        # Lash's published budget-0 probabilities: his 46 bad-grade test students, x_I estimated by g
        published = pd.read_csv(PACKAGE / "student" / "invresult_pos_only.csv")
        start = published[published["budget"] == 0].set_index("studid")["p_bad_grade"]
        chosen = data.y_test.to_numpy() == 1
        estimated = x[chosen].clone()
        for j, feature in enumerate(indirect.outputs):
            estimated[:, data.schema.slice(feature)] = indirect(x[chosen])[:, j : j + 1]
        p = torch.softmax(regular(estimated), -1)[:, 1].numpy()
    ids = data.X_test.index[chosen] + 1  # Lash's studid is the row's position + 1 (row order kept)
    np.testing.assert_allclose(p, start.loc[ids].to_numpy(), atol=2e-6)  # his CSV has 6 decimals
    assert p.mean() == pytest.approx(start.mean(), abs=1e-6)
    assert round(float(p.mean()), 3) == 0.751  # the table's B = 0 column


def test_fannie_mae_stays_out_of_the_package() -> None:
    fannie = "c6168f7a8011341c6584b6ea0113f05bdaca59c515c56a917230062e6078dbbd"
    assert "fanniemae" not in datasets.NAMES
    for path in PACKAGE.rglob("model.json"):
        assert fannie not in path.read_text()
    assert not list(PACKAGE.rglob("*.h5"))
