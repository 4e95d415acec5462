"""Backends: live torch modules and standalone source, from the same IR."""
