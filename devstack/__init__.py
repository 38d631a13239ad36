"""Development tooling, apart from the product: the local fake of the WeCom API, the demo brand's
data and segments, and the stack runner behind `make run`. No product module imports it."""
