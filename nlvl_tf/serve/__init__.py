"""Serving: the SavedModel export with raw-text signatures and `Localizer`, its Python API."""
