"""Segmentation: per-customer metrics, RFM tiers and lifecycle states recomputed from the
orders, segments (人群) defined by a rule or a list and kept materialised, and the predictive
models (lifetime value, churn risk, behaviour clusters). Built on crm; campaigns builds on it."""
