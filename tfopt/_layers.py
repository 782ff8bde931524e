"""Finding tfopt's wrappers in a model, nested models included."""

from __future__ import annotations


def find_layers(model, types, skip=()) -> list:
    """The layers of `types` in `model`, in layer order, each once.

    Descends into nested models and wrapper layers, but not into a layer it
    found, nor into any layer of `skip` (e.g. a Distiller's frozen teacher).
    """
    found, seen = [], {id(layer) for layer in skip}

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, types):
            found.append(layer)
            return
        for child in layer._flatten_layers(include_self=False, recursive=False):
            visit(child)

    visit(model)
    return found
