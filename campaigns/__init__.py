"""Campaign engine: targeted pushes, frequency caps, holdouts, attribution (open issue)."""
