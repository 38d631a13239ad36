"""Campaign engine: targeted pushes, frequency caps, holdouts, attribution. Built so far: the
frequency rules and a local fake of the WeCom API."""
