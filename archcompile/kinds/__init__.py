"""The layer models, by family; :mod:`archcompile.layers` is their registry."""
