"""Reading specs: located YAML, ``extends``, validation and expansion to IR."""

from archcompile.spec.loader import Spec, load_spec, load_spec_text

__all__ = ["Spec", "load_spec", "load_spec_text"]
