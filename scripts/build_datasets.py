"""Build the bundled datasets in actionable/datasets/<name>/ from the raw files in shared/data.

Run once by developers: ``python scripts/build_datasets.py [--shared ../shared/data]``. It checks every
source file's sha256 against SOURCES.md, writes ``data.csv.gz`` (deterministic gzip), ``schema.toml``,
``dataset.json`` and ``SOURCE.md``. The output is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from actionable.lash import schema_from_indices
from actionable.schema import Direction, Feature, Mutability, Schema, Target

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "actionable" / "datasets"
SHA256 = {
    "uci-german/german.data": "b21f3d81db8071257d5ff1deaeba1fd4303b62712e6fcc9715c7a86202cb5871",
    "uci-german/german.doc": "69b92cb551111bc37098698288849c96f0fd87ce81a2e54451ff39aa1e53fe49",
    "uci-adult/adult.data": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "uci-adult/adult.test": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
    "lash-student/stud_port_class.csv": "621fe30736262f051756fdce05fc6a6543cda58a8a58afad12965d15ffbc9ee8",
    "lash-student/stud_indices.csv": "4f27c12a77c8dff07f4de140ceecf5d65525352ca71b79da21a4bb9e3a5a4b1f",
    "lash-student/processed_stud_split.csv": "21ae0054142afb150ebb3d8ece24266b11a9f4b876b950aee6ab88bf4361f4ae",
    "lash-student/processed_stud_minmax.csv": "45289ee78af52a643c80dc8d1b1bbee6be4d5d589fd83d72f3fe0b6ceef179ef",
    "lash-student/invresult_pos_only.csv": "2112cc4a1f79147aed0026caa99171c3134c0fbdd60de91f84ae0abac2393467",
    "california-housing/california_housing.csv": "94ef369b909f5c725340b512b7c9a05c1550a554b6592d29303990e3ba521a1f",
    "synth-quickdraw/cat.missing.npz": "219d48e8d389787fab3ee19c52722c11e6f8f13ffd03f10c3ab6989e96d57589",
}
UCI = "CC BY 4.0 (UCI Machine Learning Repository)"

# German credit: attribute codes to the readable texts of german.doc, in code order.
GERMAN_LEVELS: dict[str, dict[str, str]] = {
    "checking_account": {
        "A11": "< 0 DM",
        "A12": "0 <= ... < 200 DM",
        "A13": ">= 200 DM / salary assignment",
        "A14": "no checking account",
    },
    "credit_history": {
        "A30": "no credits taken / all paid back duly",
        "A31": "all credits at this bank paid back duly",
        "A32": "existing credits paid back duly till now",
        "A33": "delay in paying off in the past",
        "A34": "critical account / other credits elsewhere",
    },
    "purpose": {
        "A40": "car (new)",
        "A41": "car (used)",
        "A42": "furniture/equipment",
        "A43": "radio/television",
        "A44": "domestic appliances",
        "A45": "repairs",
        "A46": "education",
        "A47": "vacation",
        "A48": "retraining",
        "A49": "business",
        "A410": "others",
    },
    "savings": {
        "A61": "< 100 DM",
        "A62": "100 <= ... < 500 DM",
        "A63": "500 <= ... < 1000 DM",
        "A64": ">= 1000 DM",
        "A65": "unknown / no savings account",
    },
    "employment_since": {
        "A71": "unemployed",
        "A72": "< 1 year",
        "A73": "1 <= ... < 4 years",
        "A74": "4 <= ... < 7 years",
        "A75": ">= 7 years",
    },
    "personal_status": {
        "A91": "male: divorced/separated",
        "A92": "female: divorced/separated/married",
        "A93": "male: single",
        "A94": "male: married/widowed",
        "A95": "female: single",
    },
    "other_debtors": {"A101": "none", "A102": "co-applicant", "A103": "guarantor"},
    "property": {
        "A121": "real estate",
        "A122": "building society savings / life insurance",
        "A123": "car or other",
        "A124": "unknown / no property",
    },
    "other_installment_plans": {"A141": "bank", "A142": "stores", "A143": "none"},
    "housing": {"A151": "rent", "A152": "own", "A153": "for free"},
    "job": {
        "A171": "unemployed / unskilled - non-resident",
        "A172": "unskilled - resident",
        "A173": "skilled employee / official",
        "A174": "management / self-employed / highly qualified",
    },
    "telephone": {"A191": "none", "A192": "yes, registered"},
    "foreign_worker": {"A201": "yes", "A202": "no"},
}
GERMAN_COLUMNS = [
    "checking_account",
    "duration",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings",
    "employment_since",
    "installment_rate",
    "personal_status",
    "other_debtors",
    "residence_since",
    "property",
    "age",
    "other_installment_plans",
    "housing",
    "existing_credits",
    "job",
    "liable_people",
    "telephone",
    "foreign_worker",
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checked(shared: Path, name: str) -> Path:
    """The path of a source file, after checking its sha256 against the value recorded in SOURCES.md."""
    path = shared / name
    if not path.is_file():
        raise SystemExit(f"{path}: not found; give the folder of the raw files with --shared.")
    digest = sha256(path)
    if digest != SHA256[name]:
        raise SystemExit(
            f"{path}: sha256 {digest} differs from SOURCES.md ({SHA256[name]}); refusing to build."
        )
    return path


def write(name: str, frame: pd.DataFrame, schema: Schema, info: dict[str, Any], note: str) -> None:
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    schema.validate(frame[list(schema.names)])
    text = io.StringIO()
    frame.to_csv(text, index=False, lineterminator="\n")
    with gzip.GzipFile(folder / "data.csv.gz", "wb", mtime=0, compresslevel=9) as handle:
        handle.write(text.getvalue().encode())
    # pandas writes floats with repr (shortest round-trip digits): the file must read back exactly.
    with gzip.open(folder / "data.csv.gz", "rt", encoding="utf-8") as handle:
        back = pd.read_csv(handle, keep_default_na=False)
    for column in frame.columns:
        if not np.array_equal(back[column].to_numpy(), frame[column].to_numpy()):
            raise SystemExit(f"{name}: column {column!r} does not read back exactly from data.csv.gz.")
    schema.save(folder / "schema.toml")
    (folder / "dataset.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    (folder / "SOURCE.md").write_text(note, encoding="utf-8")


def source_list(shared: Path, names: list[str], origin: str) -> list[dict[str, str]]:
    return [{"file": n, "sha256": SHA256[n], "origin": origin} for n in names]


def stratified_split(y: pd.Series, seed: int = 0, stratify: bool = True) -> pd.Series:
    _, test = train_test_split(
        np.arange(len(y)), test_size=0.2, random_state=seed, stratify=y if stratify else None
    )
    split = pd.Series("train", index=range(len(y)))
    split.iloc[test] = "test"
    return split


def source_note(
    title: str, origin: str, licence: str, citation: str, files: list[dict[str, str]], changes: list[str]
) -> str:
    lines = [
        f"# {title}",
        "",
        f"Origin: {origin}",
        "",
        f"Licence: {licence}",
        "",
        f"Citation: {citation}",
        "",
        "Source files (sha256):",
        "",
    ]
    lines += [f"* `{f['file']}`: `{f['sha256']}`" for f in files]
    lines += ["", "What was changed:", ""] + [f"* {c}" for c in changes]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- german
def german(shared: Path) -> None:
    raw = pd.read_csv(checked(shared, "uci-german/german.data"), sep=" ", header=None)
    checked(shared, "uci-german/german.doc")
    frame = raw.iloc[:, :20].copy()
    frame.columns = GERMAN_COLUMNS
    for column, levels in GERMAN_LEVELS.items():
        unknown = set(frame[column]) - set(levels)
        if unknown:
            raise SystemExit(f"german: unknown codes {unknown} in {column}")
        frame[column] = frame[column].map(levels)
    target = raw[20].map({1: "good", 2: "bad"})
    counts = target.value_counts().to_dict()
    if raw.shape != (1000, 21) or counts != {"good": 700, "bad": 300}:
        raise SystemExit(
            f"german: expected 1000 rows x 21 columns, 700 good / 300 bad; got {raw.shape}, {counts}"
        )
    absent = [
        f"{column}: {text!r} ({code})"
        for column, levels in GERMAN_LEVELS.items()
        for code, text in levels.items()
        if text not in set(frame[column])
    ]
    frame["credit_risk"] = target
    frame["split"] = stratified_split(target)
    numeric: dict[str, tuple[tuple[int, int], Mutability, Direction, str]] = {
        "duration": ((1, 120), "direct", "both", "loan duration in months"),
        "credit_amount": ((100, 100000), "direct", "both", "credit amount in DM"),
        "installment_rate": ((1, 4), "direct", "both", "instalment rate, % of disposable income (1-4)"),
        "residence_since": ((1, 4), "fixed", "both", "years at present residence (1-4)"),
        "age": ((18, 100), "direct", "increase", "age in years"),
        "existing_credits": ((1, 4), "direct", "both", "number of existing credits at this bank"),
        "liable_people": ((1, 2), "fixed", "both", "number of people liable to provide maintenance for"),
    }
    categorical: dict[str, tuple[Mutability, str]] = {
        "checking_account": ("fixed", "status of existing checking account"),
        "credit_history": ("fixed", "credit history"),
        "purpose": ("fixed", "purpose of the credit"),
        "savings": ("direct", "savings account / bonds"),
        "employment_since": ("direct", "present employment since"),
        "personal_status": ("fixed", "personal status and sex"),
        "other_debtors": ("direct", "other debtors / guarantors"),
        "property": ("direct", "most valuable property"),
        "other_installment_plans": ("fixed", "other instalment plans"),
        "housing": ("direct", "housing"),
        "job": ("direct", "job"),
        "telephone": ("direct", "telephone"),
        "foreign_worker": ("direct", "foreign worker"),
    }
    features = []
    for column in GERMAN_COLUMNS:
        if column in numeric:
            bounds, mutability, direction, text = numeric[column]
            features.append(
                Feature(
                    column, "integer", bounds, mutability=mutability, direction=direction, description=text
                )
            )
        else:
            mutability, text = categorical[column]
            features.append(
                Feature(
                    column,
                    "category",
                    levels=tuple(GERMAN_LEVELS[column].values()),
                    mutability=mutability,
                    description=text,
                )
            )
    schema = Schema(
        tuple(features), Target("credit_risk", favourable="good", classes=("bad", "good")), "german"
    )
    files = source_list(
        shared, ["uci-german/german.data", "uci-german/german.doc"], "UCI Statlog German Credit"
    )
    info: dict[str, Any] = {
        "name": "german",
        "title": "Statlog German Credit",
        "task": "classification",
        "description": "1,000 loan applicants described by 20 attributes; is their credit risk good or bad?",
        "citation": "Hofmann, H. (1994). Statlog (German Credit Data). UCI Machine Learning Repository. "
        "https://doi.org/10.24432/C5NC77",
        "license": UCI,
        "source": files,
        "split": "stratified by credit_risk, 80/20, sklearn train_test_split(random_state=0)",
        "notes": [
            "Attributes 1-20 named in snake_case (checking_account, duration, ..., foreign_worker); "
            "attribute codes (A11, A61, ...) replaced by the texts of german.doc, levels kept in code order.",
            "Levels with no row in the data, kept so the schema lists every documented level: "
            + "; ".join(absent)
            + ".",
            "Target credit_risk: class 1 -> 'good' (700 rows), 2 -> 'bad' (300 rows). No rows dropped.",
            "Mutability is illustrative: age may only increase; duration and credit_amount may move either "
            "way; savings, employment, debtors, property, housing, job, telephone, foreign_worker, "
            "existing_credits and installment_rate are directly changeable; personal_status, "
            "credit_history, purpose, checking_account, residence_since, liable_people and "
            "other_installment_plans are fixed.",
        ],
        "default_model": "mlp",
    }
    note = source_note(
        "Statlog German Credit",
        "UCI Machine Learning Repository (german.data, german.doc)",
        UCI,
        info["citation"],
        files,
        [
            *info["notes"][:3],
            "Added a `split` column: stratified by credit_risk, 80/20, "
            "sklearn train_test_split(test_size=0.2, random_state=0) -> 800 train / 200 test.",
        ],
    )
    write("german", frame, schema, info, note)


# ------------------------------------------------------------------------------------------ adult
ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]


def adult(shared: Path) -> None:
    parts: list[pd.DataFrame] = []
    counts: dict[str, dict[str, int]] = {}
    for name, skip in (("uci-adult/adult.data", 0), ("uci-adult/adult.test", 1)):
        raw = pd.read_csv(
            checked(shared, name),
            header=None,
            names=ADULT_COLUMNS,
            skiprows=skip,
            skipinitialspace=True,
            dtype=str,
            na_filter=False,
        )
        raw = raw[raw["age"].str.strip() != ""]
        raw = raw.apply(lambda c: c.str.strip())
        raw["income"] = raw["income"].str.rstrip(".")
        if not set(raw["income"]) <= {"<=50K", ">50K"}:
            raise SystemExit(f"adult: unexpected labels {set(raw['income'])} in {name}")
        missing = (raw == "?").any(axis=1)
        kept = raw[~missing].copy()
        kept["split"] = "train" if name.endswith(".data") else "test"
        counts[name] = {
            "rows": len(raw),
            "dropped_missing": int(missing.sum()),
            "kept": len(kept),
            "positives": int((kept["income"] == ">50K").sum()),
        }
        parts.append(kept)
    frame = pd.concat(parts, ignore_index=True).drop(columns=["fnlwgt", "education"])
    for column in ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week"):
        frame[column] = frame[column].astype(np.int64)
    levels = {
        c: tuple(sorted(frame[c].unique()))
        for c in (
            "workclass",
            "marital_status",
            "occupation",
            "relationship",
            "race",
            "sex",
            "native_country",
        )
    }
    features = (
        Feature(
            "age", "integer", (17, 100), mutability="direct", direction="increase", description="age in years"
        ),
        Feature(
            "workclass",
            "category",
            levels=levels["workclass"],
            mutability="direct",
            description="employer type",
        ),
        Feature(
            "education_num",
            "integer",
            (1, 16),
            mutability="direct",
            direction="increase",
            description="years of education (1 = preschool, 16 = doctorate)",
        ),
        Feature("marital_status", "category", levels=levels["marital_status"], description="marital status"),
        Feature(
            "occupation",
            "category",
            levels=levels["occupation"],
            mutability="direct",
            description="occupation",
        ),
        Feature(
            "relationship", "category", levels=levels["relationship"], description="role in the household"
        ),
        Feature("race", "category", levels=levels["race"], description="race"),
        Feature("sex", "category", levels=levels["sex"], description="sex"),
        Feature(
            "capital_gain", "integer", (0, 100000), mutability="direct", description="capital gains, USD"
        ),
        Feature("capital_loss", "integer", (0, 5000), mutability="direct", description="capital losses, USD"),
        Feature(
            "hours_per_week", "integer", (1, 99), mutability="direct", description="working hours per week"
        ),
        Feature(
            "native_country", "category", levels=levels["native_country"], description="country of origin"
        ),
    )
    schema = Schema(features, Target("income", favourable=">50K", classes=("<=50K", ">50K")), "adult")
    files = source_list(shared, ["uci-adult/adult.data", "uci-adult/adult.test"], "UCI Adult (Census Income)")
    total_pos = sum(c["positives"] for c in counts.values())
    if len(frame) != 45222 or total_pos != 11208:
        raise SystemExit(
            f"adult: expected 45222 rows kept and 11208 positives; got {len(frame)}, {total_pos}"
        )
    info: dict[str, Any] = {
        "name": "adult",
        "title": "UCI Adult (Census Income)",
        "task": "classification",
        "description": "US census records of 1994; does a person earn more than $50K a year?",
        "citation": "Becker, B. and Kohavi, R. (1996). Adult. UCI Machine Learning Repository. "
        "https://doi.org/10.24432/C5XW20",
        "license": UCI,
        "source": files,
        "split": "the official one: adult.data = train, adult.test = test",
        "counts": counts,
        "notes": [
            f"Labels re-derived from both raw files (whitespace stripped; the trailing '.' of adult.test's "
            f"'>50K.' / '<=50K.' removed): {total_pos} positives ('>50K') of {len(frame)} rows kept, "
            + ", ".join(f"{n}: {c['positives']} of {c['kept']}" for n, c in counts.items())
            + ". The original synthesis repo (goutham7r/synth-action-seq, models/adult/adult.data) coded "
            f"the {counts['uci-adult/adult.test']['positives']} '>50K.' rows of the test file as low income.",
            "Rows with '?' in any column dropped: "
            + ", ".join(f"{n}: {c['dropped_missing']} of {c['rows']}" for n, c in counts.items())
            + f"; {len(frame)} rows kept. adult.test's first line ('|1x3 Cross validator') skipped.",
            "fnlwgt (a sampling weight) and education (duplicated by education_num) dropped, as in the paper; "
            "the other columns renamed to snake_case (education-num -> education_num, ...); category levels "
            "sorted alphabetically.",
            "Mutability is illustrative: age and education_num may only increase; hours_per_week, "
            "capital_gain and capital_loss either way; occupation and workclass are directly changeable; "
            "marital_status, relationship, race, sex and native_country are fixed.",
        ],
        "default_model": "mlp",
    }
    note = source_note(
        "UCI Adult",
        "UCI Machine Learning Repository (adult.data, adult.test)",
        UCI,
        info["citation"],
        files,
        [
            *info["notes"][:3],
            "Added a `split` column: the official split (adult.data = train, adult.test = test).",
        ],
    )
    write("adult", frame, schema, info, note)


# ---------------------------------------------------------------------------------------- student
def student(shared: Path) -> None:
    data_path = checked(shared, "lash-student/stud_port_class.csv")
    indices_path = checked(shared, "lash-student/stud_indices.csv")
    split_path = checked(shared, "lash-student/processed_stud_split.csv")
    raw = pd.read_csv(data_path)
    schema = schema_from_indices(indices_path, raw)
    schema = Schema(schema.features, schema.target, "student")
    shipped = pd.read_csv(split_path)
    if len(shipped) != len(raw) or not shipped["studid"].is_unique:
        raise SystemExit(f"student: {split_path.name} has {len(shipped)} rows for {len(raw)} students")
    joined = raw[["studid", "bad_grade"]].merge(shipped, on="studid", how="left", suffixes=("", "_split"))
    if (
        not (joined["bad_grade"] == joined["bad_grade_split"]).all()
        or not (joined["csv_row_index"] == np.arange(len(raw))).all()
    ):
        raise SystemExit(f"student: {split_path.name} disagrees with {data_path.name} on labels or row order")
    split = shipped.set_index("studid")["split"]
    frame = raw.drop(columns=["studid"]).copy()
    frame["split"] = raw["studid"].map(split).to_numpy()
    counts = frame["split"].value_counts().to_dict()
    bad_test = int(((frame["split"] == "test") & (frame["bad_grade"] == 1)).sum())
    if counts != {"train": 519, "val": 65, "test": 65} or bad_test != 46:
        raise SystemExit(f"student: unexpected split {counts}, {bad_test} bad-grade test rows")
    folder = OUT / "student"
    folder.mkdir(parents=True, exist_ok=True)
    for extra in ("stud_indices.csv", "processed_stud_minmax.csv", "invresult_pos_only.csv"):
        shutil.copyfile(checked(shared, f"lash-student/{extra}"), folder / extra)
    files = source_list(
        shared,
        [
            f"lash-student/{n}"
            for n in (
                "stud_port_class.csv",
                "stud_indices.csv",
                "processed_stud_split.csv",
                "processed_stud_minmax.csv",
                "invresult_pos_only.csv",
            )
        ],
        "michael-lash/Inverse_Classification @ dcc4adc (MIT); UCI Student Performance",
    )
    info: dict[str, Any] = {
        "name": "student",
        "title": "Student Performance (Portuguese), as processed by Lash et al.",
        "task": "classification",
        "description": "649 students, 43 features (one-hot jobs, reasons, guardians); will the grade be bad?",
        "citation": "Cortez, P. (2008). Student Performance. UCI Machine Learning Repository. "
        "https://doi.org/10.24432/C5TG7T; Lash, Lin, Street, Robinson (2017), ICDMW.",
        "license": UCI + "; processing MIT (c) 2019 Michael Lash",
        "source": files,
        "split": "Lash et al.'s shipped split (seed 1234, stratified): 519 train / 65 val / 65 test",
        "notes": [
            "Feature groups and costs from stud_indices.csv via actionable.lash.schema_from_indices; costs are per "
            "raw unit (the file's cost divided by the feature's range).",
            "bad_grade = 1 is the unfavourable class (favourable 0). Lash's 43 feature names kept; studid "
            "dropped from the features; row order kept; no rows dropped.",
            "stud_indices.csv, processed_stud_minmax.csv (Lash's training min/max) and "
            "invresult_pos_only.csv (the published inverse-classification result) ship alongside.",
        ],
        "default_model": "regular",
    }
    note = source_note(
        "Student Performance (Lash et al.)",
        "michael-lash/Inverse_Classification example_data",
        info["license"],
        info["citation"],
        files,
        [
            *info["notes"],
            "Added a `split` column from processed_stud_split.csv (joined on studid): 519 train / 65 val / "
            "65 test, 46 of the test rows with bad_grade = 1.",
        ],
    )
    write("student", frame, schema, info, note)


# ------------------------------------------------------------------------------------- california
def california(shared: Path) -> None:
    frame = pd.read_csv(checked(shared, "california-housing/california_housing.csv"))
    if frame.shape != (20640, 9):
        raise SystemExit(f"california: expected 20640 rows x 9 columns; got {frame.shape}")
    for column in ("HouseAge", "Population"):
        values = frame[column].to_numpy(np.float64)
        if not np.array_equal(values, np.rint(values)):
            raise SystemExit(f"california: {column} has fractional values; cannot store it as an integer")
        frame[column] = values.astype(np.int64)
    frame["split"] = stratified_split(frame["MedHouseVal"], stratify=False)
    features = (
        Feature(
            "MedInc", "real", (0, 20), mutability="direct", description="median income in block group, $10k"
        ),
        Feature("HouseAge", "integer", (0, 100), description="median house age in block group, years"),
        Feature("AveRooms", "real", (0, 200), mutability="direct", description="average rooms per household"),
        Feature(
            "AveBedrms", "real", (0, 50), mutability="direct", description="average bedrooms per household"
        ),
        Feature(
            "Population", "integer", (0, 50000), mutability="direct", description="block group population"
        ),
        Feature("AveOccup", "real", (0, 1500), mutability="direct", description="average household members"),
        Feature("Latitude", "real", (32, 42), description="block group latitude"),
        Feature("Longitude", "real", (-125, -114), description="block group longitude"),
    )
    schema = Schema(features, Target("MedHouseVal", above=2.0), "california")
    files = source_list(
        shared,
        ["california-housing/california_housing.csv"],
        "StatLib cal_housing (Pace and Barry 1997), laid out as scikit-learn's fetch_california_housing",
    )
    info: dict[str, Any] = {
        "name": "california",
        "title": "California Housing",
        "task": "regression",
        "description": "20,640 census block groups of 1990; median house value in $100k (favourable: above 2.0).",
        "citation": "Pace, R. K. and Barry, R. (1997). Sparse Spatial Autoregressions. Statistics and "
        "Probability Letters, 33, 291-297.",
        "license": "StatLib data, no explicit licence; the same data scikit-learn distributes",
        "source": files,
        "split": "random 80/20, sklearn train_test_split(random_state=0)",
        "notes": [
            "Mutability is illustrative (the blog's adversarial-advising example): location and age fixed."
        ],
        "default_model": "mlp",
    }
    note = source_note(
        "California Housing",
        "StatLib via scikit-learn's layout",
        info["license"],
        info["citation"],
        files,
        [
            "Columns as scikit-learn names them (MedInc, HouseAge, ..., MedHouseVal); no rows dropped.",
            "HouseAge and Population stored as integers (every value is a whole number).",
            "Added a `split` column: random 80/20, sklearn train_test_split(test_size=0.2, random_state=0) "
            "-> 16512 train / 4128 test.",
        ],
    )
    write("california", frame, schema, info, note)


# -------------------------------------------------------------------------------------- quickdraw
QUICKDRAW_SLOTS = 128
QUICKDRAW_COORDS = ("x1", "y1", "x2", "y2")
QUICKDRAW_WRITABLE = range(80, 96)  # add_stroke writes into slots 80..95: never past 95, like the original


def quickdraw_columns() -> list[str]:
    """Slot-major column names: x1_0, y1_0, x2_0, y2_0, x1_1, ... (the npz's [slot, coordinate] order)."""
    return [f"{c}_{k}" for k in range(QUICKDRAW_SLOTS) for c in QUICKDRAW_COORDS]


def quickdraw_actions() -> str:
    """actions.toml for Quick, Draw!: one repeatable add_stroke that writes into the first empty slot.

    Slot k is empty when its four coordinates are all 1 (the source's marker); the bundled drawings fill
    slots from the front (checked below), so the first empty slot is the one whose predecessor is drawn.
    """
    first, last = QUICKDRAW_WRITABLE[0], QUICKDRAW_WRITABLE[-1]
    empty = "x1_{k} == 1 and y1_{k} == 1 and x2_{k} == 1 and y2_{k} == 1"
    drawn = "(x1_{k} < 1 or y1_{k} < 1 or x2_{k} < 1 or y2_{k} < 1)"
    length = "sqrt((x2 - x1) ** 2 + (y2 - y1) ** 2)"
    lines = [
        "# Quick, Draw! (the AAAI 2020 paper's Q4): one action that adds a straight stroke to a drawing.",
        "# Generated by scripts/build_datasets.py; do not edit by hand.",
        "#",
        "# A drawing is 128 segment slots (x1, y1, x2, y2 in the unit square, y downwards); an empty slot holds",
        "# (1, 1, 1, 1). add_stroke writes its four coordinates into the first empty slot, i.e. the empty slot",
        "# whose predecessor is drawn (the bundled drawings fill slots from the front), and nowhere else.",
        f"# It writes only slots {first}-{last}: its preconditions are that slot {first - 1} is drawn and slot "
        f"{last} is empty",
        f"# (never past slot {last}, like the original driver; the bundled drawings have 85-94 strokes, and every",
        "# slot costs four effects evaluated at each optimisation step, so the catalogue lists only these).",
        "# Cost = stroke length + 1 (the original code's; the paper says length). 0.1 < length < 1 (the",
        "# original code's post-condition; the paper says 0.6). At most 5 added strokes: the dataset's",
        "# synthesis max_length is 5 (dataset.json), so `actionable synthesize --dataset quickdraw` stops there.",
        "",
        "[[action]]",
        'name = "add_stroke"',
        'text = "Draw a line from ({x1:.3f}, {y1:.3f}) to ({x2:.3f}, {y2:.3f})"',
        "repeatable = true",
        f'cost = "{length} + 1"',
        f'pre = ["{drawn.format(k=first - 1)}", "{empty.format(k=last)}", "{length} > 0.1", "{length} < 1"]',
        "",
        "[action.params]",
        "x1 = { bounds = [0, 1], init = 0.4 }",
        "y1 = { bounds = [0, 1], init = 0.5 }",
        "x2 = { bounds = [0, 1], init = 0.6 }",
        "y2 = { bounds = [0, 1], init = 0.5 }",
        "",
        "[action.effects]",
    ]
    for k in QUICKDRAW_WRITABLE:
        here = f"{empty.format(k=k)} and {drawn.format(k=k - 1)}"
        for c in QUICKDRAW_COORDS:
            lines.append(f'{c}_{k} = "{c} if {here} else {c}_{k}"')
    return "\n".join(lines) + "\n"


def quickdraw(shared: Path) -> None:
    path = checked(shared, "synth-quickdraw/cat.missing.npz")
    with np.load(path, allow_pickle=False) as npz:
        strokes, labels = npz["data"], npz["labels"]
    if strokes.shape != (1000, QUICKDRAW_SLOTS, 4) or labels.shape != (1000, 2):
        raise SystemExit(f"quickdraw: unexpected shapes {strokes.shape}, {labels.shape}")
    if not np.array_equal(labels.sum(1), np.ones(1000)) or not np.array_equal(
        strokes * 256, np.rint(strokes * 256)
    ):
        raise SystemExit("quickdraw: labels are not one-hot or coordinates are off the 1/256 grid")
    empty = (strokes == 1).all(-1)
    drawn = (~empty).sum(1)
    if not all(empty[i, drawn[i] :].all() for i in range(len(strokes))):
        raise SystemExit("quickdraw: a drawing has an empty slot before a drawn one")
    if ((strokes == 1) & ~empty[..., None]).any() or strokes.min() <= 0:
        raise SystemExit(
            "quickdraw: a drawn segment has a coordinate of exactly 1 (the empty marker) or <= 0"
        )
    if drawn.min() < QUICKDRAW_WRITABLE[0] or drawn.max() > QUICKDRAW_WRITABLE[-1]:
        raise SystemExit("quickdraw: a drawing's first empty slot is outside the slots add_stroke writes")
    frame = pd.DataFrame(strokes.reshape(len(strokes), -1), columns=quickdraw_columns())
    frame["recognized"] = np.where(labels[:, 1] == 1, "yes", "no")
    frame["split"] = stratified_split(frame["recognized"])
    features = tuple(
        Feature(
            name,
            "real",
            (0.0, 1.0),
            mutability="direct",
            description=f"stroke slot {name.split('_')[1]}: {name.split('_')[0]} "
            "(unit square, y downwards; 1, 1, 1, 1 = empty slot)",
        )
        for name in quickdraw_columns()
    )
    schema = Schema(features, Target("recognized", favourable="yes", classes=("no", "yes")), "quickdraw")
    files = source_list(
        shared,
        ["synth-quickdraw/cat.missing.npz"],
        "goutham7r/synth-action-seq @ 6eb6e05, models/quickdraw/cat.missing.npz (MIT repo); "
        "Google Quick, Draw! drawings (CC BY 4.0)",
    )
    counts = frame["recognized"].value_counts().to_dict()
    info: dict[str, Any] = {
        "name": "quickdraw",
        "title": "Quick, Draw! cats (complete or with strokes removed)",
        "task": "classification",
        "description": "1,000 cat drawings as 128 straight-segment slots; complete (recognized) or with "
        "1-9 strokes removed?",
        "citation": "Google (2017). The Quick, Draw! Dataset. https://github.com/googlecreativelab/quickdraw-dataset "
        "(CC BY 4.0); processed by Ramakrishnan, Lee and Albarghouthi (2020), Synthesizing Action Sequences "
        "for Modifying Model Decisions, AAAI; https://github.com/goutham7r/synth-action-seq (MIT).",
        "license": "CC BY 4.0 (Google, Quick, Draw! data); processing MIT (c) 2023 Goutham Ramakrishnan",
        "source": files,
        "split": "stratified by recognized, 80/20, sklearn train_test_split(random_state=0)",
        "synthesis": {"max_length": 5},
        "notes": [
            "The npz (read with allow_pickle=False) holds data 1000 x 128 x 4 and one-hot labels 1000 x 2; "
            "stored here as 512 columns x1_k, y1_k, x2_k, y2_k (slot k = 0..127), values exact multiples of 1/256.",
            "Empty slots are (1, 1, 1, 1), as in the source; every drawing fills slots from the front "
            "(85-94 drawn segments) and no drawn segment has a coordinate of exactly 1 (checked at build).",
            f"Target recognized: label [0, 1] -> 'yes' (the complete drawing, {counts['yes']} rows), [1, 0] -> "
            f"'no' (strokes removed, {counts['no']} rows), as the original code's TRUE_LABEL [0, 1]. No rows dropped.",
            "actions.toml (add_stroke) is generated by the same script.",
        ],
        "default_model": "conv",
    }
    note = source_note(
        "Quick, Draw! cats (Ramakrishnan et al.'s processed test set)",
        "goutham7r/synth-action-seq models/quickdraw/cat.missing.npz; drawings from Google's Quick, Draw!",
        info["license"],
        info["citation"],
        files,
        [
            *info["notes"],
            "Added a `split` column: stratified by recognized, 80/20, sklearn train_test_split(test_size=0.2, "
            "random_state=0) -> 800 train / 200 test.",
        ],
    )
    write("quickdraw", frame, schema, info, note)
    (OUT / "quickdraw" / "actions.toml").write_text(quickdraw_actions(), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    for name in SHA256:  # check every source first, so a mismatch leaves no half-built bundle
        checked(args.shared, name)
    for build in (german, adult, student, california, quickdraw):
        build(args.shared)
        print(f"built {build.__name__}")


if __name__ == "__main__":
    main()
