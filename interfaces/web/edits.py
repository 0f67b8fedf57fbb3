"""Moved to ``flows.corrections`` (corrections are domain data, kept in the object store); re-exported here for
the web modules that import them from this name."""

from __future__ import annotations

from flows.corrections import (
    CHOICES,
    EDITABLE_METADATA,
    Edit,
    EditError,
    VersionConflict,
    corrected,
    current_value,
    field_label,
    normalise_value,
)

__all__ = ["CHOICES", "EDITABLE_METADATA", "Edit", "EditError", "VersionConflict", "corrected", "current_value",
           "field_label", "normalise_value"]
