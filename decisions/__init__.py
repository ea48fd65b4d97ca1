"""Decision bundles: everything one keeper decision read, content-addressed by its decision hash, and the
re-execution that lets anyone check a `Rebalanced` event with the chain and the bundle alone.

`bundle` builds, writes and reads bundles (the byte format: docs/decision-bundle.md); `replay` runs the
keeper's own features -> forecasts -> allocation on a bundle; `check` gives the verdict. `publish` serves a
bundle directory read-only over HTTP (the keeper's port), `fetch` downloads a published bundle to check it,
`export` copies a range of bundles out for archiving. No chain I/O: the caller reads the chain.
"""
