"""Labeling-function modules for the example projects (imported explicitly by ``discover_lfs``)."""
