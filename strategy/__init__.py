"""Strategy core: canonical market data, features, LightGBM models and the allocator."""
