"""Campaign engine: targeted pushes, frequency caps, holdouts, attribution (issue 4, under way:
frequency rules and the local WeCom fake so far)."""
