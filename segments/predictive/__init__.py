"""Predictive models of customers: lifetime value, churn risk, behaviour clusters."""
