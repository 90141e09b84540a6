"""Convert the papers' own trained networks (Keras HDF5, MIT) into bundled model folders, on our raw schemas.

    python scripts/authors_models.py [--shared ../shared/data]

Writes, from the authors' files (read as data by ``actionable.read_keras``; never TensorFlow):

* ``actionable/datasets/german/models/aaai2020`` and ``.../adult/models/aaai2020``: Ramakrishnan et al.'s
  networks with their input encoding (z-scores and one-hot blocks of ``*.features.json`` / ``mapping.json``)
  in front, and ``aaai2020_instances.csv`` beside each dataset: the 100 rows of ``data.npy`` the paper
  explains, decoded to raw rows;
* ``actionable/datasets/student/models/lash2017-regular`` and ``lash2017-indirect``: Lash et al.'s
  networks with his min-max scaling (``processed_stud_minmax.csv``);
* ``tests/data/keras/``: copies of those four HDF5 files and the two ``data.npy`` input blocks, so the
  tests can check every bundled model against its source file where ``../shared`` is absent (CI).

Fannie Mae's network is not converted: its training data's terms keep it out of the package.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from actionable import datasets
from actionable.datasets.recipes import quality
from actionable.models import TorchModel, save_model
from actionable.models import layers as L
from actionable.models.input_encoding import InputEncoding, on_schema
from actionable.models.keras import read_keras
from actionable.schema import DTYPE, Schema

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "actionable" / "datasets"
TESTS = ROOT / "tests" / "data" / "keras"
SYNTH = "goutham7r/synth-action-seq @ 6eb6e05 (MIT, (c) 2023 Goutham Ramakrishnan)"
LASH = "michael-lash/Inverse_Classification @ dcc4adc (MIT, (c) 2019 Michael Lash)"

# German: the authors' feature names -> ours (german.doc's attribute order, our snake_case names).
GERMAN = {
    "checking_account": "checking_account",
    "loan_duration": "duration",
    "credit_history": "credit_history",
    "purpose": "purpose",
    "credit_amount": "credit_amount",
    "saving_account": "savings",
    "present_employment": "employment_since",
    "installment_rate": "installment_rate",
    "personal_status": "personal_status",
    "other_debtors_guarantors": "other_debtors",
    "present_residence_since": "residence_since",
    "property": "property",
    "age_in_years": "age",
    "other_installment_plans": "other_installment_plans",
    "housing": "housing",
    "existing_credit": "existing_credits",
    "job": "job",
    "liable_persons": "liable_people",
    "telephone": "telephone",
    "foreign_worker": "foreign_worker",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def aaai_records(features: list[dict[str, Any]], schema: Schema, level_of: Any) -> list[dict[str, Any]]:
    """One encoding record per feature of ``features.json``, in its column order (``idx``)."""
    records: list[dict[str, Any]] = []
    for spec in sorted((f for f in features if f["type"] != "class"), key=lambda f: f["idx"]):
        name = level_of.name(spec["name"])
        if spec["type"] == "numeric":
            records.append({"feature": name, "zscore": [spec["mean"], spec["std"]]})
        else:
            records.append(
                {"feature": name, "levels": [level_of(spec, code, schema) for code in spec["values"]]}
            )
    return records


class GermanLevels:
    """German codes (UCI's Axx without the A): the k-th smallest code of an attribute is its k-th level."""

    @staticmethod
    def name(theirs: str) -> str:
        return GERMAN[theirs]

    def __call__(self, spec: dict[str, Any], code: int, schema: Schema) -> str:
        levels = schema[GERMAN[spec["name"]]].levels
        codes = sorted(spec["values"])
        if len(codes) != len(levels):
            raise SystemExit(
                f"german: {spec['name']} has {len(codes)} codes, our schema {len(levels)} levels"
            )
        return levels[codes.index(code)]


class AdultLevels:
    """Adult codes through ``mapping.json`` (its keys keep a leading space)."""

    def __init__(self, mapping: dict[str, dict[str, int]]) -> None:
        self.texts = {
            feature: {code: text.strip() for text, code in m.items()} for feature, m in mapping.items()
        }

    @staticmethod
    def name(theirs: str) -> str:
        return {"Hours/Week": "hours_per_week"}.get(theirs, theirs.lower().replace(" ", "_"))

    def __call__(self, spec: dict[str, Any], code: int, schema: Schema) -> str:
        text = self.texts[spec["name"]][code]
        if text not in schema[self.name(spec["name"])].levels:
            raise SystemExit(f"adult: level {text!r} of {spec['name']} is not in our schema")
        return text


def aaai(name: str, shared: Path, levels: Any, classes: tuple[str, str]) -> None:
    """One AAAI 2020 network: bundled model folder, decoded instances, test copies."""
    data = datasets.load(name)
    folder = shared / f"synth-{name}"
    features_file = folder / f"{name}.features.json"
    records = aaai_records(json.loads(features_file.read_text()), data.schema, levels)
    encoding = InputEncoding.from_records(records, data.schema)
    keras = read_keras(folder / "model.h5")
    model = on_schema(keras.network, data.schema, encoding, classes=classes)
    extra = {"mapping.json": sha256(folder / "mapping.json")} if (folder / "mapping.json").exists() else {}
    provenance = {
        "source": f"{SYNTH}: models/{name}/model.h5",
        "sha256": keras.sha256,
        "keras_version": keras.keras_version,
        "keras_layers": list(keras.layers),
        "separated_output": keras.output,
        "encoding": {f"{name}.features.json": sha256(features_file), **extra},
        "dropped_features": list(encoding.dropped(data.schema)),
        "converter": "scripts/authors_models.py",
        "paper": "Ramakrishnan, Lee, Albarghouthi (AAAI 2020)",
        "metrics_note": (
            "not a held-out score: the authors trained on their own (unseeded) split, which overlaps our test "
            "split (German: most of our test rows are among their training rows); see SOURCE.md"
        ),
    }
    write(model, provenance, PACKAGE / name / "models" / "aaai2020")
    Z = np.load(folder / "data.npy")[:, : encoding.width]
    rows = encoding.decode(Z, data.schema)
    rows.insert(0, "instance", np.arange(len(rows)))
    rows.to_csv(PACKAGE / name / "aaai2020_instances.csv", index=False)
    TESTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "model.h5", TESTS / f"{name}_aaai2020.h5")
    np.save(TESTS / f"{name}_aaai2020_instances.npy", Z)


def lash(shared: Path) -> None:
    """Lash's regular and indirect Student networks, min-max scaled by his training ranges."""
    data = datasets.load("student")
    schema = data.schema
    table = pd.read_csv(PACKAGE / "student" / "processed_stud_minmax.csv")
    spans = {r.feature: (float(r.train_min), float(r.train_max)) for r in table.itertuples()}
    groups = dict(zip(table["feature"], table["group"], strict=True))

    def records(names: list[str]) -> list[dict[str, Any]]:
        return [{"feature": n, "minmax": list(spans[n])} for n in names]

    folder = shared / "lash-student"
    common = {"converter": "scripts/authors_models.py", "paper": "Lash, Lin, Street, Robinson (ICDMW 2017)"}
    regular_keras = read_keras(folder / "reg_model.h5")
    regular = on_schema(
        regular_keras.network, schema, InputEncoding.from_records(records(list(table["feature"])), schema)
    )
    write(
        regular,
        common | source(regular_keras, "example_data/reg_model.h5"),
        PACKAGE / "student" / "models" / "lash2017-regular",
    )

    inputs = [n for n in table["feature"] if groups[n] != "ind"]  # [x_U, x_D], as his code concatenates
    outputs = [n for n in table["feature"] if groups[n] == "ind"]
    indirect_keras = read_keras(folder / "ind_model.h5")
    encoding = InputEncoding.from_records(records(inputs), schema)
    lo = torch.tensor([spans[n][0] for n in outputs], dtype=DTYPE)
    hi = torch.tensor([spans[n][1] for n in outputs], dtype=DTYPE)
    network = torch.nn.Sequential(
        encoding.layer(schema), *indirect_keras.network, L.ColumnMap(torch.arange(len(outputs)), hi - lo, lo)
    )
    indirect = TorchModel(network, schema, task="regression", outputs=tuple(outputs))
    write(
        indirect,
        common | source(indirect_keras, "example_data/ind_model.h5"),
        PACKAGE / "student" / "models" / "lash2017-indirect",
    )
    for kind, keras in (("regular", folder / "reg_model.h5"), ("indirect", folder / "ind_model.h5")):
        shutil.copyfile(keras, TESTS / f"student_lash2017_{kind}.h5")


def source(keras: Any, path: str) -> dict[str, Any]:
    return {
        "source": f"{LASH}: {path}",
        "sha256": keras.sha256,
        "keras_version": keras.keras_version,
        "keras_layers": list(keras.layers),
        "separated_output": keras.output,
        "encoding": {"processed_stud_minmax.csv": sha256(PACKAGE / "student" / "processed_stud_minmax.csv")},
    }


def write(model: TorchModel, provenance: dict[str, Any], folder: Path) -> None:
    """Save ``model`` with its provenance and its quality on our test split (``metrics``, as trained models)."""
    data = datasets.load(folder.parent.parent.name)
    provenance = provenance | {"metrics": quality(model, data), "trainer": "the paper's authors"}
    model = TorchModel(
        model.network,
        model.schema,
        task=model.task,
        classes=model.classes,
        outputs=model.outputs,
        provenance=provenance,
        dtype=model.dtype,
    )
    if folder.exists():
        shutil.rmtree(folder)
    save_model(model, folder)
    print(f"wrote {folder.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    aaai("german", args.shared, GermanLevels(), ("good", "bad"))
    mapping = json.loads((args.shared / "synth-adult" / "mapping.json").read_text())
    aaai("adult", args.shared, AdultLevels(mapping), ("<=50K", ">50K"))
    lash(args.shared)


if __name__ == "__main__":
    main()
