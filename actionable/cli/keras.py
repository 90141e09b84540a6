"""``actionable import-keras``: a Keras file and its input columns, written as a model folder on a schema.

The file is read as data (``actionable.read_keras``) and put on the schema through the declared encoding
(``InputEncoding``), exactly as in Python; the folder it writes (model.json + safetensors, the source's
sha256 in its provenance) then serves every command's ``--model``, the batch jobs and the service.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from actionable import files
from actionable.cli._shell import console, friendly

__all__ = ["import_keras_command"]


@friendly
def import_keras_command(
    file: Annotated[Path, typer.Argument(help="The Keras 2 .h5 file or Keras 3 .keras archive.")],
    schema: Annotated[Path, typer.Option(help="Your schema TOML file.")],
    encoding: Annotated[
        Path, typer.Option(help="The network's input columns, in its order ([[column]] TOML).")
    ],
    out: Annotated[Path, typer.Option(help="Folder to write the model into.")],
    classes: Annotated[
        str | None,
        typer.Option(help="The output units' class labels in order, e.g. good,bad (default: the schema's)."),
    ] = None,
) -> None:
    """Convert a Keras file into a model folder on your schema (read as data: never TensorFlow)."""
    from actionable.models import as_model, save_model
    from actionable.models.input_encoding import InputEncoding
    from actionable.models.keras import read_keras
    from actionable.schema import Schema

    the_schema = Schema.from_toml(schema)
    columns = InputEncoding.from_file(encoding, the_schema)
    keras = read_keras(file)
    labels = [c.strip() for c in classes.split(",")] if classes is not None else None
    model = as_model(keras.network, the_schema, encoding=columns, classes=labels)
    model.provenance.update(
        {
            "source": file.name,
            "sha256": keras.sha256,
            "keras_version": keras.keras_version,
            "keras_layers": list(keras.layers),
            "separated_output": keras.output,
            "encoding": {encoding.name: hashlib.sha256(encoding.read_bytes()).hexdigest()},
            "dropped_features": list(columns.dropped(the_schema)),
            "converter": "actionable import-keras",
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with files.atomic_folder(out) as temp:
        save_model(model, temp)
    kinds = ", ".join(dict.fromkeys(layer.split()[0] for layer in keras.layers))
    console.print(
        f"wrote {out}  ({keras.input_width} inputs; {kinds}; output {keras.output}; sha256 {keras.sha256[:12]})"
    )
