"""Segmentation engine: RFM, lifecycle, segment rules (open issue)."""
