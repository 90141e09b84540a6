"""The blog's "adversarial advising" reproduced on bundled California housing: a table and two figures.

    python benchmarks/advising.py [--row 0] [--figures DIR]

Prints a markdown table of input gradients per standard deviation (the training split's): the
LinearRegression's standardized coefficients (Figure 1) and the MLPRegressor(200, logistic) network's
gradients at the average house and at one test house (Figure 2), the blog's stated signs checked, the
unscaled AveBedrms coefficient (the blog's "$65,000 per extra bedroom"), and the advice for that house.
With ``--figures DIR`` it writes ``advising_figure1.png`` and ``advising_figure2.png`` there.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from sklearn.linear_model import LinearRegression

from actionable import advise_gradient, as_model, attribute, datasets
from actionable.advice import gradient_table
from actionable.attribution import standard_deviations


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--row", type=int, default=0, help="position of the house among the test rows")
    parser.add_argument("--figures", type=Path, default=None)
    args = parser.parse_args()
    data = datasets.load("california")
    house = data.X_test.iloc[[args.row]]
    table = gradient_table(data.models, data.X_train, house)
    label = house.index[0]
    print(f"# Adversarial advising on California housing ({datetime.date.today().isoformat()})\n")
    print(
        "Input gradient of the predicted median house value ($100k) per standard deviation of each "
        f"feature (training split). Linear: standardized coefficients (blog Figure 1). MLP: at the average "
        f"house and at test row {label} (blog Figure 2).\n"
    )
    columns = ["linear @ mean", "mlp @ mean", f"mlp @ row {label}"]
    print("| feature | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for feature, values in table[columns].iterrows():
        print(f"| {feature} | " + " | ".join(f"{v:+.3f}" for v in values) + " |")
    print("\n## The blog's claims\n")
    for column in ("linear @ mean", "mlp @ mean"):
        g = table[column]
        checks = {
            "MedInc strongly positive (> 0.5)": g["MedInc"] > 0.5,
            "AveBedrms positive but smaller than MedInc": 0 < g["AveBedrms"] < g["MedInc"],
            "AveOccup negative": g["AveOccup"] < 0,
        }
        print(f"* {column}: " + "; ".join(f"{k}: {'yes' if ok else 'NO'}" for k, ok in checks.items()))
    full = LinearRegression().fit(data.frame, data.target)
    unscaled_full = attribute(as_model(full, data.schema), data.frame.iloc[:1], "gradient").to_frame()
    unscaled = attribute(data.models["linear"], data.frame.iloc[:1], "gradient").to_frame()
    print(
        f"* unscaled AveBedrms coefficient: {unscaled_full['AveBedrms'].iloc[0]:+.3f} fitted on all rows "
        f"as in the blog (about +0.65: $65,000 per extra bedroom); {unscaled['AveBedrms'].iloc[0]:+.3f} "
        "for the bundled model, fitted on the 80% training split"
    )
    advice = advise_gradient(data.model, house.iloc[0], scale=standard_deviations(data.schema, data.X_train))
    print(f"\n## Advice for test row {label} (the MLP; goal: the schema's target)\n")
    print("\n".join(f"    {line}" for line in advice.describe().splitlines()))
    if args.figures is not None:
        from actionable.plotting import plot_table, save

        args.figures.mkdir(parents=True, exist_ok=True)
        fig1 = plot_table(
            table[["linear @ mean"]].rename(columns={"linear @ mean": "LinearRegression"}),
            title="Figure 1: standardized coefficients",
            xlabel="change of predicted value ($100k) per standard deviation",
        )
        save(fig1, args.figures / "advising_figure1.png")
        fig2 = plot_table(
            table[["mlp @ mean", f"mlp @ row {label}"]].rename(
                columns={"mlp @ mean": "average house", f"mlp @ row {label}": f"house {label}"}
            ),
            title="Figure 2: neural network input gradients",
            xlabel="change of predicted value ($100k) per standard deviation",
        )
        save(fig2, args.figures / "advising_figure2.png")


if __name__ == "__main__":
    main()
